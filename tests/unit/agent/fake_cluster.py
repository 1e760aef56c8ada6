"""An in-memory stand-in for the few apiserver behaviours the agent relies on (unit tests only).

Create (AlreadyExists, strict field validation on a marker field), get, JSON merge patch,
delete, list by label and watch from a resourceVersion. The real API path is covered by
tests/e2e/test_agent_flow.py.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from common.kube import ApiError
from common.names import Kind

Obj = dict[str, Any]
REFUSED_FIELD = "notAField"  # a spec field the fake's "CRD schema" does not know


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


class FakeCluster:
    def __init__(self, namespace: str = "work") -> None:
        self.namespace = namespace
        self.objects: dict[tuple[str, str], Obj] = {}
        self.events: list[tuple[int, str, str, Obj]] = []
        self.version = 0
        self.creates: list[tuple[str, str]] = []
        self.unavailable = False
        self._cond = threading.Condition()
        self._closed = False

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _record(self, kind: Kind, event: str, obj: Obj) -> Obj:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        self.events.append((self.version, kind.kind, event, copy.deepcopy(obj)))
        self._cond.notify_all()
        return copy.deepcopy(obj)

    def _check(self) -> None:
        if self.unavailable:
            raise ApiError(0, "Unavailable", "connection refused")

    def create(self, kind: Kind, body: Obj) -> Obj:
        with self._cond:
            self._check()
            name = body["metadata"]["name"]
            if (kind.kind, name) in self.objects:
                raise ApiError(409, "AlreadyExists", f'{kind.plural} "{name}" already exists')
            if REFUSED_FIELD in (body.get("spec") or {}):
                raise ApiError(
                    422, "Invalid", f'{kind.kind} "{name}" is invalid: spec.{REFUSED_FIELD}: unknown field'
                )
            obj = copy.deepcopy(body)
            obj["metadata"].update(uid=str(uuid.uuid4()), generation=1, namespace=self.namespace)
            self.objects[(kind.kind, name)] = obj
            self.creates.append((kind.kind, name))
            return self._record(kind, "ADDED", obj)

    def get(self, kind: Kind, name: str) -> Obj | None:
        with self._cond:
            self._check()
            obj = self.objects.get((kind.kind, name))
            return copy.deepcopy(obj) if obj else None

    def merge_patch(self, kind: Kind, name: str, patch: Obj) -> Obj | None:
        with self._cond:
            self._check()
            obj = self.objects.get((kind.kind, name))
            if obj is None:
                return None
            new = merge(obj, patch)
            self.objects[(kind.kind, name)] = new
            return self._record(kind, "MODIFIED", new)

    def set_status(self, kind: Kind, name: str, status: Obj) -> None:
        """What an operator does through /status."""
        with self._cond:
            obj = self.objects[(kind.kind, name)]
            obj["status"] = copy.deepcopy(status)
            self._record(kind, "MODIFIED", obj)

    def delete(self, kind: Kind, name: str) -> None:
        with self._cond:
            self._check()
            obj = self.objects.pop((kind.kind, name), None)
            if obj is not None:
                self._record(kind, "DELETED", obj)

    def list(self, kind: Kind, label_selector: str) -> tuple[list[Obj], str]:
        with self._cond:
            self._check()
            items = [
                copy.deepcopy(o)
                for (k, _), o in self.objects.items()
                if k == kind.kind and _match(o, label_selector)
            ]
            return items, str(self.version)

    def watch(
        self, kind: Kind, label_selector: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[Obj]:
        seen = int(resource_version or 0)
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            with self._cond:
                if self._closed:
                    return
                fresh = [e for e in self.events if e[0] > seen]
                if not fresh:
                    self._cond.wait(0.1)
                    continue
            for version, event_kind, event, obj in fresh:
                seen = version
                if event_kind == kind.kind and _match(obj, label_selector):
                    yield {"type": event, "object": obj}

    def pod_uid(self, name: str) -> str:
        return "pod-uid-" + name

    def find(self, kind: Kind, name: str) -> Obj | None:
        with self._cond:
            obj = self.objects.get((kind.kind, name))
            return copy.deepcopy(obj) if obj else None


def _match(obj: Obj, selector: str) -> bool:
    labels = obj["metadata"].get("labels") or {}
    key, _, value = selector.partition("=")
    return labels.get(key) == value
