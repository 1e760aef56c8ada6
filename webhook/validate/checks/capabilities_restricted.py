"""Containers must drop ALL capabilities and may add back only NET_BIND_SERVICE.

Restricted fields:
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.capabilities.drop
  Allowed values: must include "ALL"
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.capabilities.add
  Allowed values: undefined/empty, "NET_BIND_SERVICE"
Linux only: skipped for spec.os.name == "windows". Overrides `capabilities_baseline`.
"""

from __future__ import annotations

from webhook.validate.checks._drop_all import drop_all_add_only
from webhook.validate.checks.base import Check, CheckResult, Obj

MAY_ADD: frozenset[str] = frozenset({"NET_BIND_SERVICE"})


def check(meta: Obj, spec: Obj) -> CheckResult:
    return drop_all_add_only(spec, MAY_ADD, "unrestricted capabilities")


CHECK = Check(
    "capabilities_restricted",
    "restricted",
    check,
    overrides=("capabilities_baseline",),
    linux_only=True,
)
