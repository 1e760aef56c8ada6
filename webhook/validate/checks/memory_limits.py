"""Remora hardened: every init and regular container declares a memory limit.

Why: a container without a memory limit can take the whole node's memory and get neighbours
OOM-killed; with a limit, only the offender is killed. Ephemeral containers are exempt because
the Pod API does not let them declare resources at all.

Restricted fields: spec.{initContainers,containers}[*].resources.limits.memory
Allowed values: a Kubernetes quantity greater than zero (e.g. "128Mi")
"""

from __future__ import annotations

from common import quantity
from webhook.validate.checks.base import (
    ALLOWED,
    EMPTY,
    Cause,
    Check,
    CheckResult,
    Obj,
    containers_phrase,
    name_of,
)


def positive_quantity(value: object) -> bool:
    if type(value) is str:  # the usual case: limits repeat from pod to pod, so remember them
        known = _POSITIVE.get(value)
        if known is None:
            if len(_POSITIVE) >= 1024:
                _POSITIVE.clear()
            known = _POSITIVE[value] = _positive(value)
        return known
    return _positive(value)


def _positive(value: object) -> bool:
    amount = quantity.parse(value)
    return amount is not None and amount > 0


_POSITIVE: dict[str, bool] = {}


def check(meta: Obj, spec: Obj) -> CheckResult:
    names: list[str] = []
    causes: list[Cause] = []
    for list_name in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(list_name) or ()):
            limit = ((container.get("resources") or EMPTY).get("limits") or EMPTY).get("memory")
            if type(limit) is str and _POSITIVE.get(limit):
                continue  # a limit seen before: the usual case, without a call
            if not positive_quantity(limit):
                names.append(name_of(container))
                problem = "must be set" if limit is None else f"must be a quantity above zero, not {limit!r}"
                causes.append(Cause(f"spec.{list_name}[{index}].resources.limits.memory", problem))
    if not names:
        return ALLOWED
    return CheckResult(
        False,
        "memory limit missing",
        f"{containers_phrase(names)} must set resources.limits.memory",
        tuple(causes),
    )


CHECK = Check("memoryLimits", "hardened", check)
