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

from webhook.validate.checks._drop_all import drop_all_add_only
from webhook.validate.checks.base import Check, CheckResult, Obj

MAY_ADD: frozenset[str] = frozenset()


def check(meta: Obj, spec: Obj) -> CheckResult:
    return drop_all_add_only(spec, MAY_ADD, "added or undropped capabilities")


CHECK = Check(
    "capabilities_hardened",
    "hardened",
    check,
    overrides=("capabilities_restricted", "capabilities_baseline"),
    linux_only=True,
)
