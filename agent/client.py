"""The broker protocol client (agent/openapi.yaml) on httpx.

Every failure is a `BrokerError` naming what went wrong: the broker's own error
(status and code), the broker being unreachable or slow (`BrokerUnavailable`, worth a
retry), or a reply that does not follow the protocol (`BrokerProtocolError`). Replies are
checked field by field before they become typed values, so a broken broker cannot crash
the agent with a KeyError three calls later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx
import orjson

from agent import protocol

MAX_REPLY_BYTES: Final = 64 * 1024 * 1024
DEFAULT_TIMEOUT: Final = httpx.Timeout(10.0, connect=5.0)


class BrokerError(Exception):
    """The broker refused a request, or could not be asked. `status` is 0 when no HTTP answer came."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"broker: {code}: {message}" + (f" (HTTP {status})" if status else ""))
        self.status = status
        self.code = code
        self.message = message

    @property
    def transient(self) -> bool:
        """Worth retrying as is: the broker was unreachable, slow or failed inside."""
        return False

    @property
    def lease_lost(self) -> bool:
        """The lease this call named is no longer ours: the item went back to the queue or elsewhere."""
        return self.code in (
            protocol.E_LEASE_EXPIRED,
            protocol.E_LEASE_MISMATCH,
            protocol.E_NOT_CLAIMED,
            protocol.E_NOT_FOUND,
        )


class BrokerUnavailable(BrokerError):
    @property
    def transient(self) -> bool:
        return True


class BrokerProtocolError(BrokerError):
    """The broker answered something that is not the protocol's reply."""


@dataclass(frozen=True)
class Lease:
    holder: str
    expires_at: str
    token: str | None


@dataclass(frozen=True)
class WorkItem:
    id: str
    capability: str
    parameters: dict[str, Any]
    state: str
    attempts: int
    cancel_requested: bool
    outcome: str | None
    details: dict[str, Any] | None
    lease: Lease | None
    created_at: str
    updated_at: str
    claimed_at: str | None
    finished_at: str | None
    cancel_reason: str | None


@dataclass(frozen=True)
class ClaimResult:
    items: list[WorkItem]
    cancel_requested: list[str]


