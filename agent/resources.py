"""Work items as capability resources, and resources back as outcomes: pure functions.

The resource for an item has a name derived only from the item id, so a second create
for the same item meets AlreadyExists instead of starting the work twice. The item's
parameters are the resource's spec as they are: the CRD's schema (enforced by the
apiserver with strict field validation) is the one place that says what a valid spec is.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Final

from agent.podinfo import PodIdentity
from common.names import AGENT_LABEL, API_VERSION, Kind

Obj = dict[str, Any]

# The agent's own bookkeeping on the resources it creates, read back after a restart.
ITEM_ID_ANNOTATION: Final = "remora.dev/item-id"
LEASE_TOKEN_ANNOTATION: Final = "remora.dev/lease-token"  # noqa: S105 - an annotation key

MAX_NAME: Final = 52  # leaves room for the operator's suffix on the Job (itself capped at 63)
HASH_CHARS: Final = 10
_DNS_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_NOT_NAME_CHARS: Final = re.compile(r"[^a-z0-9-]+")

PHASE_OUTCOMES: Final = {"Succeeded": "succeeded", "Failed": "failed", "Unknown": "unknown"}


def resource_name(item_id: str) -> str:
    """A DNS-1123 label from an item id: the id itself when it already is one, else a sanitized
    prefix plus a hash of the exact id (so distinct ids never share a name)."""
    if len(item_id) <= MAX_NAME and _DNS_LABEL.fullmatch(item_id):
        return item_id
    digest = hashlib.sha256(item_id.encode("utf-8")).hexdigest()[:HASH_CHARS]
    stem = _NOT_NAME_CHARS.sub("-", item_id.lower()).strip("-")[: MAX_NAME - HASH_CHARS - 1].strip("-")
    return f"{stem}-{digest}" if stem else f"item-{digest}"


def desired_resource(kind: Kind, item_id: str, parameters: Obj, pod: PodIdentity, lease_token: str) -> Obj:
    return {
        "apiVersion": API_VERSION,
        "kind": kind.kind,
        "metadata": {
            "name": resource_name(item_id),
            "namespace": pod.namespace,
            "labels": {AGENT_LABEL: pod.name},
            "annotations": {ITEM_ID_ANNOTATION: item_id, LEASE_TOKEN_ANNOTATION: lease_token},
            "ownerReferences": [owner_reference(pod)],
        },
        "spec": {**parameters, "cancel": False},
    }


def owner_reference(pod: PodIdentity) -> Obj:
    """The pod owns its work, but not as controller and without blocking its own deletion."""
    return {"apiVersion": "v1", "kind": "Pod", "name": pod.name, "uid": pod.uid}


def takeover_patch(pod: PodIdentity, lease_token: str) -> Obj:
    """Merge patch that moves an existing resource for the same item to this agent and lease."""
    return {
        "metadata": {
            "labels": {AGENT_LABEL: pod.name},
            "annotations": {LEASE_TOKEN_ANNOTATION: lease_token},
            "ownerReferences": [owner_reference(pod)],
        }
    }


def item_of(resource: Obj) -> tuple[str, str] | None:
    """(item id, lease token) recorded on a resource this agent created, or None."""
    annotations = (resource.get("metadata") or {}).get("annotations") or {}
    item_id = annotations.get(ITEM_ID_ANNOTATION)
    token = annotations.get(LEASE_TOKEN_ANNOTATION)
    if isinstance(item_id, str) and isinstance(token, str) and item_id and token:
        return item_id, token
    return None


def name_of(resource: Obj) -> str:
    return str((resource.get("metadata") or {}).get("name") or "")


def being_deleted(resource: Obj) -> bool:
    return bool((resource.get("metadata") or {}).get("deletionTimestamp"))


def outcome_of(resource: Obj) -> tuple[str, Obj] | None:
    """The broker outcome and details once the resource's phase is terminal; None while it runs."""
    status = resource.get("status")
    if not isinstance(status, dict):
        return None
    outcome = PHASE_OUTCOMES.get(str(status.get("phase")))
    if outcome is None:
        return None
    meta = resource.get("metadata") or {}
    details: Obj = {
        "phase": status.get("phase"),
        "resource": {
            "kind": resource.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
        },
    }
    for key in ("result", "conditions", "jobName", "startTime", "completionTime"):
        if status.get(key) is not None:
            details[key] = status[key]
    return outcome, details
