"""`remora check`: Pods and workload templates offline; exit 0 pass, 1 denied, 2 unreadable."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from validate_support import hardened_pod, privileged_pod, workload

from remora.cli import main

SHARED = Path(os.environ.get("REMORA_SHARED") or Path(__file__).resolve().parents[5] / "shared")
RESTRICTED_FAIL = SHARED / "conformance" / "psa" / "restricted" / "fail"


def run(
    tmp_path: Path, text: str, *args: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[str], str]:
    path = tmp_path / "in.yaml"
    path.write_text(text)
    code = main(["check", "-f", str(path), *args])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def docs(*objects: Any) -> str:
    return yaml.safe_dump_all(objects)


def test_all_pass_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(tmp_path, docs(hardened_pod()), "--level", "hardened", capsys=capsys)
    assert (code, out) == (0, [])


def test_one_line_per_violation_naming_object_container_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment, _, _ = workload("Deployment", privileged_pod())
    code, out, err = run(tmp_path, docs(hardened_pod(), deployment), "--level", "baseline", capsys=capsys)
    assert code == 1
    assert out == [
        'Deployment/team/w: container "app": spec.template.spec.containers[0].securityContext.privileged: '
        "must not be true (privileged)"
    ]
    assert "1 of 2 objects would be denied at baseline" in err


def test_lists_and_multi_document_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listing = {"apiVersion": "v1", "kind": "List", "items": [privileged_pod("a"), privileged_pod("b")]}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}}
    code, out, _ = run(tmp_path, docs(listing, service), "--level", "baseline", capsys=capsys)
    assert code == 1
    assert [line.split(":")[0] for line in out] == ["Pod/team/a", "Pod/team/b"]


def test_default_level_is_restricted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pod = hardened_pod()
    pod["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    assert run(tmp_path, docs(pod), capsys=capsys)[0] == 0
    assert run(tmp_path, docs(pod), "--level", "hardened", capsys=capsys)[0] == 1


@pytest.mark.parametrize("path", sorted(RESTRICTED_FAIL.glob("*.yaml")), ids=lambda p: p.name)
def test_upstream_failures_are_reported(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-f", str(path), "--level", "restricted"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out and all(line.startswith("Pod/") for line in out)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [", "invalid YAML at line 1"),
        ("- 1\n- 2\n", "document 1 is not a mapping"),
        ("base: &a {x: 1}\nother: *a\n", "aliases"),
        ("kind: List\nitems: [1]\n", "items must be a list of objects"),
        (
            "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: a, ports: [{hostPort: '80'}]}]}\n",
            "spec.containers[0].ports[0].hostPort: must be an integer",
        ),
        ("apiVersion: v1\nmetadata: {name: x}\n", "the object has no kind"),
    ],
)
def test_unreadable_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    code, out, err = run(tmp_path, text, capsys=capsys)
    assert code == 2 and out == []
    assert len(err.strip().splitlines()) == 1 and expected in err


def test_missing_file_and_binary_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-f", str(tmp_path / "none.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    assert main(["check", "-f", str(binary)]) == 2
    assert "invalid YAML" in capsys.readouterr().err


def test_no_pods_is_a_pass_with_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(tmp_path, docs({"apiVersion": "v1", "kind": "ConfigMap"}), capsys=capsys)
    assert code == 0 and out == [] and "no Pods or pod templates" in err
