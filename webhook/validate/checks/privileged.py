"""Privileged containers disable most security mechanisms and must be disallowed.

Restricted fields: spec.{initContainers,containers,ephemeralContainers}[*].securityContext.privileged
Allowed values: undefined/null, false
"""

from __future__ import annotations

from webhook.validate.checks.base import (
    ALLOWED,
    Cause,
    Check,
    CheckResult,
    Obj,
    container_path,
    containers_phrase,
    containers_setting,
    enabled,
    name_of,
)


def check(meta: Obj, spec: Obj) -> CheckResult:
    names: list[str] = []
    causes: list[Cause] = []
    for container, context in containers_setting(spec, "privileged"):
        if enabled(context.get("privileged")):
            names.append(name_of(container))
            causes.append(
                Cause(f"{container_path(spec, container)}.securityContext.privileged", "must not be true")
            )
    if not names:
        return ALLOWED
    return CheckResult(
        False,
        "privileged",
        f"{containers_phrase(names)} must not set securityContext.privileged=true",
        tuple(causes),
    )


CHECK = Check("privileged", "baseline", check, only_if_set=frozenset({"privileged"}))
