"""Sample capability resources and Jobs for the operator unit tests."""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]


def resource(kind: str = "BuildRequest", name: str = "b1", **spec: Any) -> Obj:
    base_spec: Obj = {"image": "registry.example/builder:1", "timeoutSeconds": 600, "cancel": False}
    if kind == "DatabaseMigration":
        base_spec["databaseSecretRef"] = {"name": "orders-db"}
    base_spec.update(spec)
    return {
        "apiVersion": "remora.dev/v1alpha1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "uid": f"uid-of-{name}",
            "generation": 1,
            "resourceVersion": "10",
            "labels": {"remora.dev/agent": "agent-0"},
        },
        "spec": base_spec,
    }


def with_status(obj: Obj, **status: Any) -> Obj:
    out = copy.deepcopy(obj)
    out["status"] = status
    return out


def job_for(job: Obj, *conditions: tuple[str, str], reason: str = "", uid: str = "job-uid") -> Obj:
    out = copy.deepcopy(job)
    out["metadata"]["uid"] = uid
    out["status"] = {
        "active": 0 if conditions else 1,
        "conditions": [
            {"type": t, "status": s, "reason": reason or t, "message": f"{t} message"} for t, s in conditions
        ],
    }
    return out


def pod_with_message(message: str, finished: str = "2026-01-01T00:00:00Z") -> Obj:
    return {
        "metadata": {"name": "p"},
        "status": {
            "containerStatuses": [
                {
                    "name": "main",
                    "state": {"terminated": {"exitCode": 0, "message": message, "finishedAt": finished}},
                }
            ]
        },
    }
