"""The namespace view: list+watch semantics (bookmarks, 410 relist, backoff) and the miss fetch."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from common import kube
from webhook import watch
from webhook.namespaces import Namespace, NamespaceCache, StaticNamespaces


def ns(name: str, version: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "resourceVersion": version, "labels": labels, "annotations": {"a": "b"}}
    }


class FakeApi:
    """Scripted answers for kube.request (lists, gets) and kube.stream (watch sessions)."""

    def __init__(self, lists: list[Any], watches: list[Any], gets: dict[str, Any] | None = None) -> None:
        self.lists = lists
        self.watches = watches
        self.gets = gets or {}
        self.list_calls = 0
        self.get_calls = 0
        self.watch_queries: list[dict[str, Any]] = []

    def request(self, api: Any, method: str, path: str, **kwargs: Any) -> Any:
        if path == "/api/v1/namespaces":
            self.list_calls += 1
            answer = self.lists.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        name = path.rsplit("/", 1)[1]
        self.get_calls += 1
        if name not in self.gets:
            raise kube.ApiError(404, "NotFound", f"namespaces {name!r} not found")
        return self.gets[name]

    def stream(
        self, api: Any, path: str, query: dict[str, Any], *, read_timeout: float
    ) -> Iterator[dict[str, Any]]:
        self.watch_queries.append(dict(query))
        session = self.watches.pop(0) if self.watches else None
        if session is None:
            self.stop()
            return
        for event in session:
            if isinstance(event, Exception):
                raise event
            yield event

    def stop(self) -> None:
        self.cache._watch._stop.set()

    cache: NamespaceCache


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    api = FakeApi(lists=[], watches=[])
    monkeypatch.setattr(kube, "request", api.request)
    monkeypatch.setattr(kube, "stream", api.stream)
    yield api


def run_cache(api: FakeApi) -> NamespaceCache:
    cache = NamespaceCache(api)
    api.cache = cache
    sleeps: list[float] = []
    cache._watch._sleep = lambda seconds: bool(sleeps.append(seconds))  # type: ignore[method-assign]
    cache._watch.run()  # in this thread: the fake ends it when its script runs out
    cache.sleeps = sleeps  # type: ignore[attr-defined]
    return cache


def listing(version: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": version}, "items": list(items)}


def test_list_then_watch_follows_events_and_bookmarks(fake: FakeApi) -> None:
    fake.lists = [listing("10", ns("a", "5", **{"remora.dev/injection": "enabled"}), ns("b", "6"))]
    fake.watches = [
        [
            {"type": "ADDED", "object": ns("c", "11")},
            {"type": "MODIFIED", "object": ns("a", "12")},
            {"type": "DELETED", "object": ns("b", "13")},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "20"}}},
        ]
    ]
    cache = run_cache(fake)
    assert cache.ready()
    assert cache.get("a") == Namespace("a", {}, {"a": "b"})
    assert cache.get("b") is None
    assert cache.get("c") is not None
    assert fake.watch_queries[0]["resourceVersion"] == "10"
    assert fake.watch_queries[0]["allowWatchBookmarks"] == "true"
    assert fake.watch_queries[1]["resourceVersion"] == "20"  # resumed after the bookmark


def test_410_gone_means_list_again(fake: FakeApi) -> None:
    fake.lists = [listing("10", ns("a", "5")), listing("30", ns("z", "29"))]
    fake.watches = [[kube.ApiError(410, "Expired", "too old")]]
    cache = run_cache(fake)
    assert fake.list_calls == 2
    assert cache.get("a") is None  # the second list replaced the first
    assert cache.get("z") is not None


def test_an_error_event_means_list_again(fake: FakeApi) -> None:
    fake.lists = [listing("10"), listing("11", ns("n", "11"))]
    fake.watches = [[{"type": "ERROR", "object": {"code": 410, "message": "too old resource version"}}]]
    cache = run_cache(fake)
    assert fake.list_calls == 2
    assert cache.get("n") is not None


def test_failures_back_off_with_a_cap(fake: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch.random, "uniform", lambda a, b: 1.0)
    fake.lists = [kube.ApiError(500, "InternalError", "boom")] * 9 + [listing("1")]
    cache = run_cache(fake)
    assert cache.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]  # type: ignore[attr-defined]
    assert cache.ready()


def test_a_name_not_yet_seen_is_fetched_once(fake: FakeApi) -> None:
    fake.gets = {"fresh": ns("fresh", "3", **{"remora.dev/injection": "enabled"})}
    cache = NamespaceCache(fake)
    asyncio.run(cache.ensure("fresh"))
    got = cache.get("fresh")
    assert got is not None and got.labels == {"remora.dev/injection": "enabled"}
    asyncio.run(cache.ensure("missing"))
    assert cache.get("missing") is None
    calls = fake.get_calls
    asyncio.run(cache.ensure("missing"))  # a recent miss is remembered for a few seconds
    assert fake.get_calls == calls
    asyncio.run(cache.ensure("../../secrets"))  # not a namespace name: never put in a URL
    assert cache.get("../../secrets") is None


def test_static_namespaces() -> None:
    view = StaticNamespaces.of(Namespace("a"))
    assert view.ready()
    assert view.get("a") == Namespace("a")
    assert view.get("b") is None
    asyncio.run(view.ensure("b"))
