"""Adding capabilities beyond the container runtime's default set must be disallowed.

Restricted fields: spec.{initContainers,containers,ephemeralContainers}[*].securityContext.capabilities.add
Allowed values: undefined/empty, or only AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL,
MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT (exact spelling)
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
    containers_setting,
    join_quote,
    name_of,
    unique,
)

DEFAULT_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
        "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }
)  # fmt: skip


def check(meta: Obj, spec: Obj) -> CheckResult:
    names: list[str] = []
    added: list[str] = []
    causes: list[Cause] = []
    for container, context in containers_setting(spec, "capabilities"):
        capabilities = context.get("capabilities") or EMPTY
        bad = [cap for cap in capabilities.get("add") or () if cap not in DEFAULT_CAPABILITIES]
        if bad:
            names.append(name_of(container))
            added.extend(bad)
            causes.append(
                Cause(
                    f"{container_path(spec, container)}.securityContext.capabilities.add",
                    f"must not include {join_quote(bad)}",
                )
            )
    if not names:
        return ALLOWED
    return CheckResult(
        False,
        "non-default capabilities",
        f"{containers_phrase(names)} must not include {join_quote(sorted(unique(added)))} "
        "in securityContext.capabilities.add",
        tuple(causes),
    )


CHECK = Check("capabilities_baseline", "baseline", check, only_if_set=frozenset({"capabilities"}))
