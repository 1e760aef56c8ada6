"""Remora hardened: every container's root filesystem is read-only.

Why: a writable image filesystem lets an intruder drop tools or patch binaries that outlive a single
process; scratch space belongs in an emptyDir that is visible in the pod spec.

Restricted fields:
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.readOnlyRootFilesystem
Allowed values: true. Linux only (the Pod API forbids the field on Windows pods).
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
        if (container.get("securityContext") or EMPTY).get("readOnlyRootFilesystem") is not True:
            names.append(name_of(container))
            causes.append(
                Cause(
                    f"{container_path(spec, container)}.securityContext.readOnlyRootFilesystem",
                    "must be true",
                )
            )
    if not names:
        return ALLOWED
    return CheckResult(
        False,
        "readOnlyRootFilesystem != true",
        f"{containers_phrase(names)} must set securityContext.readOnlyRootFilesystem=true",
        tuple(causes),
    )


CHECK = Check("readOnlyRootFilesystem", "hardened", check, linux_only=True)
