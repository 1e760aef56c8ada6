"""What a check is: data (id, level, what it overrides, whether it is Linux-only) plus a pure function.

A check reads a pod's metadata and spec as plain JSON dicts, already shape-checked by
`webhook.validate.shape` (so a present field has the type the Pod API gives it; an absent one
may be missing or null), and returns a `CheckResult`. Levels are cumulative: a check that
belongs to `baseline` also runs for `restricted` and `hardened`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from common.names import LEVELS

Obj = Mapping[str, Any]
LEVEL_RANK: Final = {level: rank for rank, level in enumerate(LEVELS)}

EMPTY: Final[Obj] = {}
# The three container lists of a pod spec, in the order the upstream visitor walks them.
CONTAINER_LISTS: Final = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True, slots=True)
class Cause:
    """One forbidden field: its path from the pod (`spec.containers[0].securityContext.privileged`)."""

    field: str
    message: str


@dataclass(frozen=True, slots=True)
class CheckResult:
    allowed: bool
    reason: str = ""
    detail: str = ""
    causes: tuple[Cause, ...] = field(default_factory=tuple)


ALLOWED: Final = CheckResult(True)

CheckFn = Callable[[Obj, Obj], CheckResult]


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    # The lowest level the check belongs to; it applies to that level and every stricter one.
    level: str
    fn: CheckFn
    # Checks of lower levels this one replaces when it applies (upstream's OverrideCheckIDs).
    overrides: tuple[str, ...] = ()
    # Skipped for pods with spec.os.name == "windows", as upstream does from policy v1.25.
    linux_only: bool = False
    # For a check that only forbids values: the field names it reads. A pod in which none of
    # them is a key of the spec, its securityContext, a container or a container's
    # securityContext gives the check nothing to forbid, and the registry skips it. Empty for
    # checks that require a setting (absence fails) or read annotations: they always run.
    only_if_set: frozenset[str] = frozenset()

    @property
    def levels(self) -> tuple[str, ...]:
        return LEVELS[LEVEL_RANK[self.level] :] if self.level in LEVEL_RANK else ()

    def __call__(self, meta: Obj, spec: Obj) -> CheckResult:
        return self.fn(meta, spec)


def obj(value: Any) -> Obj:
    """A nested object, or an empty one when the field is absent or null."""
    return value or EMPTY


def visit_containers(spec: Obj) -> list[Obj]:
    """Every init, regular and ephemeral container, in the order upstream's visitor walks them.

    Paths are not built here (most pods pass, and paths are only needed to report a failure):
    `container_path` finds one when a check needs it. While the registry evaluates a pod (see
    `start_visit`), every check shares one list instead of building its own.
    """
    return _visit(spec).containers


def visit_security_contexts(spec: Obj) -> list[tuple[Obj, Obj]]:
    """`visit_containers`, each container paired with its securityContext ({} when unset).

    Most checks read only the security context; looking it up once per pod, not once per check,
    is a sizeable part of what evaluating a level costs."""
    return _visit(spec).contexts


def containers_setting(spec: Obj, field: str) -> list[tuple[Obj, Obj]]:
    """`visit_security_contexts` narrowed to the containers whose securityContext has `field`
    (even as null), in the same order.

    For checks that only forbid values of a field: a container without it has nothing to
    forbid, and most pods set few of the fields the checks look at, so most such checks end
    here without a loop."""
    visit = _visit(spec)
    if field not in visit.present():
        return []
    return [pair for pair in visit.contexts if field in pair[1]]


def keys_set(spec: Obj) -> set[str]:
    """Every key of the spec, its securityContext, its containers and their securityContexts,
    in one set: a superset of the field names a check may find set (see Check.only_if_set)."""
    return _visit(spec).present()


class _Visit:
    """One pod spec's containers, their security contexts and the keys all of those hold."""

    __slots__ = ("_present", "containers", "contexts", "spec")

    def __init__(self, spec: Obj) -> None:
        self.spec = spec
        self.containers: list[Obj] = [
            *(spec.get("initContainers") or ()),
            *(spec.get("containers") or ()),
            *(spec.get("ephemeralContainers") or ()),
        ]
        self.contexts = [(c, c.get("securityContext") or EMPTY) for c in self.containers]
        self._present: set[str] | None = None

    def present(self) -> set[str]:
        if self._present is None:
            self._present = set().union(
                self.spec,
                self.spec.get("securityContext") or EMPTY,
                *self.containers,
                *(context for _, context in self.contexts),
            )
        return self._present


# The visit of the spec being evaluated. One slot for the process: a visit from another
# thread replaces it, and `_visit` then sees a different spec and builds its own, so sharing
# is only ever an optimization (the slot holds the spec, so its identity cannot be reused
# meanwhile).
_VISITING: Final[list[_Visit | None]] = [None]


def _visit(spec: Obj) -> _Visit:
    visiting = _VISITING[0]
    if visiting is not None and visiting.spec is spec:
        return visiting
    return _Visit(spec)


def start_visit(spec: Obj) -> object:
    """Share one visit of `spec` (which must not change meanwhile) among the checks run on it
    until `end_visit(token)`; returns the token. A plain pair of calls, cheaper than a context manager."""
    previous = _VISITING[0]
    _VISITING[0] = _Visit(spec)
    return previous


def end_visit(token: object) -> None:
    _VISITING[0] = token if isinstance(token, _Visit) else None


def container_path(spec: Obj, container: Obj) -> str:
    """The path of `container` (the very object) in `spec`: "spec.initContainers[1]"."""
    for list_name in CONTAINER_LISTS:
        for index, candidate in enumerate(spec.get(list_name) or ()):
            if candidate is container:
                return f"spec.{list_name}[{index}]"
    return "spec.containers[?]"


def security_context(container: Obj) -> Obj:
    return container.get("securityContext") or EMPTY


def enabled(value: Any) -> bool:
    """A switch that is on: anything but absent or false, so a value of an odd type fails closed."""
    return value is not None and value is not False


def is_windows(spec: Obj) -> bool:
    return obj(spec.get("os")).get("name") == "windows"


def pluralize(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def join_quote(items: list[str] | tuple[str, ...]) -> str:
    return ", ".join(f'"{item}"' for item in items)


def name_of(container: Obj) -> str:
    return str(container.get("name") or "")


def containers_phrase(names: list[str]) -> str:
    """'container "a"' or 'containers "a", "b"' as upstream writes them."""
    return f"{pluralize('container', 'containers', len(names))} {join_quote(names)}"


def unique(values: list[str]) -> list[str]:
    """Values in first-seen order without repeats."""
    return list(dict.fromkeys(values))


def setters(pod_bad: bool, containers: list[str]) -> str:
    """'pod', 'container "a"' or 'pod and containers "a", "b"'."""
    parts = ["pod"] if pod_bad else []
    if containers:
        parts.append(containers_phrase(unique(containers)))
    return " and ".join(parts)


def require_container_setting(spec: Obj, field: str, value: bool) -> CheckResult:
    """Every container must set securityContext.<field> to exactly `value` (unset fails too)."""
    wanted = "true" if value else "false"
    names: list[str] = []
    causes: list[Cause] = []
    for container, context in visit_security_contexts(spec):
        if context.get(field) is not value:
            names.append(name_of(container))
            causes.append(
                Cause(f"{container_path(spec, container)}.securityContext.{field}", f"must be {wanted}")
            )
    if not names:
        return ALLOWED
    return CheckResult(
        False,
        f"{field} != {wanted}",
        f"{containers_phrase(names)} must set securityContext.{field}={wanted}",
        tuple(causes),
    )
