"""A seccomp profile must be set, and only the runtime default or a localhost profile is allowed.

Restricted fields:
  spec.securityContext.seccompProfile.type
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.seccompProfile.type
Allowed values: "RuntimeDefault", "Localhost"; a container may leave it undefined when the pod sets
an allowed one. Linux only: skipped for spec.os.name == "windows". Overrides `seccompProfile_baseline`.
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
    join_quote,
    name_of,
    setters,
    unique,
    visit_security_contexts,
)

ALLOWED_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def check(meta: Obj, spec: Obj) -> CheckResult:
    causes: list[Cause] = []
    values: list[str] = []
    pod_type = ((spec.get("securityContext") or EMPTY).get("seccompProfile") or EMPTY).get("type")
    pod_bad = pod_type is not None and pod_type not in ALLOWED_TYPES
    pod_set = pod_type is not None and not pod_bad
    if pod_bad:
        values.append(str(pod_type))
        causes.append(Cause("spec.securityContext.seccompProfile.type", f"must not be {pod_type!r}"))
    explicit: list[str] = []
    implicit: list[str] = []
    for container, context in visit_security_contexts(spec):
        kind = (context.get("seccompProfile") or EMPTY).get("type")
        if kind is not None:
            if kind not in ALLOWED_TYPES:
                explicit.append(name_of(container))
                values.append(str(kind))
                causes.append(
                    Cause(
                        f"{container_path(spec, container)}.securityContext.seccompProfile.type",
                        f"must not be {kind!r}",
                    )
                )
        elif not pod_set:
            implicit.append(name_of(container))
            causes.append(
                Cause(
                    f"{container_path(spec, container)}.securityContext.seccompProfile.type",
                    'must be "RuntimeDefault" or "Localhost"',
                )
            )
    if pod_bad or explicit:
        return CheckResult(
            False,
            "seccompProfile",
            f"{setters(pod_bad, explicit)} must not set securityContext.seccompProfile.type to "
            f"{join_quote(sorted(unique(values)))}",
            tuple(causes),
        )
    if implicit:
        return CheckResult(
            False,
            "seccompProfile",
            f"pod or {containers_phrase(implicit)} must set securityContext.seccompProfile.type to "
            '"RuntimeDefault" or "Localhost"',
            tuple(causes),
        )
    return ALLOWED


CHECK = Check(
    "seccompProfile_restricted",
    "restricted",
    check,
    overrides=("seccompProfile_baseline",),
    linux_only=True,
)