class BrokerClient:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise BrokerError(
                0, protocol.E_INVALID, f"broker URL must start with http:// or https://: {url!r}"
            )
        self._http = httpx.Client(
            base_url=url.rstrip("/") + protocol.API_PREFIX,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BrokerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- protocol calls --------------------------------------------------------------------------

    def enqueue(self, item_id: str, capability: str, parameters: Mapping[str, Any] | None = None) -> WorkItem:
        body = {"capability": capability, "parameters": dict(parameters or {})}
        reply = self._call("PUT", _item_path(item_id), body)
        return _item(_field(reply, "item", dict))

    def get(self, item_id: str) -> WorkItem:
        return _item(_field(self._call("GET", _item_path(item_id)), "item", dict))

    def list_items(
        self,
        *,
        state: str | None = None,
        capability: str | None = None,
        agent: str | None = None,
        outcome: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> tuple[list[WorkItem], str | None]:
        """One page of items in enqueue order, and the cursor for the next page (None at the end)."""
        query = {
            k: v
            for k, v in {
                "state": state,
                "capability": capability,
                "agent": agent,
                "outcome": outcome,
                "limit": limit,
                "after": after,
            }.items()
            if v is not None
        }
        reply = self._call("GET", "/items", query=query)
        items = [_item(i) for i in _list_of(reply, "items", dict)]
        cursor = reply.get("next")
        if cursor is not None and not isinstance(cursor, str):
            raise _malformed("'next' is not a string or null")
        return items, cursor

    def claim(self, agent: str, capabilities: list[str], max_items: int, lease_seconds: int) -> ClaimResult:
        body = {
            "agent": agent,
            "capabilities": capabilities,
            "max_items": max_items,
            "lease_seconds": lease_seconds,
        }
        reply = self._call("POST", "/claims", body)
        items = [_item(i) for i in _list_of(reply, "items", dict)]
        for item in items:
            if item.lease is None or not item.lease.token:
                raise _malformed(f"claimed item {item.id!r} comes without a lease token")
        return ClaimResult(items, _list_of(reply, "cancel_requested", str))

    def extend(self, item_id: str, token: str, lease_seconds: int) -> WorkItem:
        body = {"token": token, "lease_seconds": lease_seconds}
        return _item(_field(self._call("POST", _item_path(item_id, "extend"), body), "item", dict))

    def report(self, item_id: str, token: str, outcome: str, details: Mapping[str, Any]) -> WorkItem:
        body = {"token": token, "outcome": outcome, "details": dict(details)}
        return _item(_field(self._call("POST", _item_path(item_id, "outcome"), body), "item", dict))

    def release(self, item_id: str, token: str) -> WorkItem:
        return _item(
            _field(self._call("POST", _item_path(item_id, "release"), {"token": token}), "item", dict)
        )

    def cancel(self, item_id: str, reason: str = "") -> WorkItem:
        return _item(
            _field(self._call("POST", _item_path(item_id, "cancel"), {"reason": reason}), "item", dict)
        )

    def stats(self) -> dict[str, int]:
        counts = _field(self._call("GET", "/stats"), "items", dict)
        if not all(isinstance(v, int) for v in counts.values()):
            raise _malformed("'items' counts are not integers")
        return counts

    # -- transport -------------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: Any = None, query: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        content = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else {}
        try:
            with self._http.stream(method, path, content=content, params=query, headers=headers) as resp:
                raw = _read_bounded(resp)
        except httpx.TimeoutException as exc:
            raise BrokerUnavailable(0, "timeout", f"{method} {path}: no answer in time ({exc})") from None
        except httpx.TransportError as exc:
            raise BrokerUnavailable(
                0, "unreachable", f"{method} {path}: {type(exc).__name__}: {exc}"
            ) from None
        return _decode(resp.status_code, raw, f"{method} {path}")


def _read_bounded(resp: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_bytes():
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise BrokerProtocolError(
                resp.status_code, "reply_too_large", f"reply over {MAX_REPLY_BYTES} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(status: int, raw: bytes, what: str) -> dict[str, Any]:
    try:
        reply = orjson.loads(raw)
    except orjson.JSONDecodeError:
        reply = None
    if status >= 400:
        error = reply.get("error") if isinstance(reply, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        if not isinstance(code, str) or not isinstance(message, str):
            code, message = "http_error", f"{what}: {raw[:200].decode('utf-8', 'replace')!r}"
        cls = BrokerUnavailable if status >= 500 or status == 429 else BrokerError
        raise cls(status, code, message)
    if not isinstance(reply, dict):
        raise BrokerProtocolError(status, "malformed_reply", f"{what}: the reply is not a JSON object")
    return reply


def _item_path(item_id: str, action: str | None = None) -> str:
    if not protocol.valid_item_id(item_id):
        raise BrokerError(0, protocol.E_INVALID, f"item id {item_id[:140]!r} is not a valid item id")
    return f"/items/{item_id}" + (f"/{action}" if action else "")


def _malformed(message: str) -> BrokerProtocolError:
    return BrokerProtocolError(200, "malformed_reply", message)


def _field(
    obj: Mapping[str, Any], name: str, kind: type | tuple[type, ...], *, optional: bool = False
) -> Any:
    value = obj.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _malformed(f"field {name!r} is missing or has the wrong type")
    return value


def _list_of(obj: Mapping[str, Any], name: str, kind: type) -> list[Any]:
    values = _field(obj, name, list)
    if not all(isinstance(v, kind) for v in values):
        raise _malformed(f"field {name!r} holds an entry of the wrong type")
    return values


def _item(raw: Mapping[str, Any]) -> WorkItem:
    lease_raw = _field(raw, "lease", dict, optional=True)
    lease = None
    if lease_raw is not None:
        lease = Lease(
            holder=_field(lease_raw, "holder", str),
            expires_at=_field(lease_raw, "expires_at", str),
            token=_field(lease_raw, "token", str, optional=True),
        )
    state = _field(raw, "state", str)
    if state not in protocol.STATES:
        raise _malformed(f"unknown item state {state[:40]!r}")
    outcome = _field(raw, "outcome", str, optional=True)
    if outcome is not None and outcome not in protocol.OUTCOMES:
        raise _malformed(f"unknown outcome {outcome[:40]!r}")
    return WorkItem(
        id=_field(raw, "id", str),
        capability=_field(raw, "capability", str),
        parameters=_field(raw, "parameters", dict),
        state=state,
        attempts=_field(raw, "attempts", int),
        cancel_requested=_field(raw, "cancel_requested", bool),
        outcome=outcome,
        details=_field(raw, "details", dict, optional=True),
        lease=lease,
        created_at=_field(raw, "created_at", str),
        updated_at=_field(raw, "updated_at", str),
        claimed_at=_field(raw, "claimed_at", str, optional=True),
        finished_at=_field(raw, "finished_at", str, optional=True),
        cancel_reason=_field(raw, "cancel_reason", str, optional=True),
    )
