"""On supported hosts the runtime's default AppArmor profile applies; it must not be overridden or disabled.

Restricted fields:
  spec.securityContext.appArmorProfile.type
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.appArmorProfile.type
  Allowed values: undefined/null, "RuntimeDefault", "Localhost"
  metadata.annotations["container.apparmor.security.beta.kubernetes.io/*"] (deprecated, still checked)
  Allowed values: undefined, "", "runtime/default", "localhost/*"
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
    keys_set,
    name_of,
    pluralize,
    setters,
    unique,
)

ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
ALLOWED_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def _allowed_annotation(value: str) -> bool:
    return value in ("", "runtime/default") or value.startswith("localhost/")


def check(meta: Obj, spec: Obj) -> CheckResult:
    annotations = [
        (key, str(value))
        for key, value in (meta.get("annotations") or EMPTY).items()
        if key.startswith(ANNOTATION_PREFIX) and not _allowed_annotation(str(value))
    ]
    if not annotations and "appArmorProfile" not in keys_set(spec):
        return ALLOWED  # no profile named anywhere: the runtime's default applies
    causes: list[Cause] = []
    bad_values: list[str] = []
    pod_type = ((spec.get("securityContext") or EMPTY).get("appArmorProfile") or EMPTY).get("type")
    pod_bad = pod_type is not None and pod_type not in ALLOWED_TYPES
    if pod_bad:
        bad_values.append(str(pod_type))
        causes.append(Cause("spec.securityContext.appArmorProfile.type", f"must not be {pod_type!r}"))
    bad_containers: list[str] = []
    for container, context in containers_setting(spec, "appArmorProfile"):
        kind = (context.get("appArmorProfile") or EMPTY).get("type")
        if kind is not None and kind not in ALLOWED_TYPES:
            bad_containers.append(name_of(container))
            bad_values.append(str(kind))
            causes.append(
                Cause(
                    f"{container_path(spec, container)}.securityContext.appArmorProfile.type",
                    f"must not be {kind!r}",
                )
            )
    annotations.sort()
    for key, value in annotations:
        causes.append(Cause(f"metadata.annotations[{key}]", f"must not be {value!r}"))
    if not causes:
        return ALLOWED
    details: list[str] = []
    if pod_bad or bad_containers:
        details.append(
            f"{setters(pod_bad, bad_containers)} must not set securityContext.appArmorProfile.type "
            f"to {join_quote(sorted(unique(bad_values)))}"
        )
    details.extend(f'{key}="{value}"' for key, value in annotations)
    return CheckResult(
        False,
        pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", len(details)),
        ", ".join(details),
        tuple(causes),
    )


CHECK = Check("appArmorProfile", "baseline", check)
