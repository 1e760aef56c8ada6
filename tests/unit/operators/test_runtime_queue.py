"""The work queue and the delays: de-duplication, one worker per key, delays, rate limiting, drain."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operators.runtime.backoff import Backoff, ItemExponentialRateLimiter
from operators.runtime.queue import WorkQueue


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_added_many_times_is_queued_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for _ in range(5):
        queue.add("a")
    queue.add("b")
    assert len(queue) == 2
    assert queue.get(timeout=0) == "a"
    assert queue.get(timeout=0) == "b"
    assert queue.get(timeout=0) is None


def test_a_key_in_progress_is_not_handed_out_twice_but_is_not_lost() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    assert queue.get(timeout=0) == "a"
    queue.add("a")  # changed while being processed
    assert queue.get(timeout=0) is None  # not to a second worker
    queue.done("a")
    assert queue.get(timeout=0) == "a"  # processed again afterwards


def test_add_after_waits_and_the_earliest_time_wins() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add_after("a", 10)
    queue.add_after("a", 3)
    queue.add_after("a", 20)
    assert queue.waiting() == 1
    assert queue.get(timeout=0) is None
    clock.now += 3
    assert queue.get(timeout=0) == "a"
    queue.done("a")
    clock.now += 100
    assert queue.get(timeout=0) is None  # the later entries were superseded


def test_rate_limited_retries_back_off_per_key_and_forget_resets() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(ItemExponentialRateLimiter(base=1.0, cap=8.0), clock=clock)
    delays = []
    for _ in range(5):
        queue.add_rate_limited("a")
        start = clock.now
        while queue.get(timeout=0) is None:
            clock.now += 0.5
        delays.append(clock.now - start)
        queue.done("a")
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert queue.rate_limiter.retries("a") == 5
    queue.forget("a")
    assert queue.rate_limiter.retries("a") == 0
    queue.add_rate_limited("b")  # another key has its own count
    assert queue.rate_limiter.retries("b") == 1


def test_get_blocks_until_a_delayed_key_is_due() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("a", 0.05)
    started = time.monotonic()
    assert queue.get(timeout=2) == "a"
    assert 0.04 <= time.monotonic() - started < 1.0


def test_shutdown_with_drain_waits_for_work_in_progress() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("b")
    assert queue.get(timeout=0) == "a"
    finished = threading.Event()

    def worker() -> None:
        time.sleep(0.1)
        finished.set()
        queue.done("a")

    threading.Thread(target=worker).start()
    assert queue.shutdown(drain=True, timeout=5)
    assert finished.is_set()
    assert queue.get(timeout=0) is None  # nothing more is handed out
    queue.add("c")
    assert len(queue) == 1  # "b" stays; adds after shutdown are ignored


def test_shutdown_drain_gives_up_after_its_timeout() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.get(timeout=0)
    assert queue.shutdown(drain=True, timeout=0.05) is False


def test_waiting_workers_wake_on_shutdown() -> None:
    queue: WorkQueue[str] = WorkQueue()
    got: list[str | None] = []
    thread = threading.Thread(target=lambda: got.append(queue.get()))
    thread.start()
    time.sleep(0.05)
    queue.shutdown()
    thread.join(2)
    assert got == [None]


@given(st.lists(st.sampled_from("abcde"), max_size=50))
def test_queue_holds_each_pending_key_exactly_once(keys: list[str]) -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in keys:
        queue.add(key)
    out = []
    while (key := queue.get(timeout=0)) is not None:
        out.append(key)
        queue.done(key)
    assert out == list(dict.fromkeys(keys))


def test_backoff_doubles_to_its_cap_with_jitter_in_the_upper_half() -> None:
    low = Backoff(0.2, 5.0, rand=lambda: 0.0)
    high = Backoff(0.2, 5.0, rand=lambda: 1.0)
    lows = [low.next() for _ in range(8)]
    highs = [high.next() for _ in range(8)]
    assert highs == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])
    assert lows == pytest.approx([h / 2 for h in highs])
    high.reset()
    assert high.next() == pytest.approx(0.2)


@given(st.floats(0.001, 10), st.floats(10, 100), st.integers(0, 200))
def test_backoff_never_exceeds_its_cap(initial: float, cap: float, attempts: int) -> None:
    backoff = Backoff(initial, cap)
    for _ in range(attempts):
        assert 0 < backoff.next() <= cap


@pytest.mark.parametrize(("initial", "cap"), [(0, 1), (-1, 1), (2, 1)])
def test_backoff_rejects_nonsense(initial: float, cap: float) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(initial, cap)
    with pytest.raises(ValueError, match="rate limiter needs"):
        ItemExponentialRateLimiter(initial, cap)
