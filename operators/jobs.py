"""Jobs the capability operators create: names, labels, the owner reference, hardened pods,
and judging a Job's outcome from its conditions.

Hardened pods: runAsNonRoot with explicit non-zero runAsUser/runAsGroup, a read-only root
filesystem (writable emptyDirs at /tmp and /workspace instead), no privilege escalation, all
capabilities dropped, the RuntimeDefault seccomp profile, a memory limit on every container,
and no service account token (the work has no business with the Kubernetes API).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Final

from common import names

Obj = dict[str, Any]

RUN_AS_USER: Final = 65532
RUN_AS_GROUP: Final = 65532
DEFAULT_MEMORY_LIMIT: Final = "512Mi"
TMP_SIZE_LIMIT: Final = "1Gi"
WORKSPACE: Final = "/workspace"
MAIN_CONTAINER: Final = "main"
JOB_NAME_MAX: Final = 63  # the job-name label on its pods must be a valid label value
JOB_UID_LABEL: Final = "batch.kubernetes.io/controller-uid"


def job_name(resource: Obj, short_name: str) -> str:
    """`<name>-<short>-<6 hex of the uid>`: deterministic per resource, unique per incarnation.

    The uid part means a resource deleted and created again under the same name never meets
    the Job of its predecessor still waiting for garbage collection.
    """
    meta = resource["metadata"]
    digest = hashlib.sha256(str(meta["uid"]).encode()).hexdigest()[:6]
    suffix = f"-{short_name}-{digest}"
    base = re.sub(r"[^a-z0-9-]", "-", str(meta["name"]).lower())[: JOB_NAME_MAX - len(suffix)]
    return base.rstrip("-") + suffix


def owner_reference(resource: Obj) -> Obj:
    """The one controller reference to the live resource; blockOwnerDeletion deliberately absent."""
    meta = resource["metadata"]
    return {
        "apiVersion": resource["apiVersion"],
        "kind": resource["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
    }


def labels_for(resource: Obj) -> dict[str, str]:
    labels = (resource.get("metadata") or {}).get("labels") or {}
    out = {names.MANAGED_BY_LABEL: names.MANAGED_BY_VALUE}
    agent = labels.get(names.AGENT_LABEL)
    if agent:
        out[names.AGENT_LABEL] = str(agent)
    return out


def is_controlled_by(obj: Obj, resource: Obj) -> bool:
    uid = (resource.get("metadata") or {}).get("uid")
    return any(
        isinstance(ref, dict) and ref.get("controller") is True and ref.get("uid") == uid
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
    )


def container_security_context() -> Obj:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_GROUP,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context() -> Obj:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_GROUP,
        "fsGroup": RUN_AS_GROUP,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources_with_memory_limit(resources: Obj | None) -> Obj:
    """The requested resources, with a memory limit added when none is given."""
    out: Obj = {k: dict(v) for k, v in (resources or {}).items() if k in ("limits", "requests") and v}
    limits = out.setdefault("limits", {})
    if "memory" not in limits:
        limits["memory"] = (out.get("requests") or {}).get("memory", DEFAULT_MEMORY_LIMIT)
    return out


def container(
    name: str,
    image: str,
    *,
    command: list[str] | None = None,
    args: list[str] | None = None,
    env: list[Obj] | None = None,
    resources: Obj | None = None,
    mounts: list[Obj] | None = None,
    working_dir: str | None = None,
    env_from: list[Obj] | None = None,
) -> Obj:
    spec: Obj = {"name": name, "image": image}
    if command:
        spec["command"] = list(command)
    if args:
        spec["args"] = list(args)
    if env:
        spec["env"] = [dict(e) for e in env]
    if env_from:
        spec["envFrom"] = env_from
    if working_dir:
        spec["workingDir"] = working_dir
    spec["resources"] = resources_with_memory_limit(resources)
    spec["securityContext"] = container_security_context()
    spec["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}, *(mounts or [])]  # noqa: S108 - emptyDir
    # The result (test counts, a digest) travels in the termination message; logs if it fails.
    spec["terminationMessagePolicy"] = "FallbackToLogsOnError"
    return spec


def job(
    resource: Obj,
    name: str,
    *,
    containers: list[Obj],
    init_containers: list[Obj] | None = None,
    volumes: list[Obj] | None = None,
    backoff_limit: int = 0,
    active_deadline_seconds: int | None = None,
) -> Obj:
    labels = labels_for(resource)
    pod_spec: Obj = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        "containers": containers,
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}}, *(volumes or [])],
    }
    if init_containers:
        pod_spec["initContainers"] = init_containers
    spec: Obj = {
        "backoffLimit": backoff_limit,
        "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
    }
    if active_deadline_seconds:
        spec["activeDeadlineSeconds"] = active_deadline_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": resource["metadata"]["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(resource)],
        },
        "spec": spec,
    }


# -- judging a Job -----------------------------------------------------------------------------

SUCCESS_CONDITIONS: Final = ("Complete", "SuccessCriteriaMet")
FAILURE_CONDITIONS: Final = ("Failed", "FailureTarget")


@dataclass(frozen=True)
class JobOutcome:
    succeeded: bool
    reason: str
    message: str


def job_outcome(job: Obj) -> JobOutcome | None:
    """Success or failure from the Job's conditions (Complete/Failed, or the 1.31+ early
    SuccessCriteriaMet/FailureTarget); None while it is still running."""
    conditions = [c for c in (job.get("status") or {}).get("conditions") or [] if isinstance(c, dict)]
    for cond in conditions:
        if cond.get("status") == "True" and cond.get("type") in FAILURE_CONDITIONS:
            return JobOutcome(False, str(cond.get("reason") or "JobFailed"), str(cond.get("message") or ""))
    for cond in conditions:
        if cond.get("status") == "True" and cond.get("type") in SUCCESS_CONDITIONS:
            return JobOutcome(True, "JobComplete", str(cond.get("message") or "the Job completed"))
    return None


def termination_message(pods: list[Obj]) -> str | None:
    """The main container's termination message from the Job's newest terminated pod."""
    terminated: list[tuple[str, str]] = []
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if not isinstance(status, dict) or status.get("name") != MAIN_CONTAINER:
                continue
            state = (status.get("state") or {}).get("terminated")
            if isinstance(state, dict) and state.get("message"):
                terminated.append((str(state.get("finishedAt") or ""), str(state["message"])))
    if not terminated:
        return None
    return max(terminated)[1]
