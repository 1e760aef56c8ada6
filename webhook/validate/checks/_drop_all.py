"""The shared rule behind `capabilities_restricted` and `capabilities_hardened`: drop ALL, add
back only what the level allows."""

from __future__ import annotations

from webhook.validate.checks.base import (
    ALLOWED,
    EMPTY,
    Cause,
    CheckResult,
    Obj,
    container_path,
    containers_phrase,
    join_quote,
    name_of,
    unique,
    visit_security_contexts,
)


def drop_all_add_only(spec: Obj, may_add: frozenset[str], reason: str) -> CheckResult:
    """Every container drops "ALL" and adds no capability outside `may_add`."""
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
        add = capabilities.get("add")
        if not add:
            continue
        bad = [cap for cap in add if cap not in may_add]
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
    return CheckResult(False, reason, "; ".join(details), tuple(causes))
