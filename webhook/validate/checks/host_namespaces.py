"""Sharing the host's namespaces must be disallowed.

Restricted fields: spec.hostNetwork, spec.hostPID, spec.hostIPC
Allowed values: undefined/null, false
"""

from __future__ import annotations

from webhook.validate.checks.base import ALLOWED, Cause, Check, CheckResult, Obj, enabled

FIELDS = ("hostNetwork", "hostPID", "hostIPC")


def check(meta: Obj, spec: Obj) -> CheckResult:
    bad = [name for name in FIELDS if enabled(spec.get(name))]
    if not bad:
        return ALLOWED
    return CheckResult(
        False,
        "host namespaces",
        ", ".join(f"{name}=true" for name in bad),
        tuple(Cause(f"spec.{name}", f"{name} must not be true") for name in bad),
    )


CHECK = Check("hostNamespaces", "baseline", check, only_if_set=frozenset(FIELDS))
