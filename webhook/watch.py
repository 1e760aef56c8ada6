"""List, then watch, in a background thread: the webhook's view of namespaces and its catalog.

The loop is level-triggered: a full list replaces what the consumer knows, watch events
update it, bookmarks only advance the resourceVersion, 410 Gone (or an ERROR event)
means list again, and any other failure reconnects after a capped, jittered backoff.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from common import kube

log = logging.getLogger(__name__)

WATCH_SECONDS: Final = 300
BACKOFF_START: Final = 0.5
BACKOFF_CAP: Final = 30.0


class Consumer(Protocol):
    def replace(self, items: list[dict[str, Any]]) -> None:
        """The full list: forget everything not in it."""

    def apply(self, event_type: str, obj: dict[str, Any]) -> None:
        """One ADDED, MODIFIED or DELETED event."""


class ListWatch:
    """Keeps `consumer` in step with the objects at `path` until `stop()` is called."""

    def __init__(
        self,
        api: Any,
        path: str,
        consumer: Consumer,
        *,
        query: Mapping[str, str] | None = None,
        name: str = "watch",
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self.api = api
        self.path = path
        self.consumer = consumer
        self.query = dict(query or {})
        self.name = name
        self.synced = threading.Event()
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"remora-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        backoff = BACKOFF_START
        while not self._stop.is_set():
            try:
                version: str | None = self._list()
                backoff = BACKOFF_START
                while not self._stop.is_set() and version is not None:
                    version = self._watch(version)
            except kube.ApiError as exc:
                log.warning("%s: %s; retrying in %.1fs", self.name, exc, backoff)
            except Exception as exc:  # network errors of every kind: reconnect, never die
                log.warning("%s: %s: %s; retrying in %.1fs", self.name, type(exc).__name__, exc, backoff)
            else:
                continue
            if self._sleep(backoff * random.uniform(0.8, 1.2)):  # noqa: S311 - jitter, not crypto
                return
            backoff = min(backoff * 2, BACKOFF_CAP)

    def _list(self) -> str:
        answer = kube.request(self.api, "GET", self.path, query=self.query or None)
        self.consumer.replace(list(answer.get("items") or []))
        self.synced.set()
        return str(answer["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> str | None:
        """Follow events from `version`; the version to resume from, or None to list again."""
        query = {
            **self.query,
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": version,
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        try:
            for event in kube.stream(self.api, self.path, query, read_timeout=WATCH_SECONDS + 30):
                if self._stop.is_set():
                    return None
                event_type = event.get("type")
                obj = event.get("object") or {}
                if event_type == "ERROR":
                    log.info("%s: watch ended with %s; listing again", self.name, obj.get("message", obj))
                    return None
                new_version = (obj.get("metadata") or {}).get("resourceVersion")
                if event_type in ("ADDED", "MODIFIED", "DELETED"):
                    self.consumer.apply(event_type, obj)
                if new_version:
                    version = str(new_version)
        except kube.ApiError as exc:
            if exc.gone:
                return None
            raise
        return version
