"""Setting the SELinux type is restricted; setting a custom SELinux user or role is forbidden.

Restricted fields:
  spec.securityContext.seLinuxOptions.type
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.seLinuxOptions.type
  Allowed values: undefined/"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"
  spec.securityContext.seLinuxOptions.{user,role}
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.seLinuxOptions.{user,role}
  Allowed values: undefined/""
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
    containers_setting,
    join_quote,
    name_of,
    pluralize,
    setters,
    unique,
)

ALLOWED_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})


class _Findings:
    __slots__ = ("causes", "role", "types", "user")

    def __init__(self) -> None:
        self.causes: list[Cause] = []
        self.types: list[str] = []
        self.user = False
        self.role = False

    def inspect(self, options: Obj, path: str) -> bool:
        """Record what is wrong with one seLinuxOptions; True when something is."""
        bad = False
        kind = options.get("type") or ""
        if kind not in ALLOWED_TYPES:
            self.types.append(kind)
            self.causes.append(Cause(f"{path}.type", f"must not be {kind!r}"))
            bad = True
        for name in ("user", "role"):
            if options.get(name):
                setattr(self, name, True)
                self.causes.append(Cause(f"{path}.{name}", "must not be set"))
                bad = True
        return bad


def check(meta: Obj, spec: Obj) -> CheckResult:
    found = _Findings()
    pod_options = (spec.get("securityContext") or EMPTY).get("seLinuxOptions")
    pod_bad = pod_options is not None and found.inspect(pod_options, "spec.securityContext.seLinuxOptions")
    bad_containers: list[str] = []
    for container, context in containers_setting(spec, "seLinuxOptions"):
        options = context.get("seLinuxOptions")
        if options is not None and found.inspect(
            options, f"{container_path(spec, container)}.securityContext.seLinuxOptions"
        ):
            bad_containers.append(name_of(container))
    if not found.causes:
        return ALLOWED
    problems: list[str] = []
    if found.types:
        types = sorted(unique(found.types))
        problems.append(f"{pluralize('type', 'types', len(types))} {join_quote(types)}")
    if found.user:
        problems.append("user may not be set")
    if found.role:
        problems.append("role may not be set")
    return CheckResult(
        False,
        "seLinuxOptions",
        f"{setters(pod_bad, bad_containers)} set forbidden securityContext.seLinuxOptions: "
        + "; ".join(problems),
        tuple(found.causes),
    )


CHECK = Check("seLinuxOptions", "baseline", check, only_if_set=frozenset({"seLinuxOptions"}))
