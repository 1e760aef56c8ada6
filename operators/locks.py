"""At most one DatabaseMigration runs per target database (Secret) in a namespace.

The lock is a coordination.k8s.io Lease named for the Secret, created by the migration that
takes it (so creation is the atomic test-and-set), whose holder identity is `<name>/<uid>` of
that migration and whose one controller reference points at it: garbage collection frees the
lock when the holder is deleted. The holder deletes the Lease when it finishes; a waiter
breaks a Lease whose holder is gone or finished (a holder that crashed before releasing).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from operators.jobs import labels_for, owner_reference

Obj = dict[str, Any]

LEASE_PREFIX: Final = "remora-dbm-"
NAME_MAX: Final = 253


@dataclass(frozen=True)
class Lock:
    """The lock as observed: free (no holder), held by us, or held by another migration."""

    name: str
    holder_name: str | None = None
    holder_uid: str | None = None
    lease_uid: str = ""
    holder_finished: bool = False  # the holder is gone or done: the Lease is stale

    @property
    def free(self) -> bool:
        return self.holder_uid is None

    def held_by(self, resource: Obj) -> bool:
        return self.holder_uid is not None and self.holder_uid == resource["metadata"]["uid"]


def lease_name(secret: str) -> str:
    name = LEASE_PREFIX + re.sub(r"[^a-z0-9.-]", "-", secret.lower())
    if len(name) <= NAME_MAX:
        return name
    digest = hashlib.sha256(secret.encode()).hexdigest()[:10]
    return name[: NAME_MAX - 11].rstrip("-.") + "-" + digest


def holder_identity(resource: Obj) -> str:
    meta = resource["metadata"]
    return f"{meta['name']}/{meta['uid']}"


def parse_holder(lease: Obj) -> tuple[str | None, str | None]:
    identity = str((lease.get("spec") or {}).get("holderIdentity") or "")
    name, sep, uid = identity.rpartition("/")
    if not sep or not name or not uid:
        return None, None
    return name, uid


def lease_body(resource: Obj, secret: str, now: datetime) -> Obj:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": lease_name(secret),
            "namespace": resource["metadata"]["namespace"],
            "labels": labels_for(resource),
            "ownerReferences": [owner_reference(resource)],
        },
        "spec": {
            "holderIdentity": holder_identity(resource),
            "acquireTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
    }
