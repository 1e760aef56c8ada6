"""The broker's database thread, with group commit.

Every SQLite call runs on this one thread, never on the event loop. Requests that arrive
while a commit (an fsync) is in flight queue up and go into the next transaction
together, each under its own savepoint: one fsync then acknowledges many writes, which is
where a durable queue spends its time. No answer leaves before its group has committed.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, Final, TypeVar

from agent.broker.store import Store

T = TypeVar("T")
MAX_GROUP: Final = 64

_Request = tuple[Callable[[], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class GroupCommitter:
    def __init__(self, store: Store, *, max_group: int = MAX_GROUP) -> None:
        self.store = store
        self.max_group = max_group
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="broker-db", daemon=True)
        self._thread.start()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(*args) on the database thread in the next group; raises what it raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((partial(fn, *args), future, loop))
        return await future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stopping = False
            while len(group) < self.max_group:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                group.append(more)
            self._run_group(group)
            if stopping:
                return

    def _run_group(self, group: list[_Request]) -> None:
        try:
            results: list[Any] = self.store.run_group([call for call, _, _ in group])
        except Exception as exc:  # the commit failed: no write of the group happened
            results = [exc] * len(group)
        for (_, future, loop), result in zip(group, results, strict=True):
            loop.call_soon_threadsafe(_settle, future, result)


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if future.cancelled():  # the client went away; its write stands (it was committed)
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)
