"""Check that the pod fields the policy reads have the types the Pod API gives them.

The apiserver only sends well-typed objects, but `remora check` reads files and anyone can POST a
review: a field of the wrong type must become a clear message naming it, never a crash and never
a silent pass (`privileged: "true"` is not `false`). Only the fields a check reads are described;
the rest of the object is left alone. Null counts as absent, as it does for the apiserver.

`remora check` runs this before judging. The webhook runs it only when a check objects or cannot
read a value (the checks fail closed on values of the wrong type), so a well-typed pod, which is
what the apiserver sends, pays nothing for it; a malformed one still gets this message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final


class BadShape(ValueError):
    """A field has the wrong type; `field` is its path, the message says what was expected."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class _Scalar:
    __slots__ = ("name", "types")

    def __init__(self, name: str, *types: type) -> None:
        self.name = name
        self.types = types


BOOL: Final = _Scalar("a boolean", bool)
INT: Final = _Scalar("an integer", int)
STR: Final = _Scalar("a string", str)
QUANTITY: Final = _Scalar("a quantity (string or number)", str, int, float)
OBJECT: Final = _Scalar("an object", dict)
# A dict schema's "*" entry applies to every key the schema does not name.
ANY_KEY: Final = "*"

Schema = Any  # _Scalar | dict[str, Schema] | list[Schema] (one element: the item schema)

_HANDLER: Final = {"httpGet": {"host": STR}, "tcpSocket": {"host": STR}}
_SECURITY_CONTEXT: Final = {
    "privileged": BOOL,
    "allowPrivilegeEscalation": BOOL,
    "readOnlyRootFilesystem": BOOL,
    "runAsNonRoot": BOOL,
    "runAsUser": INT,
    "runAsGroup": INT,
    "procMount": STR,
    "capabilities": {"add": [STR], "drop": [STR]},
    "seccompProfile": {"type": STR},
    "appArmorProfile": {"type": STR},
    "seLinuxOptions": {"type": STR, "user": STR, "role": STR, "level": STR},
    "windowsOptions": {"hostProcess": BOOL},
}
CONTAINER: Final = {
    "name": STR,
    "securityContext": _SECURITY_CONTEXT,
    "ports": [{"hostPort": INT}],
    "resources": {"limits": {"memory": QUANTITY}},
    "livenessProbe": _HANDLER,
    "readinessProbe": _HANDLER,
    "startupProbe": _HANDLER,
    "lifecycle": {"postStart": _HANDLER, "preStop": _HANDLER},
}
POD_META: Final = {"name": STR, "annotations": {ANY_KEY: STR}, "labels": {ANY_KEY: STR}}
POD_SPEC: Final = {
    "hostNetwork": BOOL,
    "hostPID": BOOL,
    "hostIPC": BOOL,
    "hostUsers": BOOL,
    "runtimeClassName": STR,
    "os": {"name": STR},
    "securityContext": {
        **{key: _SECURITY_CONTEXT[key] for key in ("runAsNonRoot", "runAsUser", "runAsGroup")},
        **{key: _SECURITY_CONTEXT[key] for key in ("seccompProfile", "appArmorProfile", "seLinuxOptions")},
        "windowsOptions": _SECURITY_CONTEXT["windowsOptions"],
        "sysctls": [{"name": STR}],
    },
    "volumes": [{"name": STR, ANY_KEY: OBJECT}],
    "initContainers": [CONTAINER],
    "containers": [CONTAINER],
    "ephemeralContainers": [CONTAINER],
}


def check_pod(meta: Any, spec: Any, prefix: str = "") -> None:
    """Raise BadShape for the first field of `meta`/`spec` whose type is wrong."""
    _META(meta, (prefix + "metadata",))
    _SPEC(spec, (prefix + "spec",))


def check(value: Any, schema: Schema, path: str) -> None:
    """Check one value against a schema (compiled on each call; the pod schemas are compiled once)."""
    _compile(schema)(value, (path,))


# --- compiled checkers --------------------------------------------------------------------------
# A schema compiles to a function (value, where) -> None. `where` is a chain of (parent, key)
# tuples, rendered into a path only when something is wrong, so a well-typed pod builds no strings.

