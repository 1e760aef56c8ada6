"""Remora hardened: every container runs as an explicit, non-zero user ID.

Why: restricted only forbids UID 0 when written down and otherwise trusts the image's USER line,
which the pod author does not control and a rebuilt image can change. Naming the UID makes the
identity part of the reviewed spec. No user-namespace relaxation: the rule is about being explicit.

Restricted fields:
  spec.securityContext.runAsUser
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.runAsUser
Allowed values: non-zero, set on the container or inherited from the pod. Linux only (Windows pods
use windowsOptions.runAsUserName). Overrides `runAsUser`.
"""

from __future__ import annotations

from webhook.validate.checks._run_as_id import explicit_non_zero
from webhook.validate.checks.base import Check, CheckResult, Obj


def check(meta: Obj, spec: Obj) -> CheckResult:
    return explicit_non_zero(spec, "runAsUser")


CHECK = Check("runAsUser_hardened", "hardened", check, overrides=("runAsUser",), linux_only=True)
