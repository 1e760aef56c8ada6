"""Probes and lifecycle handlers must not reach a host other than the pod's own (policy v1.34).

Restricted fields, for spec.{initContainers,containers,ephemeralContainers}[*]:
  {livenessProbe,readinessProbe,startupProbe}.{httpGet,tcpSocket}.host
  lifecycle.{postStart,preStop}.{httpGet,tcpSocket}.host
Allowed values: undefined/null, ""
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
    pluralize,
    unique,
    visit_containers,
)


def _any_host(containers: list[Obj]) -> bool:
    """Whether any handler names a host at all: a quick pass, since almost no pod does."""
    for container in containers:
        lifecycle = container.get("lifecycle") or EMPTY
        for handler in (
            container.get("livenessProbe"),
            container.get("readinessProbe"),
            container.get("startupProbe"),
            lifecycle.get("postStart"),
            lifecycle.get("preStop"),
        ):
            if not handler:
                continue
            if (handler.get("httpGet") or EMPTY).get("host") or (handler.get("tcpSocket") or EMPTY).get(
                "host"
            ):
                return True
    return False


def _hosts(container: Obj) -> list[tuple[str, str]]:
    """(field path under the container, host) for each probe or lifecycle handler naming a host."""
    found: list[tuple[str, str]] = []
    lifecycle = container.get("lifecycle") or EMPTY
    for name, handler in (
        ("livenessProbe", container.get("livenessProbe")),
        ("readinessProbe", container.get("readinessProbe")),
        ("startupProbe", container.get("startupProbe")),
        ("lifecycle.postStart", lifecycle.get("postStart")),
        ("lifecycle.preStop", lifecycle.get("preStop")),
    ):
        if handler:
            http, tcp = handler.get("httpGet"), handler.get("tcpSocket")
            if http and (host := http.get("host")):
                found.append((f"{name}.httpGet.host", host))
            if tcp and (host := tcp.get("host")):
                found.append((f"{name}.tcpSocket.host", host))
    return found


def check(meta: Obj, spec: Obj) -> CheckResult:
    containers = visit_containers(spec)
    if not _any_host(containers):
        return ALLOWED
    names: list[str] = []
    hosts: list[str] = []
    causes: list[Cause] = []
    for container in containers:
        found = _hosts(container)
        if found:
            names.append(name_of(container))
            path = container_path(spec, container)
            for field, host in found:
                hosts.append(host)
                causes.append(Cause(f"{path}.{field}", "must not be set"))
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


CHECK = Check(
    "hostProbesAndHostLifecycle",
    "baseline",
    check,
    only_if_set=frozenset({"livenessProbe", "readinessProbe", "startupProbe", "lifecycle"}),
)