Where = tuple[Any, ...]
Checker = Callable[[Any, Where], None]


def _render(where: Where) -> str:
    parts: list[str] = []
    node: Any = where
    while len(node) == 2:
        node, key = node
        parts.append(f"[{key}]" if isinstance(key, int) or "." in key or "/" in key else f".{key}")
    parts.append(node[0])
    return "".join(reversed(parts))


def _fail(where: Where, problem: str) -> BadShape:
    return BadShape(_render(where), problem)


def _exact_types(scalar: _Scalar) -> frozenset[type]:
    # JSON values have exact types; bool is never an acceptable int.
    return frozenset(scalar.types)


def _compile(schema: Schema) -> Checker:
    if isinstance(schema, _Scalar):
        return _compile_scalar(schema)
    if isinstance(schema, list):
        return _compile_list(schema[0])
    return _compile_object(schema)


def _compile_scalar(scalar: _Scalar) -> Checker:
    types = _exact_types(scalar)

    def check_scalar(value: Any, where: Where) -> None:
        if value is not None and type(value) not in types:
            raise _fail(where, f"must be {scalar.name}, got {_json_type(value)}")

    return check_scalar


def _compile_list(item_schema: Schema) -> Checker:
    if isinstance(item_schema, _Scalar):
        return _compile_scalar_list(item_schema)
    item_check = _compile(item_schema)

    def check_list(value: Any, where: Where) -> None:
        if value is None:
            return
        if type(value) is not list:
            raise _fail(where, f"must be an array, got {_json_type(value)}")
        for index, item in enumerate(value):
            if item is None:
                raise _fail((where, index), "must not be null")
            item_check(item, (where, index))

    return check_list


def _compile_scalar_list(item: _Scalar) -> Checker:
    types = _exact_types(item)

    def check_scalar_list(value: Any, where: Where) -> None:
        if value is None:
            return
        if type(value) is not list:
            raise _fail(where, f"must be an array, got {_json_type(value)}")
        for index, element in enumerate(value):
            if type(element) not in types:
                problem = (
                    "must not be null"
                    if element is None
                    else f"must be {item.name}, got {_json_type(element)}"
                )
                raise _fail((where, index), problem)

    return check_scalar_list


def _compile_object(schema: Mapping[str, Schema]) -> Checker:
    other = schema.get(ANY_KEY)
    if other is not None:
        return _compile_map(schema, other)
    # key -> (scalar types, scalar name, None) or (None, "", nested checker). The object's own keys
    # are walked (a container holds a few of the fields described), not the description's.
    table: dict[str, tuple[frozenset[type] | None, str, Checker | None]] = {
        key: (_exact_types(sub), sub.name, None) if isinstance(sub, _Scalar) else (None, "", _compile(sub))
        for key, sub in schema.items()
    }
    lookup = table.get

    def check_object(value: Any, where: Where) -> None:
        if value is None:
            return
        if type(value) is not dict:
            raise _fail(where, f"must be an object, got {_json_type(value)}")
        for key, item in value.items():
            entry = lookup(key)
            if entry is None or item is None:
                continue
            types, name, sub_check = entry
            if sub_check is not None:
                sub_check(item, (where, key))
            elif type(item) not in types:  # type: ignore[operator]
                raise _fail((where, key), f"must be {name}, got {_json_type(item)}")

    return check_object


def _compile_map(schema: Mapping[str, Schema], other: Schema) -> Checker:
    named = {key: _compile(sub) for key, sub in schema.items() if key != ANY_KEY}
    default = _compile(other)

    def check_map(value: Any, where: Where) -> None:
        if value is None:
            return
        if type(value) is not dict:
            raise _fail(where, f"must be an object, got {_json_type(value)}")
        for key, item in value.items():
            if type(key) is not str:
                raise _fail(where, f"keys must be strings, got {_json_type(key)} {key!r}")
            named.get(key, default)(item, (where, key))

    return check_map


_META: Final = _compile(POD_META)
_SPEC: Final = _compile(POD_SPEC)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__
