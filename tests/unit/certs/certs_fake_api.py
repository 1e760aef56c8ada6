"""An in-memory apiserver for unit tests that `common.kube.request` talks to unchanged.

It keeps objects by path, hands out resourceVersions and UIDs, and answers the way the
real apiserver does where the certificate code depends on it: 404, 409 AlreadyExists,
409 Conflict on a stale resourceVersion, JSON patch with failing `test` ops -> 422,
label selectors of the form k=v[,k=v].
"""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonpatch


@dataclass
class _Response:
    status: int
    data: bytes


class _Config:
    host = "https://fake"


class FakeApi:
    """Stands in for kubernetes.client.ApiClient."""

    def __init__(self) -> None:
        self.configuration = _Config()
        self.rest_client = self
        self.pool_manager = self
        self.objects: dict[str, dict[str, Any]] = {}
        self._rv = itertools.count(1)
        self.calls: list[tuple[str, str]] = []
        # Hooks to inject failures: (method, path-prefix) -> status
        self.fail: dict[tuple[str, str], int] = {}

    def update_params_for_auth(self, headers: dict[str, str], *args: Any) -> None:
        return None

    # -- helpers for tests --------------------------------------------------------------

    def put_object(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(next(self._rv))
        meta.setdefault("uid", str(uuid.uuid4()))
        self.objects[path] = obj
        return obj

    def get_object(self, path: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.objects.get(path))

    # -- the pool manager interface ---------------------------------------------------------

    def request(self, method: str, url: str, body: bytes | None = None, **_: Any) -> _Response:
        parts = urlsplit(url)
        path = parts.path
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.calls.append((method, path))
        for (m, prefix), status in self.fail.items():
            if m == method and path.startswith(prefix):
                return _status(status, "InternalError", "injected failure")
        payload = json.loads(body) if body else None
        if method == "GET":
            if path in self.objects:
                return _ok(self.objects[path])
            children = self._children(path, query.get("labelSelector"))
            if children is not None:
                return _ok({"kind": "List", "items": children, "metadata": {"resourceVersion": "0"}})
            return _status(404, "NotFound", f"{path} not found")
        if method == "POST":
            name = payload["metadata"]["name"]
            target = f"{path}/{name}"
            if target in self.objects:
                return _status(409, "AlreadyExists", f"{name} already exists")
            return _ok(self.put_object(target, payload), 201)
        if method == "PUT":
            live = self.objects.get(path)
            if live is None:
                return _status(404, "NotFound", f"{path} not found")
            sent_rv = payload.get("metadata", {}).get("resourceVersion")
            if sent_rv and sent_rv != live["metadata"]["resourceVersion"]:
                return _status(409, "Conflict", "the object has been modified")
            payload["metadata"]["uid"] = live["metadata"]["uid"]
            return _ok(self.put_object(path, payload))
        if method == "PATCH":
            live = self.objects.get(path)
            if live is None:
                return _status(404, "NotFound", f"{path} not found")
            try:
                patched = jsonpatch.apply_patch(copy.deepcopy(live), payload)
            except jsonpatch.JsonPatchTestFailed as exc:
                return _status(422, "Invalid", f"the server rejected our request: {exc}")
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                return _status(422, "Invalid", str(exc))
            return _ok(self.put_object(path, patched))
        if method == "DELETE":
            if self.objects.pop(path, None) is None:
                return _status(404, "NotFound", f"{path} not found")
            return _ok({"kind": "Status", "status": "Success"})
        return _status(405, "MethodNotAllowed", method)

    def _children(self, path: str, selector: str | None) -> list[dict[str, Any]] | None:
        prefix = path.rstrip("/") + "/"
        direct = [
            obj
            for key, obj in sorted(self.objects.items())
            if key.startswith(prefix) and "/" not in key[len(prefix) :]
        ]
        if not _is_collection(path):
            return None
        if selector:
            wanted = dict(part.split("=", 1) for part in selector.split(","))
            direct = [
                o
                for o in direct
                if all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
            ]
        return copy.deepcopy(direct)


def _is_collection(path: str) -> bool:
    segs = path.strip("/").split("/")
    rest = segs[2:] if segs[0] == "api" else segs[3:]
    if rest and rest[0] == "namespaces" and len(rest) >= 3:
        rest = rest[2:]
    return len(rest) == 1


def _ok(obj: dict[str, Any], status: int = 200) -> _Response:
    return _Response(status, json.dumps(obj).encode())


def _status(code: int, reason: str, message: str) -> _Response:
    return _Response(
        code, json.dumps({"kind": "Status", "code": code, "reason": reason, "message": message}).encode()
    )


WEBHOOK_API = "/apis/admissionregistration.k8s.io/v1"


def add_webhook_configs(api: FakeApi, name: str = "remora", ca_bundle: str | None = None) -> None:
    """A mutating config with one webhook and a validating one with two, as the chart makes them."""

    def hook(hook_name: str) -> dict[str, Any]:
        client: dict[str, Any] = {"service": {"name": "remora-webhook", "namespace": "remora-system"}}
        if ca_bundle:
            client["caBundle"] = ca_bundle
        return {"name": hook_name, "clientConfig": client, "sideEffects": "None"}

    labels = {"app.kubernetes.io/name": "remora"}
    api.put_object(
        f"{WEBHOOK_API}/mutatingwebhookconfigurations/{name}",
        {"metadata": {"name": name, "labels": labels}, "webhooks": [hook("inject.remora.dev")]},
    )
    api.put_object(
        f"{WEBHOOK_API}/validatingwebhookconfigurations/{name}",
        {
            "metadata": {"name": name, "labels": labels},
            "webhooks": [hook("pods.validate.remora.dev"), hook("resources.validate.remora.dev")],
        },
    )


def ca_bundles(api: FakeApi, name: str = "remora") -> list[str | None]:
    out: list[str | None] = []
    for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        obj = api.objects[f"{WEBHOOK_API}/{kind}/{name}"]
        out += [h["clientConfig"].get("caBundle") for h in obj["webhooks"]]
    return out
