"""The watcher: list, then watch; list again after 410 Gone or a broken stream; bookmarks move the version."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from agent.watch import Changed, Synced, Watcher
from common.kube import ApiError
from common.names import KIND_BY_CAPABILITY, Kind

BUILD = KIND_BY_CAPABILITY["build"]


def obj(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": version}}


class ScriptedCluster:
    """Lists and watches that play a script; records the versions each watch started from."""

    def __init__(self, watches: list[list[dict[str, Any]] | Exception]) -> None:
        self.watches = watches
        self.lists = 0
        self.watched_from: list[str] = []
        self.done = threading.Event()
        self.release = threading.Event()

    def list(self, kind: Kind, label_selector: str) -> tuple[list[dict[str, Any]], str]:
        self.lists += 1
        return [obj(f"listed-{self.lists}", "10")], str(self.lists * 100)

    def watch(
        self, kind: Kind, label_selector: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[Any]:
        self.watched_from.append(resource_version)
        if not self.watches:
            self.done.set()
            self.release.wait(10)
            return
        step = self.watches.pop(0)
        if isinstance(step, Exception):
            raise step
        yield from step


def test_the_watcher_relists_after_gone_and_failures() -> None:
    cluster = ScriptedCluster(
        [
            [
                {"type": "ADDED", "object": obj("a", "101")},
                {"type": "BOOKMARK", "object": obj("", "150")},
            ],
            [{"type": "ERROR", "object": {"code": 410, "reason": "Expired", "message": "too old"}}],
            ApiError(0, "Unavailable", "connection reset"),
            [{"type": "MODIFIED", "object": obj("b", "305")}, {"type": "DELETED", "object": obj("b", "306")}],
        ]
    )
    events: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    watcher = Watcher(cluster, BUILD, "remora.dev/agent=p", events, stop, max_backoff=0.05)  # type: ignore[arg-type]
    watcher.start()
    assert cluster.done.wait(10)
    stop.set()
    cluster.release.set()
    watcher.join(10)
    seen = []
    while not events.empty():
        event = events.get()
        if isinstance(event, Synced):
            seen.append(("synced", [o["metadata"]["name"] for o in event.objects]))
        else:
            assert isinstance(event, Changed)
            seen.append((event.type, event.obj["metadata"]["name"]))
    assert seen == [
        ("synced", ["listed-1"]),
        ("ADDED", "a"),
        ("synced", ["listed-2"]),  # after 410 Gone
        ("synced", ["listed-3"]),  # after the broken connection
        ("MODIFIED", "b"),
        ("DELETED", "b"),
    ]
    # The bookmark moved the version on; each new list restarts the watch from its own version.
    assert cluster.watched_from == ["100", "150", "200", "300", "306"]
