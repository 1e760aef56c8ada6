"""The Secret that holds Remora's certificates: read it, and write it without losing a race.

Writes carry the resourceVersion they were planned from; when another writer got there
first the apiserver answers 409 and the caller re-reads and plans again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from certs.state import CertState, from_secret, secret_annotations, secret_data
from common.kube import ApiError, request


class StoreConflict(Exception):
    """Someone else changed the Secret since it was read; re-read and plan again."""


class MissingOwner(Exception):
    """The object that should own the Secret and Lease does not exist."""


@dataclass(frozen=True)
class SecretRef:
    namespace: str
    name: str

    @property
    def path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/secrets/{self.name}"

    @property
    def collection(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/secrets"


@dataclass(frozen=True)
class Owner:
    """An object whose deletion should delete the Secret too (garbage collection)."""

    api_version: str
    kind: str
    name: str
    uid: str

    def reference(self) -> dict[str, str]:
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name, "uid": self.uid}


def read(api: Any, ref: SecretRef) -> CertState:
    """The stored state; an empty state when the Secret does not exist."""
    try:
        secret = request(api, "GET", ref.path)
    except ApiError as exc:
        if exc.not_found:
            return CertState()
        raise
    return from_secret(secret)


def write(
    api: Any, ref: SecretRef, state: CertState, labels: dict[str, str], owner: Owner | None = None
) -> CertState:
    """Create or replace the Secret with `state`; returns the state with its new resourceVersion."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": ref.name,
            "namespace": ref.namespace,
            "labels": labels,
            "annotations": secret_annotations(state),
        },
        "data": secret_data(state),
    }
    if owner is not None:
        body["metadata"]["ownerReferences"] = [owner.reference()]
    try:
        if state.resource_version is None:
            saved = request(api, "POST", ref.collection, body=body)
        else:
            body["metadata"]["resourceVersion"] = state.resource_version
            saved = _replace_keeping_metadata(api, ref, body)
    except ApiError as exc:
        if exc.conflict:
            raise StoreConflict(f"secret {ref.namespace}/{ref.name} changed meanwhile") from None
        if exc.not_found:
            raise StoreConflict(f"secret {ref.namespace}/{ref.name} was deleted meanwhile") from None
        raise
    return state.evolve(resource_version=saved["metadata"]["resourceVersion"])


def _replace_keeping_metadata(api: Any, ref: SecretRef, body: dict[str, Any]) -> Any:
    """PUT with the read resourceVersion. Labels and annotations other tools added survive:
    they are merged from the live object read at the same resourceVersion."""
    live = request(api, "GET", ref.path)
    live_meta = live.get("metadata") or {}
    if live_meta.get("resourceVersion") != body["metadata"]["resourceVersion"]:
        raise ApiError(409, "Conflict", "resourceVersion moved")
    meta = body["metadata"]
    meta["labels"] = {**(live_meta.get("labels") or {}), **meta["labels"]}
    meta["annotations"] = {**(live_meta.get("annotations") or {}), **meta["annotations"]}
    if "ownerReferences" not in meta and live_meta.get("ownerReferences"):
        meta["ownerReferences"] = live_meta["ownerReferences"]
    if live.get("type"):
        # The type of a Secret cannot change; keep whatever it was created with.
        body["type"] = live["type"]
    return request(api, "PUT", ref.path, body=body)


def find_owner(api: Any, namespace: str, configmap: str | None) -> Owner | None:
    """The named ConfigMap as an owner (the chart's catalog), or None when it is absent."""
    if not configmap:
        return None
    try:
        cm = request(api, "GET", f"/api/v1/namespaces/{namespace}/configmaps/{configmap}")
    except ApiError as exc:
        if exc.not_found or exc.status == 403:
            return None
        raise
    return Owner("v1", "ConfigMap", configmap, cm["metadata"]["uid"])
