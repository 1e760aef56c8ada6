"""List then watch, against a scripted apiserver: bookmarks, 410 Gone, reconnects, silent watches."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from urllib3.exceptions import ReadTimeoutError

from common import kube
from operators.runtime.backoff import Backoff
from operators.runtime.informer import Informer


def obj(name: str, rv: str, **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name, "resourceVersion": rv, "managedFields": [{}]},
        **extra,
    }


class ScriptedApi:
    """Lists answer from `lists` in turn; each watch plays the next script (events, then an ending)."""

    def __init__(self, lists: list[list[dict[str, Any]]], watches: list[list[Any]], stop: threading.Event):
        self.lists = lists
        self.watches = watches
        self.stop = stop
        self.list_calls = 0
        self.watch_queries: list[dict[str, Any]] = []

    def request(self, api: Any, method: str, path: str, **kwargs: Any) -> Any:
        items = self.lists[min(self.list_calls, len(self.lists) - 1)]
        self.list_calls += 1
        return {"metadata": {"resourceVersion": f"L{self.list_calls}"}, "items": items}

    def stream(
        self, api: Any, path: str, query: Mapping[str, Any], *, read_timeout: float
    ) -> Iterator[dict[str, Any]]:
        self.watch_queries.append(dict(query))
        if not self.watches:
            self.stop.set()
            return
        for step in self.watches.pop(0):
            if isinstance(step, BaseException):
                raise step
            yield step


def run(lists: list[list[dict[str, Any]]], watches: list[list[Any]], monkeypatch: pytest.MonkeyPatch):
    stop = threading.Event()
    api = ScriptedApi(lists, watches, stop)
    monkeypatch.setattr(kube, "request", api.request)
    monkeypatch.setattr(kube, "stream", api.stream)
    events: list[tuple[str, str]] = []
    restarts: list[str] = []
    informer = Informer(
        None,
        "/apis/x/v1/namespaces/ns/things",
        label_selector="a=b",
        handler=lambda t, o: events.append((t, o["metadata"]["name"])),
        backoff=Backoff(0.001, 0.002),
        on_restart=restarts.append,
    )
    informer.run(stop)
    return informer, api, events, restarts


def test_list_then_watch_from_the_list_version_with_bookmarks(monkeypatch: pytest.MonkeyPatch) -> None:
    watches = [
        [
            {"type": "ADDED", "object": obj("b", "5")},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}},
            {"type": "MODIFIED", "object": obj("a", "10", spec={"x": 1})},
            {"type": "DELETED", "object": obj("b", "11")},
        ],
        [],
    ]
    informer, api, events, _ = run([[obj("a", "1")]], watches, monkeypatch)
    assert informer.synced.is_set()
    first, second = api.watch_queries[0], api.watch_queries[1]
    assert first["resourceVersion"] == "L1" and first["allowWatchBookmarks"] is True
    assert first["labelSelector"] == "a=b" and first["watch"] is True
    assert second["resourceVersion"] == "11"  # the next watch resumes where the last event left off
    assert events == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    cached = informer.store.get(("ns", "a"))
    assert cached is not None and cached["spec"] == {"x": 1}
    assert "managedFields" not in cached["metadata"]
    assert informer.store.get(("ns", "b")) is None
    assert api.list_calls == 1


def test_gone_relists_and_reports_what_vanished_meanwhile(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = {
        "type": "ERROR",
        "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"},
    }
    lists = [[obj("a", "1"), obj("b", "2")], [obj("b", "3"), obj("c", "4")]]
    informer, api, events, restarts = run(lists, [[gone], []], monkeypatch)
    assert api.list_calls == 2
    assert ("DELETED", "a") in events and ("ADDED", "c") in events
    assert sorted(k[1] for k in list(informer.store.keys())) == ["b", "c"]
    assert "expired" in restarts
    assert api.watch_queries[1]["resourceVersion"] == "L2"


def test_gone_as_an_http_status_relists_too(monkeypatch: pytest.MonkeyPatch) -> None:
    _, api, _, _ = run([[]], [[kube.ApiError(410, "Expired", "too old")], []], monkeypatch)
    assert api.list_calls == 2


def test_errors_reconnect_with_backoff_and_keep_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    watches = [
        [{"type": "ADDED", "object": obj("a", "7")}, ConnectionResetError("reset")],
        [kube.ApiError(500, "InternalError", "etcd")],
        [],
    ]
    _, api, _, restarts = run([[]], watches, monkeypatch)
    assert restarts[:2] == ["error", "error"]
    assert [q["resourceVersion"] for q in api.watch_queries] == ["L1", "7", "7", "7"]
    assert api.list_calls == 1


def test_a_silent_watch_times_out_and_starts_again(monkeypatch: pytest.MonkeyPatch) -> None:
    silent = ReadTimeoutError(None, "/", "read timed out")  # type: ignore[arg-type]
    _, api, _, restarts = run([[]], [[silent], []], monkeypatch)
    assert restarts[0] == "timeout"
    assert len(api.watch_queries) == 3


def test_list_failures_are_retried_before_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    stop = threading.Event()
    api = ScriptedApi([[obj("a", "1")]], [[]], stop)
    failures = [ConnectionRefusedError("refused"), kube.ApiError(503, "ServiceUnavailable", "starting")]

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop(0)
        return api.request(*args, **kwargs)

    monkeypatch.setattr(kube, "request", flaky)
    monkeypatch.setattr(kube, "stream", api.stream)
    informer = Informer(None, "/p", backoff=Backoff(0.001, 0.002))
    informer.run(stop)
    assert informer.synced.is_set() and len(informer.store) == 1
