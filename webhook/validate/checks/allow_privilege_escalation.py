"""Privilege escalation (setuid binaries, file capabilities) must be turned off in every container.

Restricted fields:
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.allowPrivilegeEscalation
Allowed values: false. Linux only: skipped for spec.os.name == "windows".
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
    visit_containers,
)


def check(meta: Obj, spec: Obj) -> CheckResult:
    names: list[str] = []
    causes: list[Cause] = []
    for container in visit_containers(spec):
        if (container.get("securityContext") or EMPTY).get("allowPrivilegeEscalation") is not False:
            names.append(name_of(container))
            causes.append(
                Cause(
                    f"{container_path(spec, container)}.securityContext.allowPrivilegeEscalation",
                    "must be false",
                )
            )
    if not names:
        return ALLOWED
    return CheckResult(
        False,
        "allowPrivilegeEscalation != false",
        f"{containers_phrase(names)} must set securityContext.allowPrivilegeEscalation=false",
        tuple(causes),
    )


CHECK = Check("allowPrivilegeEscalation", "restricted", check, linux_only=True)
