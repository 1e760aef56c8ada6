"""Remora hardened: every container runs with an explicit, non-zero primary group ID.

Why: without runAsGroup the process's primary group comes from the image and is often 0 (root),
which opens files and devices owned by group root even when the UID is not 0.

Restricted fields:
  spec.securityContext.runAsGroup
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.runAsGroup
Allowed values: non-zero, set on the container or inherited from the pod. Linux only.
"""

from __future__ import annotations

from webhook.validate.checks._run_as_id import explicit_non_zero
from webhook.validate.checks.base import Check, CheckResult, Obj


def check(meta: Obj, spec: Obj) -> CheckResult:
    return explicit_non_zero(spec, "runAsGroup")


CHECK = Check("runAsGroup_hardened", "hardened", check, linux_only=True)
