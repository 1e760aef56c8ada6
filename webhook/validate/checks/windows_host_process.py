"""Windows HostProcess containers get privileged access to the Windows node and must be disallowed.

Restricted fields:
  spec.securityContext.windowsOptions.hostProcess
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.windowsOptions.hostProcess
Allowed values: undefined/null, false
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
    enabled,
    name_of,
    obj,
    setters,
    visit_containers,
)


def check(meta: Obj, spec: Obj) -> CheckResult:
    causes: list[Cause] = []
    pod_bad = enabled(obj(obj(spec.get("securityContext")).get("windowsOptions")).get("hostProcess"))
    if pod_bad:
        causes.append(Cause("spec.securityContext.windowsOptions.hostProcess", "must not be true"))
    names: list[str] = []
    for container in visit_containers(spec):
        if enabled(obj((container.get("securityContext") or EMPTY).get("windowsOptions")).get("hostProcess")):
            names.append(name_of(container))
            causes.append(
                Cause(
                    f"{container_path(spec, container)}.securityContext.windowsOptions.hostProcess",
                    "must not be true",
                )
            )
    if not causes:
        return ALLOWED
    return CheckResult(
        False,
        "hostProcess",
        f"{setters(pod_bad, names)} must not set securityContext.windowsOptions.hostProcess=true",
        tuple(causes),
    )


CHECK = Check("windowsHostProcess", "baseline", check)
