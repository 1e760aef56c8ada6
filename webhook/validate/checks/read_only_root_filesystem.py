"""Remora hardened: every container's root filesystem is read-only.

Why: a writable image filesystem lets an intruder drop tools or patch binaries that outlive a single
process; scratch space belongs in an emptyDir that is visible in the pod spec.

Restricted fields:
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.readOnlyRootFilesystem
Allowed values: true. Linux only (the Pod API forbids the field on Windows pods).
"""

from __future__ import annotations

from webhook.validate.checks.base import Check, CheckResult, Obj, require_container_setting


def check(meta: Obj, spec: Obj) -> CheckResult:
    return require_container_setting(spec, "readOnlyRootFilesystem", True)


CHECK = Check("readOnlyRootFilesystem", "hardened", check, linux_only=True)
