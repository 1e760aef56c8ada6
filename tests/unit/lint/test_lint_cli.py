"""`remora lint` through the real CLI: exit codes, formats and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lintcases import MANIFESTS

from remora.cli import main

CLEAN = MANIFESTS / "sidecar-without-resources/near-miss/fully-declared.yaml"
INFO_ONLY = MANIFESTS / "split-sidecar/trigger/unnamed-app-is-info.yaml"
WARNS = MANIFESTS / "split-sidecar/trigger/frontend-and-fluentd.yaml"
ERRS = MANIFESTS / "job-sidecar-never-completes/trigger/job-with-sql-proxy.yaml"


def lint(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["lint", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_exit_0_when_clean_or_info_only(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = lint(capsys, "-f", str(CLEAN))
    assert code == 0 and out.startswith("no findings in 1 object")
    code, out, _ = lint(capsys, "-f", str(INFO_ONLY))
    assert code == 0 and "INFO" in out


def test_exit_1_on_warning_or_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert lint(capsys, "-f", str(WARNS))[0] == 1
    assert lint(capsys, "-f", str(ERRS))[0] == 1


def test_many_files_and_folders_in_one_or_several_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = lint(
        capsys, "-f", str(CLEAN), str(WARNS), "--filename", str(MANIFESTS / "split-sidecar/near-miss")
    )
    assert code == 1 and "split-sidecar:" in out


@pytest.mark.parametrize("output", ["json", "sarif"])
def test_machine_formats_are_json_on_stdout(capsys: pytest.CaptureFixture[str], output: str) -> None:
    code, out, err = lint(capsys, "-f", str(ERRS), "-o", output)
    assert code == 1 and err == ""
    document = json.loads(out)
    assert ("findings" in document) if output == "json" else (document["version"] == "2.1.0")


def test_unreadable_input_is_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n")
    for args in (["-f", str(tmp_path / "missing.yaml")], ["-f", str(bad)], ["-f", str(CLEAN), str(bad)]):
        code, out, err = lint(capsys, *args)
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and err.startswith("remora lint: ") and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ([], "give manifests with -f FILE"),
        (["-f", str(CLEAN), "--cluster"], "one of them"),
        (["-f", str(CLEAN), "--namespace", "x"], "apply to --cluster only"),
        (["--cluster", "--kubeconfig", "/nonexistent/kubeconfig"], "cannot load /nonexistent/kubeconfig"),
        (["--cluster", "--namespace", "../../etc"], "not a valid namespace name"),
    ],
)
def test_bad_arguments_are_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], problem: str) -> None:
    code, _, err = lint(capsys, *args)
    assert code == 2 and problem in err and err.count("\n") == 1


def test_unknown_output_format_is_exit_2() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["lint", "-f", str(CLEAN), "-o", "xml"])
    assert caught.value.code == 2


def test_console_script_end_to_end(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "remora", "lint", "-f", str(MANIFESTS), "-o", "sarif"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["runs"][0]["results"]
    garbage = tmp_path / "garbage.yaml"
    garbage.write_bytes(bytes(range(256)))
    proc = subprocess.run(
        [sys.executable, "-m", "remora", "lint", "-f", str(garbage)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr == f"remora lint: {garbage}: binary data, not a YAML or JSON manifest\n"
