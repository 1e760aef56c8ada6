"""Bad requests get a clear 4xx with {"error": {"code", "message"}} naming the problem, never a 500."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from conftest import TOKEN, FakeClock, LiveBroker, serve_broker
from hypothesis import given, settings
from hypothesis import strategies as st

from agent import protocol

AUTH = {"Authorization": f"Bearer {TOKEN}"}
WRITE_PATHS = [
    ("PUT", "/v1/items/garbage-target"),
    ("POST", "/v1/claims"),
    ("POST", "/v1/items/garbage-target/extend"),
    ("POST", "/v1/items/garbage-target/outcome"),
    ("POST", "/v1/items/garbage-target/release"),
    ("POST", "/v1/items/garbage-target/cancel"),
]


@pytest.fixture(scope="module")
def http(shared_broker: LiveBroker) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_broker.url, headers=AUTH, timeout=10) as c:
        c.put("/v1/items/garbage-target", json={"capability": "build", "parameters": {}})
        yield c


def error_of(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return str(body["error"]["message"])


@pytest.mark.parametrize(
    ("method", "path", "body", "code", "mentions"),
    [
        ("PUT", "/v1/items/a", b"{", protocol.E_BAD_JSON, "malformed JSON"),
        ("PUT", "/v1/items/a", b"\xff\xfe", protocol.E_BAD_JSON, "malformed JSON"),
        ("PUT", "/v1/items/a", b"[1, 2]", protocol.E_INVALID, "JSON object"),
        ("PUT", "/v1/items/a", b"{}", protocol.E_INVALID, "'capability'"),
        ("PUT", "/v1/items/a", b'{"capability": 7}', protocol.E_INVALID, "capability"),
        ("PUT", "/v1/items/a", b'{"capability": "Build!"}', protocol.E_INVALID, "capability"),
        (
            "PUT",
            "/v1/items/a",
            b'{"capability": "build", "parameters": []}',
            protocol.E_INVALID,
            "parameters",
        ),
        ("PUT", "/v1/items/a", b'{"capability": "build", "extra": 1}', protocol.E_INVALID, "'extra'"),
        ("PUT", "/v1/items/-bad", b'{"capability": "build"}', protocol.E_INVALID, "item id"),
        ("PUT", "/v1/items/" + "a" * 200, b'{"capability": "build"}', protocol.E_INVALID, "item id"),
        ("POST", "/v1/claims", b'{"capabilities": ["build"]}', protocol.E_INVALID, "'agent'"),
        ("POST", "/v1/claims", b'{"agent": "a", "capabilities": []}', protocol.E_INVALID, "capabilities"),
        (
            "POST",
            "/v1/claims",
            b'{"agent": "a", "capabilities": "build"}',
            protocol.E_INVALID,
            "capabilities",
        ),
        ("POST", "/v1/claims", b'{"agent": "a", "capabilities": [1]}', protocol.E_INVALID, "capabilities[0]"),
        (
            "POST",
            "/v1/claims",
            b'{"agent": "a", "capabilities": ["build"], "max_items": 0}',
            protocol.E_INVALID,
            "max_items",
        ),
        (
            "POST",
            "/v1/claims",
            b'{"agent": "a", "capabilities": ["build"], "max_items": 1.5}',
            protocol.E_INVALID,
            "max_items",
        ),
        (
            "POST",
            "/v1/claims",
            b'{"agent": "a", "capabilities": ["build"], "lease_seconds": true}',
            protocol.E_INVALID,
            "lease_seconds",
        ),
        (
            "POST",
            "/v1/claims",
            b'{"agent": "a", "capabilities": ["build"], "lease_seconds": 99999}',
            protocol.E_INVALID,
            "lease_seconds",
        ),
        ("POST", "/v1/items/garbage-target/extend", b"{}", protocol.E_INVALID, "'token'"),
        ("POST", "/v1/items/garbage-target/outcome", b'{"token": "t"}', protocol.E_INVALID, "'outcome'"),
        (
            "POST",
            "/v1/items/garbage-target/outcome",
            b'{"token": "t", "outcome": "cancelled"}',
            protocol.E_INVALID,
            "outcome",
        ),
        (
            "POST",
            "/v1/items/garbage-target/outcome",
            b'{"token": "t", "outcome": "failed", "details": "x"}',
            protocol.E_INVALID,
            "details",
        ),
        ("POST", "/v1/items/garbage-target/cancel", b'{"reason": 3}', protocol.E_INVALID, "reason"),
        ("POST", "/v1/items/garbage-target/extend", b'{"token": "t"}', protocol.E_LEASE_EXPIRED, "not held"),
    ],
)
def test_bad_bodies_are_named(  # noqa: PLR0917 - one parameter per table column
    http: httpx.Client, method: str, path: str, body: bytes, code: str, mentions: str
) -> None:
    resp = http.request(method, path, content=body)
    status = 409 if code == protocol.E_LEASE_EXPIRED else 400
    assert mentions in error_of(resp, status, code)


def test_deep_nesting_is_refused(http: httpx.Client) -> None:
    body = b'{"capability": "build", "parameters": {"a": ' + b"[" * 100 + b"]" * 100 + b"}}"
    assert "nests deeper" in error_of(http.put("/v1/items/deep", content=body), 400, protocol.E_BAD_JSON)


def test_oversized_bodies_are_413(http: httpx.Client) -> None:
    big = orjson.dumps(
        {"capability": "build", "parameters": {"blob": "x" * (protocol.MAX_REQUEST_BYTES + 1)}}
    )
    assert "limit" in error_of(http.put("/v1/items/big", content=big), 413, protocol.E_TOO_LARGE)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming too
        for _ in range(protocol.MAX_REQUEST_BYTES // 65536 + 2):
            yield b" " * 65536

    error_of(http.put("/v1/items/big", content=chunks()), 413, protocol.E_TOO_LARGE)


def test_bad_query_parameters_are_named(http: httpx.Client) -> None:
    assert "'state'" in error_of(http.get("/v1/items", params={"state": "lost"}), 400, protocol.E_INVALID)
    assert "'limit'" in error_of(http.get("/v1/items", params={"limit": "-1"}), 400, protocol.E_INVALID)
    assert "'limit'" in error_of(http.get("/v1/items", params={"limit": "9" * 40}), 400, protocol.E_INVALID)
    assert "'colour'" in error_of(http.get("/v1/items", params={"colour": "x"}), 400, protocol.E_INVALID)


def test_authentication_is_required_and_checked(shared_broker: LiveBroker) -> None:
    with httpx.Client(base_url=shared_broker.url) as anon:
        assert anon.get("/healthz").status_code == 200
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
            resp = anon.get("/v1/items", headers=headers)
            error_of(resp, 401, protocol.E_UNAUTHORIZED)
            assert resp.headers["www-authenticate"].startswith("Bearer")


def test_unknown_routes_and_methods_are_json(http: httpx.Client) -> None:
    error_of(http.get("/v1/nothing-here"), 404, protocol.E_NOT_FOUND)
    error_of(http.delete("/v1/items/garbage-target"), 405, protocol.E_METHOD)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(
    ["capability", "parameters", "agent", "capabilities", "max_items", "lease_seconds", "token", "outcome",
     "details", "reason"]
)  # fmt: skip
plausible_objects = st.dictionaries(field_names, json_values, max_size=5)


@settings(max_examples=120, deadline=None)
@given(
    target=st.sampled_from(WRITE_PATHS),
    body=st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),  # stdlib: big ints and Infinity too
        plausible_objects.map(lambda v: json.dumps(v).encode()),
    ),
)
def test_garbage_bodies_never_get_a_500(http: httpx.Client, target: tuple[str, str], body: bytes) -> None:
    resp = http.request(target[0], target[1], content=body)
    assert resp.status_code < 500, resp.text
    if resp.status_code >= 400:
        payload: Any = resp.json()
        assert isinstance(payload["error"]["code"], str) and payload["error"]["message"]


@settings(max_examples=60, deadline=None)
@given(
    path=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="?#"),
        min_size=1,
        max_size=60,
    ),
    query=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
)
def test_garbage_paths_and_queries_never_get_a_500(
    http: httpx.Client, path: str, query: dict[str, str]
) -> None:
    resp = http.get("/v1/items/" + path, params=query)
    assert resp.status_code < 500, resp.text
    resp = http.get("/v1/items", params=query)
    assert resp.status_code < 500, resp.text


def test_a_storage_failure_is_503_not_500(tmp_path: Path) -> None:
    with (
        serve_broker(tmp_path / "q.db", FakeClock(), busy_timeout=0.1) as broker,
        httpx.Client(base_url=broker.url, headers=AUTH) as c,
    ):
        c.put("/v1/items/x", json={"capability": "build"})
        # Another process's connection holds the write lock past the broker's busy timeout.
        blocker = sqlite3.connect(broker.db_path, isolation_level=None, timeout=0)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            resp = c.post("/v1/claims", json={"agent": "a", "capabilities": ["build"]})
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert "storage failed" in error_of(resp, 503, protocol.E_UNAVAILABLE)
        assert c.post("/v1/claims", json={"agent": "a", "capabilities": ["build"]}).json()["items"]
