"""An in-memory stand-in for the apiserver at the `Client.request` level, for reconcile tests.

It keeps objects by path, assigns uids and integer resourceVersions, enforces optimistic
concurrency on PUT and uid preconditions on DELETE, and answers label-selected lists.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from typing import Any

from common.kube import ApiError
from operators.runtime.client import Client

Obj = dict[str, Any]


class FakeClient(Client):
    def __init__(self) -> None:
        super().__init__(api=None)
        self.objects: dict[str, Obj] = {}
        self.calls: list[tuple[str, str]] = []
        self._rv = itertools.count(100)
        self._uid = itertools.count(1)
        self.fail_next: dict[tuple[str, str], ApiError] = {}

    # -- test helpers ----------------------------------------------------------------------

    def seed(self, collection: str, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{next(self._uid)}")
        meta["resourceVersion"] = str(next(self._rv))
        meta.setdefault("generation", 1)
        self.objects[f"{collection}/{meta['name']}"] = obj
        return copy.deepcopy(obj)

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] != "GET"]

    # -- the API ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str | int | bool] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        self._timeout(f"{method} {path}")
        self.calls.append((method, path))
        failure = self.fail_next.pop((method, path), None)
        if failure is not None:
            raise failure
        if method == "GET":
            return self._get(path, query or {})
        if method == "POST":
            return self._create(path, body)
        if method == "PUT":
            return self._replace(path, body)
        if method == "DELETE":
            return self._delete(path, body or {})
        raise AssertionError(f"unexpected {method}")

    def _get(self, path: str, query: Mapping[str, str | int | bool]) -> Any:
        if path in self.objects:
            return copy.deepcopy(self.objects[path])
        prefix = path + "/"
        items = [o for p, o in self.objects.items() if p.startswith(prefix) and "/" not in p[len(prefix) :]]
        if items or path.endswith("s"):
            selector = str(query.get("labelSelector", ""))
            return {"items": [copy.deepcopy(o) for o in items if _matches(o, selector)]}
        raise ApiError(404, "NotFound", f"{path} not found")

    def _create(self, path: str, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        if f"{path}/{name}" in self.objects:
            raise ApiError(409, "AlreadyExists", f"{name} already exists")
        return self.seed(path, body)

    def _replace(self, path: str, body: Obj) -> Obj:
        subresource = path.endswith("/status")
        target = path.removesuffix("/status")
        current = self.objects.get(target)
        if current is None:
            raise ApiError(404, "NotFound", f"{target} not found")
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        updated = copy.deepcopy(current)
        if subresource:
            updated["status"] = copy.deepcopy(body.get("status"))
        else:
            updated["spec"] = copy.deepcopy(body.get("spec"))
        updated["metadata"]["resourceVersion"] = str(next(self._rv))
        self.objects[target] = updated
        return copy.deepcopy(updated)

    def _delete(self, path: str, options: Obj) -> Obj:
        current = self.objects.get(path)
        if current is None:
            raise ApiError(404, "NotFound", f"{path} not found")
        uid = (options.get("preconditions") or {}).get("uid")
        if uid and uid != current["metadata"]["uid"]:
            raise ApiError(409, "Conflict", "precondition failed: uid")
        del self.objects[path]
        return {"kind": "Status", "status": "Success"}


def _matches(obj: Obj, selector: str) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True
