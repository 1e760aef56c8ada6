"""Containers must drop ALL capabilities and may add back only NET_BIND_SERVICE.

Restricted fields:
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.capabilities.drop
  Allowed values: must include "ALL"
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.capabilities.add
  Allowed values: undefined/empty, "NET_BIND_SERVICE"
Linux only: skipped for spec.os.name == "windows". Overrides `capabilities_baseline`.
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
    unique,
    visit_security_contexts,
)


def check(meta: Obj, spec: Obj) -> CheckResult:
    missing_drop: list[str] = []
    adding: list[str] = []
    added: list[str] = []
    causes: list[Cause] = []
    for container, context in visit_security_contexts(spec):
        capabilities = context.get("capabilities") or EMPTY
        drop = capabilities.get("drop")
        if type(drop) is not list or "ALL" not in drop:
            missing_drop.append(name_of(container))
            causes.append(
                Cause(
                    f"{container_path(spec, container)}.securityContext.capabilities.drop",
                    'must include "ALL"',
                )
            )
        bad = [cap for cap in capabilities.get("add") or () if cap != "NET_BIND_SERVICE"]
        if bad:
            adding.append(name_of(container))
            added.extend(bad)
            causes.append(
                Cause(
                    f"{container_path(spec, container)}.securityContext.capabilities.add",
                    f"must not include {join_quote(bad)}",
                )
            )
    details: list[str] = []
    if missing_drop:
        details.append(
            f'{containers_phrase(missing_drop)} must set securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{containers_phrase(adding)} must not include {join_quote(sorted(unique(added)))} "
            "in securityContext.capabilities.add"
        )
    if not details:
        return ALLOWED
    return CheckResult(False, "unrestricted capabilities", "; ".join(details), tuple(causes))


CHECK = Check(
    "capabilities_restricted",
    "restricted",
    check,
    overrides=("capabilities_baseline",),
    linux_only=True,
)
