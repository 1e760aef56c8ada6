"""The few Kubernetes calls the agent makes, on plain dicts, in its own namespace.

`Cluster` is the seam between the agent's logic and the API: `KubeCluster` speaks to a
real apiserver through common.kube; the unit tests use a small in-memory stand-in.
Transport failures become `ApiError` with status 0, so callers handle one error type.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import urllib3
from kubernetes import client

from common import kube
from common.kube import ApiError
from common.names import API_VERSION, Kind

Obj = dict[str, Any]


class Cluster(Protocol):
    namespace: str

    def create(self, kind: Kind, body: Obj) -> Obj: ...
    def get(self, kind: Kind, name: str) -> Obj | None: ...
    def merge_patch(self, kind: Kind, name: str, patch: Obj) -> Obj | None: ...
    def delete(self, kind: Kind, name: str) -> None: ...
    def list(self, kind: Kind, label_selector: str) -> tuple[list[Obj], str]: ...
    def watch(
        self, kind: Kind, label_selector: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[Obj]: ...
    def pod_uid(self, name: str) -> str: ...


class KubeCluster:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace

    def _path(self, kind: Kind, name: str | None = None) -> str:
        base = f"/apis/{API_VERSION}/namespaces/{self.namespace}/{kind.plural}"
        return f"{base}/{name}" if name else base

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return kube.request(self.api, method, path, **kwargs)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(0, "Unavailable", f"{method} {path}: {type(exc).__name__}: {exc}") from None

    def create(self, kind: Kind, body: Obj) -> Obj:
        # Strict: a parameter the CRD does not know is an error the item's submitter should see,
        # not a field the apiserver silently prunes.
        return dict(self._call("POST", self._path(kind), body=body, query={"fieldValidation": "Strict"}))

    def get(self, kind: Kind, name: str) -> Obj | None:
        try:
            return dict(self._call("GET", self._path(kind, name)))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    def merge_patch(self, kind: Kind, name: str, patch: Obj) -> Obj | None:
        try:
            return dict(
                self._call(
                    "PATCH", self._path(kind, name), body=patch, content_type="application/merge-patch+json"
                )
            )
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    def delete(self, kind: Kind, name: str) -> None:
        try:
            self._call("DELETE", self._path(kind, name), query={"propagationPolicy": "Background"})
        except ApiError as exc:
            if not exc.not_found:
                raise

    def list(self, kind: Kind, label_selector: str) -> tuple[list[Obj], str]:
        reply = self._call("GET", self._path(kind), query={"labelSelector": label_selector})
        return list(reply.get("items") or []), str((reply.get("metadata") or {}).get("resourceVersion") or "")

    def watch(
        self, kind: Kind, label_selector: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[Obj]:
        query: dict[str, str | int | bool] = {
            "watch": True,
            "labelSelector": label_selector,
            "resourceVersion": resource_version,
            "allowWatchBookmarks": True,
            "timeoutSeconds": timeout_seconds,
        }
        try:
            yield from kube.stream(self.api, self._path(kind), query, read_timeout=timeout_seconds + 30)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(0, "Unavailable", f"watch {kind.plural}: {type(exc).__name__}: {exc}") from None

    def pod_uid(self, name: str) -> str:
        pod = self._call("GET", f"/api/v1/namespaces/{self.namespace}/pods/{name}")
        return str(pod["metadata"]["uid"])
