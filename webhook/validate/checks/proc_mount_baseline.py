"""The default /proc masks reduce the attack surface; required unless the pod has its own user namespace.

Restricted fields: spec.{initContainers,containers,ephemeralContainers}[*].securityContext.procMount
Allowed values: undefined/null, "Default"; any value when spec.hostUsers is false (policy v1.35:
a pod in its own user namespace cannot reach the host's /proc through an unmasked mount)
"""

from __future__ import annotations

from webhook.validate.checks import proc_mount_restricted
from webhook.validate.checks.base import ALLOWED, Check, CheckResult, Obj


def check(meta: Obj, spec: Obj) -> CheckResult:
    if spec.get("hostUsers") is False:
        return ALLOWED
    return proc_mount_restricted.check(meta, spec)


CHECK = Check("procMount", "baseline", check, only_if_set=frozenset({"procMount"}))
