"""Privilege escalation (setuid binaries, file capabilities) must be turned off in every container.

Restricted fields:
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.allowPrivilegeEscalation
Allowed values: false. Linux only: skipped for spec.os.name == "windows".
"""

from __future__ import annotations

from webhook.validate.checks.base import Check, CheckResult, Obj, require_container_setting


def check(meta: Obj, spec: Obj) -> CheckResult:
    return require_container_setting(spec, "allowPrivilegeEscalation", False)


CHECK = Check("allowPrivilegeEscalation", "restricted", check, linux_only=True)
