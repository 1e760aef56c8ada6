"""Remora hardened: containers drop ALL capabilities and add none back, not even NET_BIND_SERVICE.

Why: capability operators and agents listen on unprivileged ports; any added capability is
authority no Remora workload needs, and an empty list is easy to audit.

Restricted fields:
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.capabilities.drop
  Allowed values: must include "ALL"
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.capabilities.add
  Allowed values: undefined/empty
Linux only. Overrides `capabilities_restricted` (and so `capabilities_baseline`).
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
        add = list(capabilities.get("add") or ())
        if add:
            adding.append(name_of(container))
            added.extend(add)
            causes.append(
                Cause(f"{container_path(spec, container)}.securityContext.capabilities.add", "must be empty")
            )
    details: list[str] = []
    if missing_drop:
        details.append(
            f'{containers_phrase(missing_drop)} must set securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{containers_phrase(adding)} must not add capabilities "
            f"({join_quote(sorted(unique(added)))} in securityContext.capabilities.add)"
        )
    if not details:
        return ALLOWED
    return CheckResult(False, "added or undropped capabilities", "; ".join(details), tuple(causes))


CHECK = Check(
    "capabilities_hardened",
    "hardened",
    check,
    overrides=("capabilities_restricted", "capabilities_baseline"),
    linux_only=True,
)
