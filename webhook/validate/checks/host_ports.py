"""HostPorts should be disallowed entirely.

Restricted fields: spec.{initContainers,containers,ephemeralContainers}[*].ports[*].hostPort
Allowed values: undefined/null, 0
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
    name_of,
    pluralize,
    unique,
    visit_containers,
)


def check(meta: Obj, spec: Obj) -> CheckResult:
    names: list[str] = []
    ports: list[str] = []
    causes: list[Cause] = []
    for container in visit_containers(spec):
        bad = False
        for index, port in enumerate(container.get("ports") or ()):
            host_port = port.get("hostPort")
            if host_port is not None and not (type(host_port) is int and host_port == 0):
                bad = True
                ports.append(str(host_port))
                causes.append(
                    Cause(f"{container_path(spec, container)}.ports[{index}].hostPort", "must be unset or 0")
                )
        if bad:
            names.append(name_of(container))
    if not names:
        return ALLOWED
    ports = unique(ports)
    return CheckResult(
        False,
        "hostPort",
        f"{containers_phrase(names)} {pluralize('uses', 'use', len(names))} "
        f"{pluralize('hostPort', 'hostPorts', len(ports))} {', '.join(ports)}",
        tuple(causes),
    )


CHECK = Check("hostPorts", "baseline", check, only_if_set=frozenset({"ports"}))
