"""The protocol client facing a broken broker: every odd reply is a clear BrokerError, never a crash.

A real broker never sends these, so these tests stand a fake one up with httpx.MockTransport.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent import client as client_module
from agent.client import BrokerClient, BrokerError, BrokerProtocolError, BrokerUnavailable

GOOD_ITEM = {
    "id": "x",
    "capability": "build",
    "parameters": {},
    "state": "queued",
    "attempts": 0,
    "created_at": "2026-01-01T00:00:00.000Z",
    "updated_at": "2026-01-01T00:00:00.000Z",
    "claimed_at": None,
    "finished_at": None,
    "lease": None,
    "cancel_requested": False,
    "cancel_reason": None,
    "outcome": None,
    "details": None,
}


def broker_answering(answer: Callable[[httpx.Request], httpx.Response]) -> BrokerClient:
    return BrokerClient("http://broker.test", "t", transport=httpx.MockTransport(answer))


def json_reply(body: Any, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, content=orjson.dumps(body))


def test_a_good_reply_is_typed() -> None:
    item = broker_answering(json_reply({"item": GOOD_ITEM})).get("x")
    assert item.id == "x" and item.state == "queued" and item.lease is None


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (lambda r: httpx.Response(200, content=b"<html>hi</html>"), "not a JSON object"),
        (json_reply([1, 2]), "not a JSON object"),
        (json_reply({}), "'item'"),
        (json_reply({"item": {**GOOD_ITEM, "state": "lost"}}), "unknown item state"),
        (json_reply({"item": {**GOOD_ITEM, "attempts": "3"}}), "'attempts'"),
        (json_reply({"item": {**GOOD_ITEM, "attempts": True}}), "'attempts'"),
        (json_reply({"item": {**GOOD_ITEM, "outcome": "maybe"}}), "unknown outcome"),
        (json_reply({"item": {**GOOD_ITEM, "lease": {"holder": 1}}}), "'holder'"),
    ],
)
def test_malformed_replies_are_protocol_errors(
    reply: Callable[[httpx.Request], httpx.Response], problem: str
) -> None:
    with pytest.raises(BrokerProtocolError) as err:
        broker_answering(reply).get("x")
    assert problem in str(err.value)


def test_a_claim_without_a_lease_token_is_refused() -> None:
    reply = json_reply({"items": [{**GOOD_ITEM, "state": "claimed"}], "cancel_requested": []})
    with pytest.raises(BrokerProtocolError) as err:
        broker_answering(reply).claim("a", ["build"], 1, 10)
    assert "lease token" in str(err.value)


def test_errors_keep_the_brokers_code_and_message() -> None:
    body = {"error": {"code": "lease_expired", "message": "item 'x' is not held"}}
    with pytest.raises(BrokerError) as err:
        broker_answering(json_reply(body, 409)).extend("x", "t", 10)
    assert err.value.status == 409 and err.value.code == "lease_expired"
    assert err.value.lease_lost and not err.value.transient


def test_server_failures_and_timeouts_are_transient() -> None:
    with pytest.raises(BrokerUnavailable) as err:
        broker_answering(lambda r: httpx.Response(502, content=b"bad gateway")).get("x")
    assert err.value.transient and err.value.code == "http_error"

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(BrokerUnavailable) as err:
        broker_answering(slow).get("x")
    assert err.value.code == "timeout"


def test_an_oversized_reply_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "MAX_REPLY_BYTES", 1000)
    with pytest.raises(BrokerProtocolError) as err:
        broker_answering(lambda r: httpx.Response(200, content=b" " * 5000)).get("x")
    assert err.value.code == "reply_too_large"


def test_bad_ids_and_urls_are_refused_before_sending() -> None:
    sent: list[httpx.Request] = []
    broker = broker_answering(lambda r: sent.append(r) or httpx.Response(200))  # type: ignore[func-returns-value]
    with pytest.raises(BrokerError) as err:
        broker.get("../../etc")
    assert "not a valid item id" in str(err.value) and not sent
    with pytest.raises(BrokerError):
        BrokerClient("ftp://broker", "t")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=15,
)


@given(
    body=st.one_of(
        json_values,
        st.fixed_dictionaries({"item": json_values}),
        st.fixed_dictionaries({"items": json_values, "cancel_requested": json_values}),
    ),
    status=st.sampled_from([200, 400, 404, 409, 500]),
)
def test_any_reply_is_a_typed_value_or_a_broker_error(body: Any, status: int) -> None:
    broker = broker_answering(json_reply(body, status))
    for call in (lambda: broker.get("x"), lambda: broker.claim("a", ["build"], 1, 10), broker.list_items):
        with contextlib.suppress(BrokerError):  # anything else would fail the test
            call()
