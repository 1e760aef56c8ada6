"""Beyond forbidding hostPath, restricted allows only volume types that are safe by construction.

Restricted fields: spec.volumes[*] (every volume source)
Allowed values: configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim,
projected, secret. Overrides `hostPathVolumes`.
"""

from __future__ import annotations

from webhook.validate.checks.base import (
    ALLOWED,
    Cause,
    Check,
    CheckResult,
    Obj,
    join_quote,
    pluralize,
    unique,
)

ALLOWED_SOURCES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)


def check(meta: Obj, spec: Obj) -> CheckResult:
    names: list[str] = []
    kinds: list[str] = []
    causes: list[Cause] = []
    for index, volume in enumerate(spec.get("volumes") or ()):
        # A volume with no source is an emptyDir after API defaulting; anything else must be allowed.
        bad = [
            key for key, value in volume.items()
            if key != "name" and value is not None and key not in ALLOWED_SOURCES
        ]  # fmt: skip
        if bad:
            names.append(str(volume.get("name") or ""))
            kinds.extend(bad)
            causes.extend(
                Cause(f"spec.volumes[{index}].{key}", f"{key} volumes are not allowed") for key in bad
            )
    if not names:
        return ALLOWED
    kinds = sorted(unique(kinds))
    return CheckResult(
        False,
        "restricted volume types",
        f"{pluralize('volume', 'volumes', len(names))} {join_quote(names)} "
        f"{pluralize('uses', 'use', len(names))} "
        f"{pluralize('restricted volume type', 'restricted volume types', len(kinds))} {join_quote(kinds)}",
        tuple(causes),
    )


CHECK = Check(
    "restrictedVolumes",
    "restricted",
    check,
    overrides=("hostPathVolumes",),
    only_if_set=frozenset({"volumes"}),
)
