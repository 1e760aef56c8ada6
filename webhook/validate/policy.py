"""Which level applies in which mode, and what the answer is: deny, warn, audit.

A namespace's labels remora.dev/enforce, remora.dev/warn and remora.dev/audit each name a level
(`baseline`, `restricted` or `hardened`); a mode without a label falls back to the configured
default (none unless configured). Pods are denied at the enforce level; pod templates of
workloads only get warnings for it (so people learn at apply time), unless the configuration
says to enforce them too. Exemptions for namespaces, usernames and runtime classes come from the
validation configuration, in the manner of upstream's PodSecurity admission configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from common.names import AUDIT_LABEL, ENFORCE_LABEL, LEVELS, WARN_LABEL
from webhook.validate.pods import PodSource
from webhook.validate.registry import DEFAULT_REGISTRY, Evaluation, Registry

MODES: Final = (("enforce", ENFORCE_LABEL), ("warn", WARN_LABEL), ("audit", AUDIT_LABEL))
# An unreadable label value fails closed to the strictest Pod Security Standard, as upstream does.
INVALID_LABEL_LEVEL: Final = "restricted"
MAX_CAUSES: Final = 50


@dataclass(frozen=True, slots=True)
class Levels:
    """The level per mode; None means the mode is off."""

    enforce: str | None = None
    warn: str | None = None
    audit: str | None = None


@dataclass(frozen=True, slots=True)
class Exemptions:
    namespaces: frozenset[str] = frozenset()
    usernames: frozenset[str] = frozenset()
    runtime_classes: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    defaults: Levels = Levels()
    exemptions: Exemptions = Exemptions()
    # Pod templates of workloads: warn only (False) or deny like pods (True) at the enforce level.
    enforce_workloads: bool = False


@dataclass(frozen=True, slots=True)
class NamespacePolicy:
    levels: Levels
    # Label values that were not a level, as one-line warnings.
    problems: tuple[str, ...] = ()


def namespace_policy(labels: Mapping[str, Any] | None, config: PolicyConfig) -> NamespacePolicy:
    """The levels a namespace's labels select, with configured defaults for unlabelled modes."""
    labels = labels or {}
    chosen: dict[str, str | None] = {}
    problems: list[str] = []
    for mode, label in MODES:
        value = labels.get(label)
        if value is None or value == "":
            chosen[mode] = getattr(config.defaults, mode)
        elif value in LEVELS:
            chosen[mode] = value
        else:
            chosen[mode] = INVALID_LABEL_LEVEL
            problems.append(
                f"namespace label {label}={value!r} is not one of {', '.join(LEVELS)}; "
                f"using {INVALID_LABEL_LEVEL!r}"
            )
    return NamespacePolicy(Levels(**chosen), tuple(problems))


class PolicyMemo:
    """`namespace_policy` for one configuration, remembered per (enforce, warn, audit) label values:
    it is asked on every request, and namespaces carry few distinct values."""

    LIMIT: Final = 1024

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self._known: dict[tuple[Any, ...], NamespacePolicy] = {}

    def __call__(self, labels: Mapping[str, Any] | None) -> NamespacePolicy:
        labels = labels or {}
        key = (labels.get(ENFORCE_LABEL), labels.get(WARN_LABEL), labels.get(AUDIT_LABEL))
        try:
            return self._known[key]
        except KeyError:
            pass
        except TypeError:  # a label value that is not a string (it cannot be a level either)
            return namespace_policy(labels, self.config)
        if len(self._known) >= self.LIMIT:
            self._known.clear()
        policy = self._known[key] = namespace_policy(labels, self.config)
        return policy


@dataclass(slots=True)
class Decision:
    allowed: bool = True
    message: str = ""
    causes: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    audit: dict[str, str] = field(default_factory=dict)
    # Whether any evaluated level found a violation (even one that only warns or audits).
    violated: bool = False


def decide(
    source: PodSource,
    policy: NamespacePolicy,
    config: PolicyConfig,
    registry: Registry = DEFAULT_REGISTRY,
) -> Decision:
    """Evaluate the pod at each mode's level (each level once) and build the answer."""
    enforce, warn, audit = policy.levels.enforce, policy.levels.warn, policy.levels.audit
    results: dict[str, Evaluation] = {}
    violated = False
    for level in (enforce, warn, audit):
        if level and level not in results:
            result = results[level] = registry.evaluate(level, source.meta, source.spec)
            violated = violated or bool(result.violations)
    decision = Decision(warnings=list(policy.problems), violated=violated)
    if enforce:
        decision.audit["enforce-policy"] = results[enforce].policy
    if not violated:  # the usual case: nothing to deny, warn or audit
        return decision
    enforce_denies = False
    if enforce and not (result := results[enforce]).allowed:
        if source.is_template and not config.enforce_workloads:
            decision.warnings.append(_template_warning(source, result))
        else:
            enforce_denies = True
            decision.allowed = False
            decision.message = result.message()
            decision.causes = _causes(source, result)
    # A denial at the same level already says everything the warning would.
    if warn and not (result := results[warn]).allowed and not (enforce_denies and warn == enforce):
        decision.warnings.append(
            _template_warning(source, result) if source.is_template else result.message("would violate")
        )
    if audit and not (result := results[audit]).allowed:
        decision.audit["audit-violations"] = result.message("would violate")
    return decision


def _template_warning(source: PodSource, result: Evaluation) -> str:
    return f"{source.kind} {source.name!r} pod template: {result.message('would violate')}"


def _causes(source: PodSource, result: Evaluation) -> list[dict[str, str]]:
    causes = [
        {"type": "FieldValueForbidden", "field": source.field(cause.field), "message": cause.message}
        for cause in result.causes()[:MAX_CAUSES]
    ]
    return causes


def exemption(
    config: PolicyConfig, *, namespace: str, username: str, runtime_class: str | None
) -> str | None:
    """Which exemption applies ("namespace", "user", "runtimeClass"), if any."""
    exemptions = config.exemptions
    if namespace in exemptions.namespaces:
        return "namespace"
    if username in exemptions.usernames:
        return "user"
    if runtime_class and runtime_class in exemptions.runtime_classes:
        return "runtimeClass"
    return None
