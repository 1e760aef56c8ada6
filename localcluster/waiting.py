"""Polling helper for tests that wait on controllers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    description: str = "condition",
) -> T:
    """Call ``predicate`` until it returns something truthy; return that, or raise TimeoutError.

    Exceptions from ``predicate`` propagate (catch inside it what should be retried).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {description}")
        time.sleep(interval)
