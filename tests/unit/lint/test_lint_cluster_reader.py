"""The cluster reader against a fake API server (the e2e test uses a real one): paging,
--namespace, access reviews, and the errors that end in exit 2."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from common import kube, names
from lint import cluster
from lint.inputs import InputError
from lint.model import Severity
from lint.rules import run

AGENT = {
    "metadata": {"name": "coder", "namespace": "agents"},
    "spec": {
        "template": {
            "metadata": {"annotations": {names.CAPABILITIES_ANNOTATION: "build"}},
            "spec": {"serviceAccountName": "coder", "containers": [{"name": "agent", "image": "agent"}]},
        }
    },
}


class FakeApi:
    class configuration:  # mimics ApiClient.configuration
        host = "https://127.0.0.1:6443"

    def __init__(self, serve: Callable[[str, str, Any, Any], Any]) -> None:
        self.serve = serve
        self.calls: list[tuple[str, str, Any]] = []
        self.closed = False

    def close(self) -> None:
        self.closed = True


def install(monkeypatch: pytest.MonkeyPatch, serve: Callable[[str, str, Any, Any], Any]) -> FakeApi:
    api = FakeApi(serve)

    def request(
        _api: Any, method: str, path: str, *, body: Any = None, query: Any = None, timeout: float = 0
    ) -> Any:
        api.calls.append((method, path, query))
        return api.serve(method, path, body, query)

    monkeypatch.setattr(cluster.kube, "load_api_client", lambda _kubeconfig: api)
    monkeypatch.setattr(cluster.kube, "request", request)
    return api


def cluster_of(
    objects: dict[str, list[dict[str, Any]]], allowed: Callable[[dict[str, Any]], bool]
) -> Callable[..., Any]:
    def serve(method: str, path: str, body: Any, query: Any) -> Any:
        if method == "POST":
            assert path == cluster.SAR_PATH
            return {"status": {"allowed": allowed(body["spec"]), "reason": "fake"}}
        plural = path.rsplit("/", 1)[-1]
        if path.startswith("/api/v1/namespaces/") and path.count("/") == 4:
            name = plural
            for ns in objects.get("namespaces", []):
                if ns["metadata"]["name"] == name:
                    return ns
            raise kube.ApiError(404, "NotFound", f"namespaces {name!r} not found")
        items = objects.get(plural, [])
        if "/namespaces/" in path:
            namespace = path.split("/namespaces/")[1].split("/", maxsplit=1)[0]
            items = [i for i in items if i["metadata"].get("namespace") == namespace]
        return {"kind": "List", "items": items, "metadata": {}}

    return serve


NAMESPACES = [
    {"metadata": {"name": "agents", "labels": {names.INJECTION_LABEL: "enabled"}}},
    {"metadata": {"name": "other"}},
]


def test_reads_every_kind_and_asks_one_review_per_permission(monkeypatch: pytest.MonkeyPatch) -> None:
    def allowed(spec: dict[str, Any]) -> bool:
        attrs = spec["resourceAttributes"]
        assert spec["user"] == "system:serviceaccount:agents:coder"
        assert "system:serviceaccounts:agents" in spec["groups"]
        return attrs["resource"] != "events"

    api = install(monkeypatch, cluster_of({"namespaces": NAMESPACES, "deployments": [AGENT]}, allowed))
    inventory = cluster.read(None, None)
    assert api.closed and inventory.live
    listed = {path for method, path, _ in api.calls if method == "GET"}
    assert {
        "/api/v1/namespaces",
        "/api/v1/pods",
        "/apis/apps/v1/deployments",
        "/apis/batch/v1/cronjobs",
        "/api/v1/persistentvolumeclaims",
        "/api/v1/serviceaccounts",
    } <= listed
    reviews = [c for c in api.calls if c[0] == "POST"]
    assert len(reviews) == 5 + 5 + 3 + 1
    [finding] = [f for f in run(inventory) if f.rule == "capability-without-rbac"]
    # Events alone: the operators drop them and carry on, so a warning, not an error.
    assert finding.severity is Severity.WARNING
    assert finding.details["missing"] == ["create events (events.k8s.io)"]
    assert {r.kind for r in inventory.resources} == {"Namespace", "Deployment"}


def test_pages_through_continue_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    pods = [{"metadata": {"name": f"p{i}", "namespace": "other"}, "spec": {}} for i in range(3)]

    def serve(method: str, path: str, body: Any, query: Any) -> Any:
        if path == "/api/v1/pods":
            start = int(query.get("continue", 0))
            nxt = {"continue": str(start + 2)} if start + 2 < len(pods) else {}
            return {"items": pods[start : start + 2], "metadata": nxt}
        return cluster_of({"namespaces": NAMESPACES}, lambda _s: True)(method, path, body, query)

    install(monkeypatch, serve)
    inventory = cluster.read(None, None)
    assert sorted(r.name for r in inventory.of_kind("Pod")) == ["p0", "p1", "p2"]


def test_namespace_limits_the_read(monkeypatch: pytest.MonkeyPatch) -> None:
    other = {**AGENT, "metadata": {"name": "x", "namespace": "other"}}
    api = install(
        monkeypatch, cluster_of({"namespaces": NAMESPACES, "deployments": [AGENT, other]}, lambda _s: True)
    )
    inventory = cluster.read(None, "agents")
    assert [r.name for r in inventory.of_kind("Namespace")] == ["agents"]
    assert [r.name for r in inventory.of_kind("Deployment")] == ["coder"]
    assert all("/namespaces/agents" in path for method, path, _ in api.calls if method == "GET")
    assert [f for f in run(inventory)] == []


def test_missing_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, cluster_of({"namespaces": NAMESPACES}, lambda _s: True))
    with pytest.raises(InputError, match="namespace 'nope' not found"):
        cluster.read(None, "nope")


def test_forbidden_list_names_the_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    def serve(method: str, path: str, body: Any, query: Any) -> Any:
        raise kube.ApiError(403, "Forbidden", 'namespaces is forbidden: User "x" cannot list')

    install(monkeypatch, serve)
    with pytest.raises(InputError, match=r"cannot list namespaces \(try --namespace\): 403 Forbidden"):
        cluster.read(None, None)


def test_unreachable_server(monkeypatch: pytest.MonkeyPatch) -> None:
    def serve(method: str, path: str, body: Any, query: Any) -> Any:
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    install(monkeypatch, serve)
    with pytest.raises(InputError, match=r"cannot reach the cluster at https://127.0.0.1:6443: .*refused"):
        cluster.read(None, None)


def test_refused_reviews_stop_after_the_first_and_become_info(monkeypatch: pytest.MonkeyPatch) -> None:
    base = cluster_of({"namespaces": NAMESPACES, "deployments": [AGENT]}, lambda _s: True)

    def serve(method: str, path: str, body: Any, query: Any) -> Any:
        if method == "POST":
            raise kube.ApiError(403, "Forbidden", "cannot create subjectaccessreviews")
        return base(method, path, body, query)

    api = install(monkeypatch, serve)
    inventory = cluster.read(None, None)
    assert len([c for c in api.calls if c[0] == "POST"]) == 1
    [finding] = [f for f in run(inventory) if f.rule == "capability-without-rbac"]
    assert finding.severity is Severity.INFO and "403" in finding.message


def test_bad_kubeconfig(tmp_path: Any) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("this: is: not: a kubeconfig")
    with pytest.raises(InputError, match=f"cannot load {path}"):
        cluster.read(str(path), None)


def test_an_api_the_cluster_does_not_serve_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    base = cluster_of({"namespaces": NAMESPACES, "deployments": [AGENT]}, lambda _s: True)

    def serve(method: str, path: str, body: Any, query: Any) -> Any:
        if path.endswith("/cronjobs"):
            raise kube.ApiError(404, "NotFound", "the server could not find the requested resource")
        return base(method, path, body, query)

    install(monkeypatch, serve)
    inventory = cluster.read(None, None)
    assert [r.name for r in inventory.of_kind("Deployment")] == ["coder"]
