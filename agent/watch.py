"""List, then watch, the agent's resources of one kind, feeding what it sees into a queue.

Level-triggered like the operators: a full list (`Synced`) first and after every 410 Gone
or broken stream, then watch events from that resourceVersion, with bookmarks keeping the
version fresh and capped, jittered backoff between failed attempts.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from agent.cluster import Cluster
from common.kube import ApiError
from common.names import Kind

log = logging.getLogger("remora.agent")
Obj = dict[str, Any]


@dataclass(frozen=True)
class Synced:
    """A complete list of the kind's resources carrying the agent's label, as of now."""

    kind: Kind
    objects: list[Obj] = field(default_factory=list)


@dataclass(frozen=True)
class Changed:
    kind: Kind
    type: str  # ADDED, MODIFIED or DELETED
    obj: Obj


Event = Synced | Changed


class Watcher(threading.Thread):
    def __init__(
        self,
        cluster: Cluster,
        kind: Kind,
        label_selector: str,
        out: queue.Queue[Any],
        stop: threading.Event,
        *,
        timeout_seconds: int = 60,
        max_backoff: float = 30.0,
    ) -> None:
        super().__init__(name=f"watch-{kind.plural}", daemon=True)
        self.cluster = cluster
        self.kind = kind
        self.selector = label_selector
        self.out = out
        self.stop = stop
        self.timeout_seconds = timeout_seconds
        self.max_backoff = max_backoff
        self.min_backoff = min(0.5, max_backoff)

    def run(self) -> None:
        backoff = self.min_backoff
        version: str | None = None
        while not self.stop.is_set():
            try:
                if version is None:
                    objects, version = self.cluster.list(self.kind, self.selector)
                    self.out.put(Synced(self.kind, objects))
                started = time.monotonic()
                version = self._follow(version)
                if time.monotonic() - started >= 1.0:
                    backoff = self.min_backoff
                else:  # a watch that ends at once, again and again, must not become a busy loop
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
            except ApiError as exc:
                if self.stop.is_set():
                    return
                if exc.gone:
                    version = None
                    continue
                log.warning("watching %s failed (%s); retrying in %.1fs", self.kind.plural, exc, backoff)
                version = None
                self.stop.wait(backoff * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not secrets
                backoff = min(backoff * 2, self.max_backoff)
            except Exception as exc:  # a garbled stream must not end the watch for good
                if self.stop.is_set():
                    return
                log.warning(
                    "watch stream of %s broke (%s: %s); listing again",
                    self.kind.plural,
                    type(exc).__name__,
                    exc,
                )
                version = None
                self.stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    def _follow(self, version: str) -> str | None:
        """Pass on events until the watch ends; return the version to resume from (None: list again)."""
        for event in self.cluster.watch(self.kind, self.selector, version, self.timeout_seconds):
            if self.stop.is_set():
                return version
            kind = event.get("type")
            obj = event.get("object")
            if not isinstance(obj, dict):
                continue
            if kind == "ERROR":
                if obj.get("code") == 410:
                    return None
                raise ApiError(
                    int(obj.get("code") or 0), str(obj.get("reason") or ""), str(obj.get("message"))
                )
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                self.out.put(Changed(self.kind, str(kind), obj))
        return version
