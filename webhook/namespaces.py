"""What the webhook knows about namespaces: their labels and annotations, by name.

Mutation reads remora.dev/injection and remora.dev/allowed-capabilities, validation reads
the level labels. In a cluster a `NamespaceCache` follows the API with list+watch, so an
admission never waits on an API call it could have avoided; a name the cache has not seen
yet (a namespace created a moment ago) is fetched once, off the event loop. Offline and in
tests a `StaticNamespaces` stands in.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from common import kube
from webhook.watch import ListWatch

log = logging.getLogger(__name__)

ABSENT_SECONDS: Final = 5.0
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Namespace:
        meta = obj.get("metadata") or {}
        return cls(
            name=str(meta.get("name", "")),
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
        )


class Namespaces(Protocol):
    def get(self, name: str) -> Namespace | None:
        """The namespace if known; never blocks."""

    async def ensure(self, name: str) -> None:
        """Make `get(name)` answer from the API if it does not yet; bounded in time."""

    def ready(self) -> bool: ...


class StaticNamespaces:
    """A fixed set of namespaces (offline use and tests)."""

    def __init__(self, namespaces: Mapping[str, Namespace] | None = None) -> None:
        self._by_name = dict(namespaces or {})

    @classmethod
    def of(cls, *namespaces: Namespace) -> StaticNamespaces:
        return cls({ns.name: ns for ns in namespaces})

    def get(self, name: str) -> Namespace | None:
        return self._by_name.get(name)

    async def ensure(self, name: str) -> None:
        return None

    def ready(self) -> bool:
        return True


class NamespaceCache:
    """Namespaces followed through list+watch, plus a bounded fetch for names not seen yet."""

    def __init__(self, api: Any, *, fetch_timeout: float = 2.0) -> None:
        self.api = api
        self.fetch_timeout = fetch_timeout
        self._by_name: dict[str, Namespace] = {}
        self._absent: dict[str, float] = {}  # name -> until when a failed lookup stands
        self._lock = threading.Lock()
        self._watch = ListWatch(api, "/api/v1/namespaces", self, name="namespace-watch")

    def start(self) -> None:
        self._watch.start()

    def stop(self) -> None:
        self._watch.stop()

    def ready(self) -> bool:
        return self._watch.synced.is_set()

    def get(self, name: str) -> Namespace | None:
        return self._by_name.get(name)

    async def ensure(self, name: str) -> None:
        if name in self._by_name or not _DNS_LABEL.fullmatch(name):
            return
        now = time.monotonic()
        if self._absent.get(name, 0.0) > now:
            return  # asked moment ago and not found: do not ask the apiserver again per request
        try:
            obj = await asyncio.wait_for(asyncio.to_thread(self._fetch, name), self.fetch_timeout)
        except Exception as exc:  # timeouts, API and network errors: decide without the namespace
            log.warning("namespace %s is not in the cache and could not be read: %s", name, exc)
            return
        if obj is not None:
            self.apply("ADDED", obj)
            return
        if len(self._absent) >= 1024:
            self._absent = {key: until for key, until in self._absent.items() if until > now}
        self._absent[name] = now + ABSENT_SECONDS

    def _fetch(self, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = kube.request(
                self.api, "GET", f"/api/v1/namespaces/{name}", timeout=self.fetch_timeout
            )
        except kube.ApiError as exc:
            if exc.not_found:
                return None
            raise
        return obj

    # The watch's consumer interface: the list replaces, events update. Readers see either
    # the old or the new dict, never a half-built one.
    def replace(self, items: list[dict[str, Any]]) -> None:
        fresh = {ns.name: ns for ns in map(Namespace.from_object, items)}
        with self._lock:
            self._by_name = fresh

    def apply(self, event_type: str, obj: dict[str, Any]) -> None:
        ns = Namespace.from_object(obj)
        with self._lock:
            if event_type == "DELETED":
                self._by_name.pop(ns.name, None)
            else:
                self._by_name[ns.name] = ns
