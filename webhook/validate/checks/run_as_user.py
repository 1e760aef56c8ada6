"""Containers must not run as UID 0, unless the pod has its own user namespace (policy v1.35).

Restricted fields:
  spec.securityContext.runAsUser
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.runAsUser
Allowed values: undefined/null, any non-zero value; anything when spec.hostUsers is false
"""

from __future__ import annotations

from webhook.validate.checks.base import (
    ALLOWED,
    EMPTY,
    Cause,
    Check,
    CheckResult,
    Obj,
    container_path,
    containers_setting,
    name_of,
    setters,
)


def _root(value: object) -> bool:
    """UID 0, or a value that is not a UID at all (fails closed)."""
    return value is not None and (type(value) is not int or value == 0)


def check(meta: Obj, spec: Obj) -> CheckResult:
    if spec.get("hostUsers") is False:
        return ALLOWED
    causes: list[Cause] = []
    pod_bad = _root((spec.get("securityContext") or EMPTY).get("runAsUser"))
    if pod_bad:
        causes.append(Cause("spec.securityContext.runAsUser", "must not be 0"))
    names: list[str] = []
    for container, context in containers_setting(spec, "runAsUser"):
        if _root(context.get("runAsUser")):
            names.append(name_of(container))
            causes.append(
                Cause(f"{container_path(spec, container)}.securityContext.runAsUser", "must not be 0")
            )
    if not causes:
        return ALLOWED
    return CheckResult(
        False, "runAsUser=0", f"{setters(pod_bad, names)} must not set runAsUser=0", tuple(causes)
    )


CHECK = Check("runAsUser", "restricted", check, only_if_set=frozenset({"runAsUser"}))
