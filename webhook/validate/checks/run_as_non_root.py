"""Containers must run as non-root users, unless the pod has its own user namespace (policy v1.35).

Restricted fields:
  spec.securityContext.runAsNonRoot
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.runAsNonRoot
Allowed values: true; a container may leave it undefined when the pod sets true. Anything goes when
spec.hostUsers is false (root in a user namespace is not root on the node).
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
    containers_phrase,
    name_of,
    setters,
    visit_security_contexts,
)


def check(meta: Obj, spec: Obj) -> CheckResult:
    if spec.get("hostUsers") is False:
        return ALLOWED
    causes: list[Cause] = []
    pod_value = (spec.get("securityContext") or EMPTY).get("runAsNonRoot")
    pod_bad = pod_value is not None and pod_value is not True
    if pod_bad:
        causes.append(Cause("spec.securityContext.runAsNonRoot", "must not be false"))
    explicit: list[str] = []
    implicit: list[str] = []
    for container, context in visit_security_contexts(spec):
        value = context.get("runAsNonRoot")
        if value is not None and value is not True:
            explicit.append(name_of(container))
            causes.append(
                Cause(f"{container_path(spec, container)}.securityContext.runAsNonRoot", "must not be false")
            )
        elif value is None and pod_value is not True:
            implicit.append(name_of(container))
            causes.append(
                Cause(
                    f"{container_path(spec, container)}.securityContext.runAsNonRoot",
                    "must be true (here or on the pod)",
                )
            )
    if pod_bad or explicit:
        return CheckResult(
            False,
            "runAsNonRoot != true",
            f"{setters(pod_bad, explicit)} must not set securityContext.runAsNonRoot=false",
            tuple(c for c in causes if c.message == "must not be false"),
        )
    if implicit:
        return CheckResult(
            False,
            "runAsNonRoot != true",
            f"pod or {containers_phrase(implicit)} must set securityContext.runAsNonRoot=true",
            tuple(causes),
        )
    return ALLOWED


CHECK = Check("runAsNonRoot", "restricted", check)
