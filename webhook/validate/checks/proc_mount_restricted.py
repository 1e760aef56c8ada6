"""The default /proc masks reduce the attack surface and are required.

Restricted fields: spec.{initContainers,containers,ephemeralContainers}[*].securityContext.procMount
Allowed values: undefined/null, "Default" (whatever spec.hostUsers says; overrides `procMount`)
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
    join_quote,
    name_of,
    unique,
)


def check(meta: Obj, spec: Obj) -> CheckResult:
    names: list[str] = []
    values: list[str] = []
    causes: list[Cause] = []
    for container, context in containers_setting(spec, "procMount"):
        proc_mount = context.get("procMount")
        if proc_mount is not None and proc_mount != "Default":
            names.append(name_of(container))
            values.append(proc_mount)
            causes.append(
                Cause(
                    f"{container_path(spec, container)}.securityContext.procMount",
                    f"must not be {proc_mount!r}",
                )
            )
    if not names:
        return ALLOWED
    return CheckResult(
        False,
        "procMount",
        f"{containers_phrase(names)} must not set securityContext.procMount to "
        f"{join_quote(sorted(unique(values)))}",
        tuple(causes),
    )


CHECK = Check(
    "procMount_restricted",
    "restricted",
    check,
    overrides=("procMount",),
    only_if_set=frozenset({"procMount"}),
)
