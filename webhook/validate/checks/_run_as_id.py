"""The shared rule behind `runAsUser_hardened` and `runAsGroup_hardened`: an explicit non-zero ID."""

from __future__ import annotations

from webhook.validate.checks.base import (
    ALLOWED,
    EMPTY,
    Cause,
    CheckResult,
    Obj,
    container_path,
    containers_phrase,
    name_of,
    setters,
    visit_security_contexts,
)


def _valid_id(value: object) -> bool:
    """A non-zero integer ID; anything else (0, a string, a boolean) is not."""
    return type(value) is int and value != 0


def explicit_non_zero(spec: Obj, field: str) -> CheckResult:
    """Every container runs with `field` set to a non-zero ID, by itself or inherited from the pod."""
    causes: list[Cause] = []
    pod_value = (spec.get("securityContext") or EMPTY).get(field)
    pod_ok = _valid_id(pod_value)
    pod_zero = pod_value is not None and not pod_ok
    if pod_zero:
        causes.append(Cause(f"spec.securityContext.{field}", "must not be 0"))
    zero: list[str] = []
    unset: list[str] = []
    for container, context in visit_security_contexts(spec):
        value = context.get(field)
        if (type(value) is int and value != 0) or (value is None and pod_ok):
            continue  # its own valid ID, or the pod's
        if value is not None:
            zero.append(name_of(container))
            causes.append(
                Cause(f"{container_path(spec, container)}.securityContext.{field}", "must not be 0")
            )
        else:  # unset, and the pod has no valid ID either
            unset.append(name_of(container))
            causes.append(
                Cause(
                    f"{container_path(spec, container)}.securityContext.{field}",
                    "must be set to a non-zero ID (here or on the pod)",
                )
            )
    details: list[str] = []
    if pod_zero or zero:
        details.append(f"{setters(pod_zero, zero)} must not set {field}=0")
    if unset:
        details.append(f"pod or {containers_phrase(unset)} must set securityContext.{field} to a non-zero ID")
    if not details:
        return ALLOWED
    return CheckResult(False, f"{field} not explicitly non-zero", "; ".join(details), tuple(causes))
