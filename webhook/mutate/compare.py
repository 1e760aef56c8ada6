"""Is a sidecar already in the pod the one the catalog renders now?

Under reinvocation the pod comes back from the apiserver with defaults filled in
(terminationMessagePath, imagePullPolicy, fieldRef apiVersion, probe timings and
scheme, requests copied from limits) and quantities written canonically ("0.5" as
"500m"). Those differences are not a changed sidecar; anything else is, including a
field the catalog never sets: a pod may not smuggle extra settings into a Remora
sidecar under its name.
"""

from __future__ import annotations

from typing import Any, Final

from common import quantity

# Container fields the apiserver defaults, with the values it may fill in.
_DEFAULTED: Final = {
    "terminationMessagePath": {"/dev/termination-log"},
    "terminationMessagePolicy": {"File"},
    "imagePullPolicy": {"Always", "IfNotPresent"},
}
# Probe fields the apiserver defaults, with the value it fills in.
_PROBE_DEFAULTS: Final = {
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
}


def same_sidecar(existing: Any, rendered: dict[str, Any]) -> bool:
    if existing == rendered:
        return True
    if not isinstance(existing, dict):
        return False
    for key, value in existing.items():
        if key not in rendered and not (isinstance(value, str) and value in _DEFAULTED.get(key, ())):
            return False
    for key, want in rendered.items():
        have = existing.get(key)
        if key == "env":
            if not _same_env(have, want):
                return False
        elif key == "resources":
            if not _same_resources(have, want):
                return False
        elif key in ("readinessProbe", "startupProbe", "livenessProbe"):
            if not _same_probe(have, want):
                return False
        elif have != want:
            return False
    return True


def _same_env(have: Any, want: list[dict[str, Any]]) -> bool:
    if not isinstance(have, list) or len(have) != len(want):
        return False
    return all(_strip_field_ref_version(h) == w for h, w in zip(have, want, strict=True))


def _strip_field_ref_version(item: Any) -> Any:
    ref = item.get("valueFrom", {}).get("fieldRef") if isinstance(item, dict) else None
    if not isinstance(ref, dict) or ref.get("apiVersion") != "v1":
        return item
    return {
        **item,
        "valueFrom": {**item["valueFrom"], "fieldRef": {k: v for k, v in ref.items() if k != "apiVersion"}},
    }


def _same_probe(have: Any, want: dict[str, Any]) -> bool:
    if have == want:
        return True
    if not isinstance(have, dict):
        return False
    filled = {**_PROBE_DEFAULTS, **want}
    if "httpGet" in want:
        filled["httpGet"] = {"scheme": "HTTP", **want["httpGet"]}
    return have == filled


def _same_resources(have: Any, want: dict[str, dict[str, str]]) -> bool:
    if not isinstance(have, dict) or set(have) - {"limits", "requests"}:
        return False
    limits = want.get("limits", {})
    for part in ("limits", "requests"):
        have_part = have.get(part) or {}
        want_part = want.get(part) or {}
        if not isinstance(have_part, dict):
            return False
        for name in set(have_part) | set(want_part):
            expected = want_part.get(name)
            if expected is None and part == "requests":
                expected = limits.get(name)  # the apiserver copies a limit into a missing request
            if expected is None or not _same_quantity(have_part.get(name), expected):
                return False
    return True


def _same_quantity(have: Any, want: str) -> bool:
    if have == want:
        return True
    a, b = quantity.parse(have), quantity.parse(want)
    return a is not None and a == b
