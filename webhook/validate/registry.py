"""The check registry: validated once, then asked which checks apply to a level and to evaluate a pod.

A level runs every check of that level and the ones below it, minus the lower checks that a
stricter applying check overrides (upstream's OverrideCheckIDs), in a stable order: by level,
then by id. Windows pods (spec.os.name == "windows") skip the checks marked Linux-only, and a
check that only forbids values is skipped for a pod that sets none of its fields (Check.only_if_set).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from common.names import LEVELS
from webhook.validate.checks import ALL_CHECKS
from webhook.validate.checks.base import (
    ALLOWED,
    LEVEL_RANK,
    Cause,
    Check,
    CheckResult,
    Obj,
    end_visit,
    is_windows,
    keys_set,
    start_visit,
)

# The only policy version modelled: the newest upstream one (v1.37 at the time of writing).
POLICY_VERSION: Final = "latest"
UNKNOWN_REASON: Final = "unknown forbidden reason"


class RegistryError(ValueError):
    """The tuple of checks is not a valid registry; the message names the check."""


@dataclass(frozen=True, slots=True)
class Violation:
    check_id: str
    result: CheckResult


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The outcome of evaluating one pod at one level."""

    level: str
    violations: tuple[Violation, ...]

    @property
    def allowed(self) -> bool:
        return not self.violations

    @property
    def policy(self) -> str:
        return _POLICY_NAMES.get(self.level) or f"{self.level}:{POLICY_VERSION}"

    def forbidden_detail(self) -> str:
        """`reason (detail), reason, ...` in check order, upstream's AggregateCheckResults."""
        parts = []
        for violation in self.violations:
            reason = violation.result.reason or UNKNOWN_REASON
            detail = violation.result.detail
            parts.append(f"{reason} ({detail})" if detail else reason)
        return ", ".join(parts)

    def message(self, verb: str = "violates") -> str:
        return f'{verb} PodSecurity "{self.policy}": {self.forbidden_detail()}'

    def causes(self) -> list[Cause]:
        return [cause for violation in self.violations for cause in violation.result.causes]


_POLICY_NAMES: Final = {level: f"{level}:{POLICY_VERSION}" for level in LEVELS}
# Most pods pass: one shared Evaluation per level says so without building a new one.
_ALLOWED_AT: Final = {level: Evaluation(level, ()) for level in LEVELS}


def validate(checks: Iterable[Check]) -> None:
    """Unique ids, known levels, overrides that name a check of a lower level."""
    by_id: dict[str, Check] = {}
    for check in checks:
        if not check.id:
            raise RegistryError("a check has an empty id")
        if check.id in by_id:
            raise RegistryError(f"check id {check.id!r} is registered twice")
        if check.level not in LEVEL_RANK:
            raise RegistryError(
                f"check {check.id!r} has level {check.level!r}, not one of {', '.join(LEVELS)}"
            )
        if not callable(check.fn):
            raise RegistryError(f"check {check.id!r} has no check function")
        by_id[check.id] = check
    for check in by_id.values():
        for overridden in check.overrides:
            target = by_id.get(overridden)
            if target is None:
                raise RegistryError(f"check {check.id!r} overrides unknown check {overridden!r}")
            if LEVEL_RANK[target.level] >= LEVEL_RANK[check.level]:
                raise RegistryError(f"check {check.id!r} may only override checks of a lower level")


class Registry:
    def __init__(self, checks: Iterable[Check] = ALL_CHECKS) -> None:
        checks = tuple(checks)
        validate(checks)
        self._linux: dict[str, tuple[Check, ...]] = {}
        self._windows: dict[str, tuple[Check, ...]] = {}
        for level in LEVELS:
            selected = _select(checks, level)
            self._linux[level] = selected
            self._windows[level] = tuple(check for check in selected if not check.linux_only)

    def checks_for(self, level: str, *, windows: bool = False) -> tuple[Check, ...]:
        table = self._windows if windows else self._linux
        if level not in table:
            raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
        return table[level]

    def evaluate(self, level: str, meta: Obj, spec: Obj) -> Evaluation:
        checks = self.checks_for(level, windows=is_windows(spec))
        violations: list[Violation] = []
        token = start_visit(spec)
        try:
            present = keys_set(spec)
            for check in checks:
                if check.only_if_set and check.only_if_set.isdisjoint(present):
                    continue  # it only forbids values of fields this pod does not set
                result = check.fn(meta, spec)
                if result is not ALLOWED and not result.allowed:
                    violations.append(Violation(check.id, result))
        finally:
            end_visit(token)
        return _ALLOWED_AT[level] if not violations else Evaluation(level, tuple(violations))


def _select(checks: tuple[Check, ...], level: str) -> tuple[Check, ...]:
    rank = LEVEL_RANK[level]
    applying = [check for check in checks if LEVEL_RANK[check.level] <= rank]
    overridden = {target for check in applying for target in check.overrides}
    kept = [check for check in applying if check.id not in overridden]
    return tuple(sorted(kept, key=lambda check: (LEVEL_RANK[check.level], check.id)))


DEFAULT_REGISTRY: Final = Registry()


def levels_table() -> Mapping[str, tuple[str, ...]]:
    """Check ids per level, for documentation and tests."""
    return {level: tuple(check.id for check in DEFAULT_REGISTRY.checks_for(level)) for level in LEVELS}
