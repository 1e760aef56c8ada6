"""A thread-safe cache of objects keyed by (namespace, name), filled by an informer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

Key = tuple[str, str]
Obj = dict[str, Any]


def key_of(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def resource_version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def newer_or_same(candidate: str, current: str) -> bool:
    """Whether resourceVersion `candidate` is not older than `current`.

    resourceVersions are opaque; every apiserver backed by etcd serves them as integers, and
    only then are they compared. Anything else counts as newer (the watch is the authority).
    """
    if candidate.isdigit() and current.isdigit():
        return int(candidate) >= int(current)
    return True


class Store:
    def __init__(self) -> None:
        self._items: dict[Key, Obj] = {}
        self._lock = threading.Lock()

    def get(self, key: Key) -> Obj | None:
        with self._lock:
            return self._items.get(key)

    def put(self, obj: Obj) -> Obj | None:
        """Store `obj`; returns the object it replaced."""
        key = key_of(obj)
        with self._lock:
            old = self._items.get(key)
            self._items[key] = obj
            return old

    def put_if_newer(self, obj: Obj, *, insert: bool = True) -> bool:
        """Store an object we just wrote, unless the watch already delivered a newer version.

        With `insert=False` only an object still cached is updated: one whose deletion the watch
        has already reported must not come back as a ghost from a late write response.
        """
        key = key_of(obj)
        with self._lock:
            old = self._items.get(key)
            if old is None and not insert:
                return False
            if old is not None and not newer_or_same(resource_version(obj), resource_version(old)):
                return False
            self._items[key] = obj
            return True

    def delete(self, key: Key) -> Obj | None:
        with self._lock:
            return self._items.pop(key, None)

    def replace(self, objs: list[Obj]) -> tuple[list[Obj], list[Obj]]:
        """Replace the whole content (after a list); returns (objects now present, objects that vanished)."""
        fresh = {key_of(o): o for o in objs}
        with self._lock:
            vanished = [o for k, o in self._items.items() if k not in fresh]
            self._items = fresh
        return list(fresh.values()), vanished

    def list(self, predicate: Callable[[Obj], bool] | None = None) -> list[Obj]:
        with self._lock:
            items = list(self._items.values())
        return items if predicate is None else [o for o in items if predicate(o)]

    def keys(self) -> Iterator[Key]:
        with self._lock:
            return iter(list(self._items))

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
