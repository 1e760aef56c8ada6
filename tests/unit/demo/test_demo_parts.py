"""`remora demo`'s arguments, progress lines and process bookkeeping (no control plane)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from remora.cli import main
from remora.demo.errors import DemoError
from remora.demo.processes import Processes, start_time
from remora.demo.progress import Progress


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--timeout", "5"], "--timeout must be 30-3600 seconds"),
        (["demo", "--timeout", "nan"], "--timeout must be"),
        (["demo", "--keep", "--down"], "not allowed with argument"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        code = main(argv)
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_state_dir_that_is_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("")
    assert main(["demo", "--state-dir", str(tmp_path / "f")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_down_with_nothing_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--down", "--state-dir", str(tmp_path)]) == 0
    assert "nothing was running" in capsys.readouterr().out


def test_progress_goes_forward_only_and_summarises() -> None:
    lines: list[str] = []
    progress = Progress(lines.append)
    progress.add("build-1", "build")
    progress.add("test-1", "test")
    for stage in ("queued", "claimed", "claimed", "queued", "job", "resource", "succeeded", "failed"):
        progress.see("build-1", stage, stage.upper())
    progress.see("nobody", "queued")
    assert [line.split()[2] for line in lines] == ["queued", "claimed", "job", "succeeded"]
    assert not progress.all_done() and progress.pending() == ["test-1 (not queued)"]
    progress.see("test-1", "failed", "2 failed")
    assert progress.all_done()
    summary = progress.summary().splitlines()
    assert summary[0].split()[:3] == ["ITEM", "CAPABILITY", "OUTCOME"]
    assert summary[1].split()[:3] == ["build-1", "build", "succeeded"]
    assert summary[2].split()[:3] == ["test-1", "test", "failed"]


def test_processes_are_recorded_stopped_and_adopted(tmp_path: Path) -> None:
    record = tmp_path / "processes.json"
    procs = Processes(tmp_path / "logs", record, detach=True)
    sleeper = procs.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], {})
    assert json.loads(record.read_text())[0]["pid"] == sleeper.pid
    procs.check()

    again = Processes(tmp_path / "logs", record, detach=True)
    again.adopt_recorded()  # a later run (or --down) finds it by pid and start time
    assert [p.name for p in again.procs] == ["sleeper"] and again.procs[0].alive()
    assert again.stop(grace=5) == ["sleeper"]
    assert start_time(sleeper.pid) is None or not sleeper.alive()
    assert not record.exists()
    procs.procs.clear()


def test_a_process_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    procs = Processes(tmp_path / "logs", tmp_path / "p.json", detach=False)
    procs.start("crasher", [sys.executable, "-c", "print('cannot listen on 8481'); raise SystemExit(2)"], {})
    deadline = time.monotonic() + 10
    while procs.procs[0].alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(DemoError, match=r"(?s)crasher exited \(code 2\).*cannot listen on 8481"):
        procs.check()
    procs.stop()


def test_a_recycled_pid_is_not_adopted(tmp_path: Path) -> None:
    record = tmp_path / "processes.json"
    record.write_text(json.dumps([{"name": "x", "pid": 1, "started": "not-its-start", "log": "l"}]))
    procs = Processes(tmp_path, record, detach=True)
    procs.adopt_recorded()
    assert procs.procs == []


def test_an_unreadable_record_is_ignored(tmp_path: Path) -> None:
    record = tmp_path / "processes.json"
    record.write_text("{not json")
    procs = Processes(tmp_path, record, detach=True)
    procs.adopt_recorded()
    assert procs.procs == []


def test_a_wait_that_runs_out_of_time_names_what_and_where(tmp_path: Path) -> None:
    from remora.demo.stack import Demo, Options

    demo = Demo(Options(state_dir=tmp_path, timeout=0.0, keep=False))
    with pytest.raises(
        DemoError, match=r"^the broker answering /healthz did not happen within --timeout 0s; see x$"
    ):
        demo.wait_for("the broker answering /healthz", lambda: None, lambda: "see x")
    assert demo.wait_for("ready", lambda: "yes") == "yes"
