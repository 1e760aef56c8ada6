"""Delays for retrying: capped exponential backoff with jitter, and per-key exponential rate limiting."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Hashable


class Backoff:
    """Capped exponential backoff with jitter for one retrying loop (reconnecting a watch, say).

    Each delay is drawn from [d/2, d] where d doubles from `initial` up to `cap`, so that many
    clients that lost the same apiserver do not come back in lockstep.
    """

    def __init__(
        self,
        initial: float = 0.2,
        cap: float = 5.0,
        *,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if initial <= 0 or cap < initial:
            raise ValueError(f"backoff needs 0 < initial <= cap, got initial={initial} cap={cap}")
        self.initial = initial
        self.cap = cap
        self._rand = rand
        self._attempts = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.initial * 2 ** min(self._attempts, 32))
        self._attempts += 1
        return ceiling / 2 + (ceiling / 2) * self._rand()

    def reset(self) -> None:
        self._attempts = 0

    @property
    def attempts(self) -> int:
        return self._attempts


class ItemExponentialRateLimiter:
    """Per-key exponential delay: base, 2*base, 4*base ... up to `cap`; `forget` starts a key over."""

    def __init__(self, base: float = 0.005, cap: float = 300.0) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"rate limiter needs 0 < base <= cap, got base={base} cap={cap}")
        self.base = base
        self.cap = cap
        self._failures: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def when(self, key: Hashable) -> float:
        with self._lock:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        return min(self.cap, self.base * 2 ** min(failures, 64))

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def retries(self, key: Hashable) -> int:
        with self._lock:
            return self._failures.get(key, 0)
