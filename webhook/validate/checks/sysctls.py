"""Sysctls can disable security mechanisms or affect a whole node; only a safe, namespaced set is allowed.

Restricted fields: spec.securityContext.sysctls[*].name
Allowed values: kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, net.ipv4.tcp_syncookies,
net.ipv4.ping_group_range, net.ipv4.ip_unprivileged_port_start, net.ipv4.ip_local_reserved_ports (v1.27),
net.ipv4.tcp_keepalive_time, net.ipv4.tcp_fin_timeout, net.ipv4.tcp_keepalive_intvl,
net.ipv4.tcp_keepalive_probes (v1.29), net.ipv4.tcp_rmem, net.ipv4.tcp_wmem (v1.32),
net.ipv4.tcp_slow_start_after_idle, net.ipv4.tcp_notsent_lowat (v1.37)
"""

from __future__ import annotations

from webhook.validate.checks.base import ALLOWED, EMPTY, Cause, Check, CheckResult, Obj

SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
        "net.ipv4.tcp_slow_start_after_idle",
        "net.ipv4.tcp_notsent_lowat",
    }
)


def check(meta: Obj, spec: Obj) -> CheckResult:
    names: list[str] = []
    causes: list[Cause] = []
    for index, sysctl in enumerate((spec.get("securityContext") or EMPTY).get("sysctls") or ()):
        name = sysctl.get("name") or ""
        if name not in SAFE_SYSCTLS:
            names.append(name)
            causes.append(
                Cause(f"spec.securityContext.sysctls[{index}].name", f"{name!r} is not a safe sysctl")
            )
    if not names:
        return ALLOWED
    return CheckResult(False, "forbidden sysctls", ", ".join(names), tuple(causes))


CHECK = Check("sysctls", "baseline", check, only_if_set=frozenset({"sysctls"}))
