"""A work queue of keys with client-go's guarantees.

- A key waiting in the queue is held once, however often it is added (de-duplication).
- A key being processed is never handed to a second worker; added meanwhile, it is queued
  again when the first worker calls `done` (so no change is lost and no key runs twice at once).
- `add_after` delays a key (the earliest pending time wins); `add_rate_limited` delays it by
  the per-key exponential limiter, and `forget` resets that key's failures.
- `shutdown(drain=True)` stops handing out keys and waits for the ones in progress.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from operators.runtime.backoff import ItemExponentialRateLimiter

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(
        self,
        rate_limiter: ItemExponentialRateLimiter | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_limiter = rate_limiter or ItemExponentialRateLimiter()
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._delayed: list[tuple[float, int, K]] = []
        self._delayed_at: dict[K, float] = {}
        self._seq = itertools.count()
        self._shutting_down = False

    # -- adding ----------------------------------------------------------------------------

    def add(self, key: K) -> None:
        with self._cond:
            self._add_locked(key)

    def add_after(self, key: K, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutting_down:
                return
            ready = self._clock() + delay
            current = self._delayed_at.get(key)
            if current is not None and current <= ready:
                return
            self._delayed_at[key] = ready
            heapq.heappush(self._delayed, (ready, next(self._seq), key))
            self._cond.notify_all()

    def add_rate_limited(self, key: K) -> None:
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        self.rate_limiter.forget(key)

    def _add_locked(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._cond.notify()

    # -- taking ----------------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> K | None:
        """The next key to process, or None on shutdown (or when `timeout` passes first)."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while True:
                self._promote_due_locked()
                if self._shutting_down:
                    return None
                if self._queue:
                    key = self._queue.popleft()
                    self._processing.add(key)
                    self._dirty.discard(key)
                    return key
                wait = self._next_due_in_locked()
                if deadline is not None:
                    left = deadline - self._clock()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)

    def done(self, key: K) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()
            if not self._processing:
                self._cond.notify_all()

    def _promote_due_locked(self) -> None:
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            ready, _, key = heapq.heappop(self._delayed)
            if self._delayed_at.get(key) == ready:
                del self._delayed_at[key]
                self._add_locked(key)

    def _next_due_in_locked(self) -> float | None:
        if not self._delayed:
            return None
        return max(0.0, self._delayed[0][0] - self._clock())

    # -- state and shutdown ----------------------------------------------------------------

    def __len__(self) -> int:
        """Keys ready to be processed now (the queue depth metric)."""
        with self._cond:
            return len(self._queue)

    def waiting(self) -> int:
        """Keys scheduled for later."""
        with self._cond:
            return len(self._delayed_at)

    def shutdown(self, *, drain: bool = False, timeout: float = 30.0) -> bool:
        """Stop handing out keys; with `drain`, wait for keys in progress. True when none is left."""
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()
            if not drain:
                return not self._processing
            end = time.monotonic() + timeout
            while self._processing:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    @property
    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down
