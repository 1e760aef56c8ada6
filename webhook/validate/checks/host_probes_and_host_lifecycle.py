"""Probes and lifecycle handlers must not reach a host other than the pod's own (policy v1.34).

Restricted fields, for spec.{initContainers,containers,ephemeralContainers}[*]:
  {livenessProbe,readinessProbe,startupProbe}.{httpGet,tcpSocket}.host
  lifecycle.{postStart,preStop}.{httpGet,tcpSocket}.host
Allowed values: undefined/null, ""
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
    join_quote,
    name_of,
    obj,
    pluralize,
    unique,
    visit_containers,
)

PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
HANDLERS = ("postStart", "preStop")
ACTIONS = ("httpGet", "tcpSocket")


def _handlers(container: Obj) -> list[tuple[str, Obj]]:
    """The container's probes and lifecycle handlers that are set, with their field names."""
    found = [(probe, container[probe]) for probe in PROBES if container.get(probe)]
    lifecycle = container.get("lifecycle")
    if lifecycle:
        found += [(f"lifecycle.{h}", lifecycle[h]) for h in HANDLERS if lifecycle.get(h)]
    return found


def check(meta: Obj, spec: Obj) -> CheckResult:
    names: list[str] = []
    hosts: list[str] = []
    causes: list[Cause] = []
    for container in visit_containers(spec):
        bad = False
        for name, handler in _handlers(container):
            for action in ACTIONS:
                host = obj(handler.get(action)).get("host")
                if host:
                    bad = True
                    hosts.append(host)
                    causes.append(
                        Cause(f"{container_path(spec, container)}.{name}.{action}.host", "must not be set")
                    )
        if bad:
            names.append(name_of(container))
    if not names:
        return ALLOWED
    hosts = sorted(unique(hosts))
    return CheckResult(
        False,
        "probe or lifecycle host",
        f"{containers_phrase(names)} {pluralize('uses', 'use', len(names))} "
        f"{pluralize('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} {join_quote(hosts)}",
        tuple(causes),
    )


CHECK = Check("hostProbesAndHostLifecycle", "baseline", check)
