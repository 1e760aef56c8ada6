"""Every policy check, listed explicitly (no registration by import side effect).

One module per check, each opening with the fields it restricts and the values it allows;
`webhook.validate.registry` validates this tuple and picks the checks for a level.
"""

from __future__ import annotations

from webhook.validate.checks import (
    allow_privilege_escalation,
    apparmor_profile,
    capabilities_baseline,
    capabilities_hardened,
    capabilities_restricted,
    host_namespaces,
    host_path_volumes,
    host_ports,
    host_probes_and_host_lifecycle,
    memory_limits,
    privileged,
    proc_mount_baseline,
    proc_mount_restricted,
    read_only_root_filesystem,
    restricted_volumes,
    run_as_group_hardened,
    run_as_non_root,
    run_as_user,
    run_as_user_hardened,
    seccomp_profile_baseline,
    seccomp_profile_restricted,
    selinux_options,
    sysctls,
    windows_host_process,
)
from webhook.validate.checks.base import Cause, Check, CheckResult

ALL_CHECKS: tuple[Check, ...] = (
    # baseline: the Pod Security Standards' baseline, policy version "latest"
    apparmor_profile.CHECK,
    capabilities_baseline.CHECK,
    host_namespaces.CHECK,
    host_path_volumes.CHECK,
    host_ports.CHECK,
    host_probes_and_host_lifecycle.CHECK,
    privileged.CHECK,
    proc_mount_baseline.CHECK,
    seccomp_profile_baseline.CHECK,
    selinux_options.CHECK,
    sysctls.CHECK,
    windows_host_process.CHECK,
    # restricted: the Pod Security Standards' restricted
    allow_privilege_escalation.CHECK,
    capabilities_restricted.CHECK,
    proc_mount_restricted.CHECK,
    restricted_volumes.CHECK,
    run_as_non_root.CHECK,
    run_as_user.CHECK,
    seccomp_profile_restricted.CHECK,
    # hardened: Remora's rules on top of restricted (docs/hardened.md)
    capabilities_hardened.CHECK,
    memory_limits.CHECK,
    read_only_root_filesystem.CHECK,
    run_as_group_hardened.CHECK,
    run_as_user_hardened.CHECK,
)

__all__ = ["ALL_CHECKS", "Cause", "Check", "CheckResult"]
