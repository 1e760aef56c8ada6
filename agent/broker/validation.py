"""Strict parsing of request bodies and query strings into typed values.

Every field is checked for presence, type and range, unknown fields are refused, and
each refusal is a 400 that names the field, so a client learns exactly what to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent import protocol
from agent.broker.errors import Problem, invalid
from common.jsonio import BadJSON, loads_bounded


@dataclass(frozen=True)
class Enqueue:
    capability: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Claim:
    agent: str
    capabilities: list[str]
    max_items: int
    lease_seconds: int


@dataclass(frozen=True)
class Extend:
    token: str
    lease_seconds: int


@dataclass(frozen=True)
class Report:
    token: str
    outcome: str
    details: dict[str, Any]


@dataclass(frozen=True)
class Release:
    token: str


@dataclass(frozen=True)
class Cancel:
    reason: str


@dataclass(frozen=True)
class ListQuery:
    state: str | None
    capability: str | None
    agent: str | None
    outcome: str | None
    limit: int
    after: int


def json_object(body: bytes) -> dict[str, Any]:
    """Decode a request body that must be one JSON object (an empty body counts as {})."""
    if not body.strip():
        return {}
    try:
        value = loads_bounded(body, max_bytes=protocol.MAX_REQUEST_BYTES, max_depth=protocol.MAX_JSON_DEPTH)
    except BadJSON as exc:
        raise Problem(400, protocol.E_BAD_JSON, str(exc)) from None
    if not isinstance(value, dict):
        raise invalid(f"the body must be a JSON object, not {_type_name(value)}")
    return value


def enqueue(body: dict[str, Any]) -> Enqueue:
    _only(body, {"capability", "parameters"})
    capability = _capability(_required(body, "capability"), "capability")
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        raise invalid(f"'parameters' must be an object, not {_type_name(parameters)}")
    return Enqueue(capability, parameters)


def claim(body: dict[str, Any]) -> Claim:
    _only(body, {"agent", "capabilities", "max_items", "lease_seconds"})
    agent = _required(body, "agent")
    if not protocol.valid_agent(agent):
        raise invalid("'agent' must be a name of 1-253 letters, digits and . _ : - (its pod name)")
    capabilities = _required(body, "capabilities")
    if not isinstance(capabilities, list) or not capabilities:
        raise invalid("'capabilities' must be a non-empty array of capability names")
    if len(capabilities) > protocol.MAX_CLAIM_CAPABILITIES:
        raise invalid(f"'capabilities' may name at most {protocol.MAX_CLAIM_CAPABILITIES} capabilities")
    names = [_capability(name, f"capabilities[{i}]") for i, name in enumerate(capabilities)]
    max_items = _int(body, "max_items", 1, protocol.MAX_CLAIM_ITEMS, default=1)
    return Claim(agent, list(dict.fromkeys(names)), max_items, _lease_seconds(body))


def extend(body: dict[str, Any]) -> Extend:
    _only(body, {"token", "lease_seconds"})
    return Extend(_token(body), _lease_seconds(body))


def report(body: dict[str, Any]) -> Report:
    _only(body, {"token", "outcome", "details"})
    token = _token(body)
    outcome = _required(body, "outcome")
    if outcome not in protocol.REPORTABLE_OUTCOMES:
        raise invalid(f"'outcome' must be one of {', '.join(protocol.REPORTABLE_OUTCOMES)}, not {outcome!r}")
    details = body.get("details", {})
    if not isinstance(details, dict):
        raise invalid(f"'details' must be an object, not {_type_name(details)}")
    return Report(token, outcome, details)


def release(body: dict[str, Any]) -> Release:
    _only(body, {"token"})
    return Release(_token(body))


def cancel(body: dict[str, Any]) -> Cancel:
    _only(body, {"reason"})
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > protocol.MAX_MESSAGE_CHARS:
        raise invalid(f"'reason' must be a string of at most {protocol.MAX_MESSAGE_CHARS} characters")
    return Cancel(reason)


def list_query(query: Mapping[str, str]) -> ListQuery:
    _only(query, {"state", "capability", "agent", "outcome", "limit", "after"}, what="query parameter")
    state = _choice(query, "state", protocol.STATES)
    outcome = _choice(query, "outcome", protocol.OUTCOMES)
    capability = query.get("capability")
    if capability is not None:
        _capability(capability, "capability")
    agent = query.get("agent")
    if agent is not None and not protocol.valid_agent(agent):
        raise invalid("query parameter 'agent' is not a valid agent name")
    limit = _query_int(query, "limit", 1, protocol.MAX_LIST_LIMIT, protocol.DEFAULT_LIST_LIMIT)
    after = _query_int(query, "after", 0, 2**62, 0)
    return ListQuery(state, capability, agent, outcome, limit, after)


def item_id(value: str) -> str:
    if not protocol.valid_item_id(value):
        raise invalid(
            f"item id {value[:140]!r} is not valid: 1-128 characters, letters, digits and . _ : ~ -, "
            "starting with a letter or digit"
        )
    return value


# -- field helpers --------------------------------------------------------------------------------


def _only(body: Mapping[str, Any], allowed: set[str], *, what: str = "field") -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise invalid(f"unknown {what} {unknown[0][:100]!r} (allowed: {', '.join(sorted(allowed))})")


def _required(body: Mapping[str, Any], name: str) -> Any:
    if name not in body:
        raise invalid(f"missing required field {name!r}")
    return body[name]


def _capability(value: Any, where: str) -> str:
    if not protocol.valid_capability(value):
        shown = value[:70] if isinstance(value, str) else _type_name(value)
        raise invalid(f"{where!r} must be a capability name (a DNS label such as 'build'), not {shown!r}")
    return str(value)


def _token(body: Mapping[str, Any]) -> str:
    token = _required(body, "token")
    if not isinstance(token, str) or not 1 <= len(token) <= 256:
        raise invalid("'token' must be the lease token string the claim returned")
    return token


def _lease_seconds(body: Mapping[str, Any]) -> int:
    return _int(
        body,
        "lease_seconds",
        protocol.MIN_LEASE_SECONDS,
        protocol.MAX_LEASE_SECONDS,
        default=protocol.DEFAULT_LEASE_SECONDS,
    )


def _int(body: Mapping[str, Any], name: str, low: int, high: int, *, default: int) -> int:
    value = body.get(name, default)
    # bool is an int in Python, not in JSON: refuse true/false explicitly.
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise invalid(f"{name!r} must be an integer from {low} to {high}")
    return value


def _choice(query: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = query.get(name)
    if value is not None and value not in allowed:
        raise invalid(f"query parameter {name!r} must be one of {', '.join(allowed)}")
    return value


def _query_int(query: Mapping[str, str], name: str, low: int, high: int, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 19 or not low <= int(raw) <= high:
        raise invalid(f"query parameter {name!r} must be an integer from {low} to {high}")
    return int(raw)


_TYPE_NAMES: dict[type, str] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)
