"""This machine standing in for the cluster: the `remora` program, HTTP probes, signals."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import httpx

from remora.demo.errors import DemoError


class Interrupted(Exception):
    """SIGTERM arrived (SIGINT raises KeyboardInterrupt): stop and clean up."""


def remora_executable() -> list[str]:
    """This installation's `remora`: the script beside the interpreter, else `python -m remora`."""
    script = Path(sys.executable).parent / "remora"
    return [str(script)] if script.exists() else [sys.executable, "-m", "remora"]


def resolve_remora(container: str, argv: list[str]) -> list[str]:
    """The image's `remora` is this installation's; any other program cannot run here."""
    if argv[0] != "remora":
        raise DemoError(f"container {container} runs {argv[0]!r}; the demo can only run Remora's own image")
    return [*remora_executable(), *argv[1:]]


def http_ok(url: str, verify: str | bool = True) -> bool:
    try:
        return httpx.get(url, verify=verify, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM interrupts the demo like Ctrl-C does, so that its cleanup runs."""

    def on_term(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
