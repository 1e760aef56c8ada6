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
    containers_setting,
    enabled,
    name_of,
    setters,
)


def check(meta: Obj, spec: Obj) -> CheckResult:
    causes: list[Cause] = []
    pod_options = (spec.get("securityContext") or EMPTY).get("windowsOptions") or EMPTY
    pod_bad = enabled(pod_options.get("hostProcess"))
    if pod_bad:
        causes.append(Cause("spec.securityContext.windowsOptions.hostProcess", "must not be true"))
    names: list[str] = []
    for container, context in containers_setting(spec, "windowsOptions"):
        options = context.get("windowsOptions") or EMPTY
        if enabled(options.get("hostProcess")):
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


CHECK = Check("windowsHostProcess", "baseline", check, only_if_set=frozenset({"windowsOptions"}))
