"""HostPath volumes must be forbidden.

Restricted fields: spec.volumes[*].hostPath
Allowed values: undefined/null
"""

from __future__ import annotations

from webhook.validate.checks.base import ALLOWED, Cause, Check, CheckResult, Obj, join_quote, pluralize


def check(meta: Obj, spec: Obj) -> CheckResult:
    names: list[str] = []
    causes: list[Cause] = []
    for index, volume in enumerate(spec.get("volumes") or ()):
        if volume.get("hostPath") is not None:
            names.append(str(volume.get("name") or ""))
            causes.append(Cause(f"spec.volumes[{index}].hostPath", "hostPath volumes are forbidden"))
    if not names:
        return ALLOWED
    return CheckResult(
        False,
        "hostPath volumes",
        f"{pluralize('volume', 'volumes', len(names))} {join_quote(names)}",
        tuple(causes),
    )


CHECK = Check("hostPathVolumes", "baseline", check, only_if_set=frozenset({"volumes"}))
