"""List, then watch: keep a cache of one kind of object current and tell a handler what changed.

- The first list fills the cache; the informer counts as synced only after it.
- The watch starts from the list's resourceVersion with bookmarks on, and every event
  (bookmarks included) moves that resourceVersion forward.
- 410 Gone (as an HTTP status or an ERROR event) means the resourceVersion is too old: list
  again, diffing against the cache so that objects deleted meanwhile are reported.
- A failed or dropped connection is retried with capped exponential backoff and jitter; a
  watch that stays silent past `silent_timeout` is dropped and started again.
- A `transform` trims objects before they are cached (managedFields, a Job's pod template),
  which is most of what keeps the operator's memory small.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from urllib3.exceptions import ReadTimeoutError

from common import kube
from operators.runtime.backoff import Backoff
from operators.runtime.store import Obj, Store, resource_version

log = logging.getLogger("remora.operators.informer")

Handler = Callable[[str, Obj], None]
Transform = Callable[[Obj], Obj]
LIST_PAGE = 500


class Informer:
    def __init__(
        self,
        api: Any,
        path: str,
        *,
        label_selector: str = "",
        transform: Transform | None = None,
        handler: Handler | None = None,
        silent_timeout: float = 90.0,
        backoff: Backoff | None = None,
        on_restart: Callable[[str], None] | None = None,
    ) -> None:
        self.api = api
        self.path = path
        self.label_selector = label_selector
        self.transform = transform or strip_managed_fields
        self.handler = handler
        self.silent_timeout = silent_timeout
        self.backoff = backoff or Backoff(0.2, 5.0)
        self.on_restart = on_restart
        self.store = Store()
        self.synced = threading.Event()
        self.last_event_at = 0.0
        self._rv = ""

    def run(self, stop: threading.Event) -> None:
        """List and watch until `stop` is set."""
        need_list = True
        while not stop.is_set():
            try:
                if need_list:
                    self._list()
                    need_list = False
                    self.synced.set()
                started = time.monotonic()
                reason, events = self._watch(stop)
                self._restarted(reason)
                if events == 0 and time.monotonic() - started < 1.0:
                    # Closed at once without a word: do not spin against a struggling apiserver.
                    stop.wait(self.backoff.next())
            except kube.ApiError as exc:
                if exc.gone:
                    need_list = True
                    self._restarted("expired")
                    continue
                self._restarted("error")
                hint = " (is the CRD installed?)" if exc.not_found else ""
                log.warning("watch %s failed: %s%s", self.path, exc, hint)
                stop.wait(self.backoff.next())
            except Exception as exc:
                # Connection refused, reset or timed out: the apiserver is away for a while.
                self._restarted("error")
                log.info("watch %s interrupted (%s); retrying", self.path, type(exc).__name__)
                stop.wait(self.backoff.next())

    def _restarted(self, reason: str) -> None:
        if self.on_restart is not None:
            self.on_restart(reason)

    def _list(self) -> None:
        items: list[Obj] = []
        query: dict[str, str | int | bool] = {"limit": LIST_PAGE}
        if self.label_selector:
            query["labelSelector"] = self.label_selector
        while True:
            page = kube.request(self.api, "GET", self.path, query=query)
            items.extend(self.transform(o) for o in page.get("items") or [])
            meta = page.get("metadata") or {}
            cont = meta.get("continue")
            if not cont:
                self._rv = str(meta.get("resourceVersion") or "")
                break
            query["continue"] = cont
        present, vanished = self.store.replace(items)
        if self.handler is not None:
            for obj in vanished:
                self.handler("DELETED", obj)
            for obj in present:
                self.handler("ADDED", obj)

    def _watch(self, stop: threading.Event) -> tuple[str, int]:
        """One watch request; returns why it ended (when not by an error) and how many events it brought."""
        query: dict[str, str | int | bool] = {
            "watch": True,
            "allowWatchBookmarks": True,
            "resourceVersion": self._rv,
            # Spread the server-side ends of many watchers over time.
            "timeoutSeconds": random.randint(240, 480),  # noqa: S311 - jitter, not secrecy
        }
        if self.label_selector:
            query["labelSelector"] = self.label_selector
        events = kube.stream(self.api, self.path, query, read_timeout=self.silent_timeout)
        count = 0
        try:
            for event in events:
                if stop.is_set():
                    return "stopped", count
                count += 1
                self.last_event_at = time.monotonic()
                self._apply(event)
                self.backoff.reset()
        except (ReadTimeoutError, TimeoutError):
            return "timeout", count
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # releases the connection of a watch we leave early
        return "closed", count

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            code = int(obj.get("code") or 0)
            raise kube.ApiError(code, str(obj.get("reason", "")), str(obj.get("message", "")))
        rv = resource_version(obj)
        if rv:
            self._rv = rv
        if kind == "BOOKMARK":
            return
        obj = self.transform(obj)
        if kind == "DELETED":
            self.store.delete(_key(obj))
        elif kind in ("ADDED", "MODIFIED"):
            self.store.put(obj)
        else:
            return
        if self.handler is not None:
            self.handler(str(kind), obj)


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def strip_managed_fields(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj
