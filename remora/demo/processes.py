"""The demo's local processes: started with a log each, recorded on disk, stopped for sure.

Each process leads its own session, so stopping it signals its whole group. Unless the
demo is asked to keep them, they also get SIGKILL from the kernel when the demo dies
(PR_SET_PDEATHSIG), so not even a SIGKILLed demo leaves them behind. The record
(name, pid, start time) lets `remora demo --down` stop what a `--keep` run left, and
the start time guards against signalling a recycled pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from remora.demo.errors import DemoError

TAIL_LINES = 25


def _pdeathsig() -> Callable[[], None] | None:
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_pdeathsig() -> None:
        prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG

    return set_pdeathsig


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 20 or fields[0] == "Z":  # a zombie is gone for our purposes
        return None
    return fields[19]


@dataclass
class Proc:
    name: str
    pid: int
    started: str
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return start_time(self.pid) == self.started

    def exit_code(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def signal(self, sig: int) -> None:
        if not self.alive():
            return
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, sig)

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        if self.popen is not None:
            self.popen.wait()  # reap it
        return True

    def tail(self, lines: int = TAIL_LINES) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "<no log>"
        return "\n".join(text[-lines:])


class Processes:
    """The processes one demo run started (or adopted from its record), in start order."""

    def __init__(self, log_dir: Path, record: Path, *, detach: bool) -> None:
        self.log_dir = log_dir
        self.record = record
        self.detach = detach
        self.procs: list[Proc] = []
        self._pdeathsig = None if detach else _pdeathsig()

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None) -> Proc:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            out.write(f"===== {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
            out.flush()
            try:
                popen = subprocess.Popen(
                    list(argv),
                    env=dict(env),
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches the demo only; it stops these in order
                    preexec_fn=self._pdeathsig,  # noqa: PLW1509 - only sets PR_SET_PDEATHSIG
                    close_fds=True,
                )
            except OSError as exc:
                raise DemoError(f"cannot start {name} ({argv[0]}): {exc.strerror or exc}") from None
        proc = Proc(name, popen.pid, start_time(popen.pid) or "", log, popen)
        self.procs.append(proc)
        self.save()
        return proc

    def check(self) -> None:
        """Raise DemoError naming the first process that exited, with the end of its log."""
        for proc in self.procs:
            if not proc.alive():
                raise DemoError(
                    f"{proc.name} exited (code {proc.exit_code()}); the end of {proc.log}:\n{proc.tail()}"
                )

    def stop(self, grace: float = 10.0, names: Sequence[str] | None = None) -> list[str]:
        """SIGTERM (newest first), SIGKILL after ``grace`` s; returns the names stopped."""
        chosen = [p for p in reversed(self.procs) if names is None or p.name in names]
        stopped = []
        for proc in chosen:
            if proc.alive():
                stopped.append(proc.name)
                proc.signal(signal.SIGTERM)
                if not proc.wait(grace):
                    proc.signal(signal.SIGKILL)
                    proc.wait(5.0)
            proc.signal(signal.SIGKILL)  # anything left in its group
            self.procs.remove(proc)
        self.save()
        return stopped

    def save(self) -> None:
        if not self.procs:
            self.record.unlink(missing_ok=True)
            return
        data = [{"name": p.name, "pid": p.pid, "started": p.started, "log": str(p.log)} for p in self.procs]
        tmp = self.record.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(self.record)

    def adopt_recorded(self) -> None:
        """Take over the processes a previous run recorded (only those still running)."""
        try:
            data = json.loads(self.record.read_text())
            recorded = [Proc(d["name"], int(d["pid"]), str(d["started"]), Path(d["log"])) for d in data]
        except (OSError, ValueError, KeyError, TypeError):
            recorded = []
        self.procs[:0] = [p for p in recorded if p.alive()]
