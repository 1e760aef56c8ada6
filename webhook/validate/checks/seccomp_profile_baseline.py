"""The seccomp profile must not be explicitly set to Unconfined.

Restricted fields:
  spec.securityContext.seccompProfile.type
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.seccompProfile.type
Allowed values: undefined/null, "RuntimeDefault", "Localhost"
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
    join_quote,
    name_of,
    setters,
    unique,
)

ALLOWED_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def check(meta: Obj, spec: Obj) -> CheckResult:
    causes: list[Cause] = []
    values: list[str] = []
    pod_type = ((spec.get("securityContext") or EMPTY).get("seccompProfile") or EMPTY).get("type")
    pod_bad = pod_type is not None and pod_type not in ALLOWED_TYPES
    if pod_bad:
        values.append(str(pod_type))
        causes.append(Cause("spec.securityContext.seccompProfile.type", f"must not be {pod_type!r}"))
    names: list[str] = []
    for container, context in containers_setting(spec, "seccompProfile"):
        kind = (context.get("seccompProfile") or EMPTY).get("type")
        if kind is not None and kind not in ALLOWED_TYPES:
            names.append(name_of(container))
            values.append(str(kind))
            causes.append(
                Cause(
                    f"{container_path(spec, container)}.securityContext.seccompProfile.type",
                    f"must not be {kind!r}",
                )
            )
    if not causes:
        return ALLOWED
    return CheckResult(
        False,
        "seccompProfile",
        f"{setters(pod_bad, names)} must not set securityContext.seccompProfile.type to "
        f"{join_quote(sorted(unique(values)))}",
        tuple(causes),
    )


CHECK = Check("seccompProfile_baseline", "baseline", check, only_if_set=frozenset({"seccompProfile"}))
