"""Owner-reference rules, each proved by a real case that passes and one that fails."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes import client
from validate_support import hardened_pod, request, review

from common.names import AGENT_LABEL, API_VERSION, MANAGED_BY_LABEL
from webhook.namespaces import Namespace, StaticNamespaces
from webhook.validate.handler import Validator
from webhook.validate.owners import ApiOwnerLookup, LookupUnavailable, MemoryOwnerLookup

BR_UID = "0b7e5c36-9d7a-4c3e-9f51-000000000001"
JOB_UID = "0b7e5c36-9d7a-4c3e-9f51-000000000002"
JOB_CONTROLLER = "system:serviceaccount:kube-system:job-controller"
GC = "system:serviceaccount:kube-system:generic-garbage-collector"


def lookup() -> MemoryOwnerLookup:
    memory = MemoryOwnerLookup(served={"remora.dev": ["v1alpha1"], "batch": ["v1"]})
    memory.add("remora.dev", "buildrequests", "team", "build-1", BR_UID)
    memory.add("batch", "jobs", "team", "build-1-job", JOB_UID)
    return memory


def validator(owner_lookup: Any = None) -> Validator:
    return Validator(StaticNamespaces.of(Namespace("team")), owner_lookup=owner_lookup or lookup())


def owner_ref(**overrides: Any) -> dict[str, Any]:
    ref = {
        "apiVersion": API_VERSION,
        "kind": "BuildRequest",
        "name": "build-1",
        "uid": BR_UID,
        "controller": True,
    }
    ref.update(overrides)
    return ref


def job(*refs: dict[str, Any], managed: bool = True) -> dict[str, Any]:
    labels = {MANAGED_BY_LABEL: "remora"} if managed else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "build-1-job",
            "namespace": "team",
            "labels": labels,
            "ownerReferences": list(refs),
        },
        "spec": {"template": {"metadata": {"labels": dict(labels)}, "spec": hardened_pod()["spec"]}},
    }


def job_request(obj: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return request(obj, kind="Job", group="batch", resource="jobs", **kwargs)


def decide(req: dict[str, Any], owner_lookup: Any = None) -> dict[str, Any]:
    status, response = review(validator(owner_lookup), req)
    assert status == 200
    return response


def message(response: dict[str, Any]) -> str:
    return response["status"]["message"]


def test_a_job_with_its_one_live_controller_reference_passes() -> None:
    assert decide(job_request(job(owner_ref())))["allowed"] is True


def test_objects_not_managed_by_remora_are_left_alone() -> None:
    assert decide(job_request(job(managed=False)))["allowed"] is True


@pytest.mark.parametrize(
    ("refs", "expected"),
    [
        ([], "found 0 references"),
        ([owner_ref(controller=False)], "0 with controller=true"),
        ([owner_ref(controller=None)], "0 with controller=true"),
        ([owner_ref(), owner_ref(name="other", uid="x", controller=False)], "found 2 references"),
    ],
)
def test_exactly_one_reference_and_it_is_the_controller(refs: list[dict[str, Any]], expected: str) -> None:
    response = decide(job_request(job(*refs)))
    assert response["allowed"] is False and expected in message(response)
    assert response["status"]["details"]["causes"][0]["field"] == "metadata.ownerReferences"


@pytest.mark.parametrize(
    "ref",
    [
        owner_ref(apiVersion="apps/v1", kind="Deployment", name="web"),
        owner_ref(apiVersion="v1", kind="Pod", name="agent"),
        owner_ref(kind="Widget"),
    ],
)
def test_the_controller_must_be_a_capability_kind(ref: dict[str, Any]) -> None:
    response = decide(job_request(job(ref)))
    assert response["allowed"] is False and "capability kind" in message(response)


@pytest.mark.parametrize("kind", ["BuildRequest", "TestRun", "DatabaseMigration"])
def test_every_capability_kind_can_own(kind: str) -> None:
    memory = lookup()
    plural = {
        "BuildRequest": "buildrequests",
        "TestRun": "testruns",
        "DatabaseMigration": "databasemigrations",
    }[kind]
    memory.add("remora.dev", plural, "team", "cr", "uid-cr")
    assert decide(job_request(job(owner_ref(kind=kind, name="cr", uid="uid-cr"))), memory)["allowed"] is True


def test_the_owner_must_exist_in_the_same_namespace() -> None:
    response = decide(job_request(job(owner_ref(name="gone"))))
    assert response["allowed"] is False
    assert "BuildRequest 'gone' does not exist in namespace 'team'" in message(response)
    other_ns = decide(job_request(job(owner_ref()), namespace="elsewhere"))
    assert other_ns["allowed"] is False and "does not exist in namespace 'elsewhere'" in message(other_ns)


def test_the_owner_uid_must_be_current() -> None:
    response = decide(job_request(job(owner_ref(uid="old-uid"))))
    assert response["allowed"] is False and "stale reference" in message(response)
    assert response["status"]["details"]["causes"][0]["field"] == "metadata.ownerReferences[0].uid"


def test_the_owner_api_version_must_be_served() -> None:
    response = decide(job_request(job(owner_ref(apiVersion="remora.dev/v9"))))
    assert (
        response["allowed"] is False and "not served" in message(response) and "v1alpha1" in message(response)
    )


def test_block_owner_deletion_must_not_be_true() -> None:
    assert decide(job_request(job(owner_ref(blockOwnerDeletion=False))))["allowed"] is True
    response = decide(job_request(job(owner_ref(blockOwnerDeletion=True))))
    assert response["allowed"] is False
    assert (
        response["status"]["details"]["causes"][0]["field"]
        == "metadata.ownerReferences[0].blockOwnerDeletion"
    )


def _job_pod(block: bool = True) -> dict[str, Any]:
    pod = hardened_pod("build-1-job-abcde")
    pod["metadata"]["labels"] = {MANAGED_BY_LABEL: "remora"}
    pod["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": "build-1-job",
            "uid": JOB_UID,
            "controller": True,
            "blockOwnerDeletion": block,
        }
    ]
    return pod


def test_pods_the_job_controller_creates_may_block_owner_deletion() -> None:
    assert decide(request(_job_pod(), username=JOB_CONTROLLER))["allowed"] is True
    # the Job must still be live with that uid
    stale = _job_pod()
    stale["metadata"]["ownerReferences"][0]["uid"] = "not-the-job"
    assert decide(request(stale, username=JOB_CONTROLLER))["allowed"] is False


def test_the_job_pod_exemption_is_only_for_the_job_controller() -> None:
    response = decide(request(_job_pod(), username="alice"))
    assert response["allowed"] is False and "capability kind" in message(response)


def test_on_update_the_controller_reference_may_not_change_or_go() -> None:
    old = job(owner_ref())
    relabelled = copy.deepcopy(old)
    relabelled["metadata"]["labels"]["extra"] = "yes"
    assert decide(job_request(relabelled, operation="UPDATE", old=old))["allowed"] is True

    moved = job(owner_ref(name="build-2", uid="other"))
    response = decide(job_request(moved, operation="UPDATE", old=old))
    assert response["allowed"] is False and "may not change" in message(response)

    removed = job()
    response = decide(job_request(removed, operation="UPDATE", old=old))
    assert response["allowed"] is False and "found 0 references" in message(response)


def test_dropping_the_label_is_no_way_out() -> None:
    old = job(owner_ref())
    escaped = job(managed=False)
    response = decide(job_request(escaped, operation="UPDATE", old=old))
    assert response["allowed"] is False and "found 0 references" in message(response)


def test_the_garbage_collector_may_orphan() -> None:
    old = job(owner_ref())
    assert decide(job_request(job(), operation="UPDATE", old=old, username=GC))["allowed"] is True


def test_updates_do_not_need_the_owner_to_still_exist() -> None:
    """During background deletion the owner is gone before its dependents; they may still be updated."""
    old = job(owner_ref())
    new = copy.deepcopy(old)
    new["metadata"]["labels"]["x"] = "y"
    memory = lookup()
    memory.remove("remora.dev", "buildrequests", "team", "build-1")
    assert decide(job_request(new, operation="UPDATE", old=old), memory)["allowed"] is True


def _build_request(labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "BuildRequest",
        "metadata": {"name": "build-1", "namespace": "team", "labels": labels},
        "spec": {},
    }


def test_capability_resources_carry_the_agent_label() -> None:
    req = request(
        _build_request({AGENT_LABEL: "agent-7f9c"}),
        kind="BuildRequest",
        group="remora.dev",
        version="v1alpha1",
        resource="buildrequests",
    )
    assert decide(req)["allowed"] is True
    req["object"] = _build_request({})
    response = decide(req)
    assert response["allowed"] is False
    assert response["status"]["details"]["causes"][0]["field"] == f"metadata.labels[{AGENT_LABEL}]"


def test_capability_resources_may_not_lose_the_agent_label_but_old_ones_are_not_blocked() -> None:
    def update(new_labels: dict[str, str], old_labels: dict[str, str]) -> dict[str, Any]:
        req = request(
            _build_request(new_labels),
            kind="BuildRequest",
            group="remora.dev",
            version="v1alpha1",
            resource="buildrequests",
            operation="UPDATE",
            old=_build_request(old_labels),
        )
        return decide(req)

    assert update({}, {AGENT_LABEL: "agent-1"})["allowed"] is False
    assert update({}, {})["allowed"] is True


def test_objects_being_deleted_are_never_blocked() -> None:
    old = job(owner_ref())
    leaving = job()
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert decide(job_request(leaving, operation="UPDATE", old=old))["allowed"] is True


@pytest.mark.parametrize(
    ("refs", "expected"),
    [
        ("not-a-list", "must be a list"),
        (["x"], "must be an object"),
        ([owner_ref(uid=5)], "uid: must be a non-empty string"),
        ([owner_ref(controller="true")], "controller: must be a boolean"),
        ([owner_ref(name="../../secrets/x")], "not a valid object name"),
    ],
)
def test_malformed_owner_references_are_named(refs: Any, expected: str) -> None:
    obj = job()
    obj["metadata"]["ownerReferences"] = refs
    response = decide(job_request(obj))
    assert response["allowed"] is False and expected in message(response)


class _Unavailable(MemoryOwnerLookup):
    def uid(self, *args: Any) -> str | None:
        raise LookupUnavailable("connection refused")


def test_an_unreachable_api_fails_closed_with_a_reason() -> None:
    response = decide(job_request(job(owner_ref())), _Unavailable(served={"remora.dev": ["v1alpha1"]}))
    assert response["allowed"] is False and response["status"]["code"] == 503
    assert "connection refused" in message(response)


def test_without_api_access_owner_checks_fail_closed() -> None:
    bare = Validator(StaticNamespaces.of(Namespace("team")))
    _status, response = review(bare, job_request(job(owner_ref())))
    assert response["allowed"] is False and "no API access" in response["status"]["message"]


# --- the API-backed lookup, against a small local stand-in for the apiserver -----------------------


class _FakeApi(BaseHTTPRequestHandler):
    objects = {
        "/apis/remora.dev": {
            "kind": "APIGroup",
            "versions": [{"groupVersion": "remora.dev/v1alpha1", "version": "v1alpha1"}],
        },
        "/apis/remora.dev/v1alpha1/namespaces/team/buildrequests/build-1": {"metadata": {"uid": BR_UID}},
    }

    def do_GET(self) -> None:
        if self.path == "/apis/remora.dev/v1alpha1/namespaces/team/buildrequests/boom":
            self._answer(500, {"kind": "Status", "reason": "InternalError", "message": "etcd unhappy"})
        elif self.path in self.objects:
            self._answer(200, self.objects[self.path])
        else:
            self._answer(404, {"kind": "Status", "reason": "NotFound", "message": "not found"})

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[client.ApiClient]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApi)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    config = client.Configuration()
    config.host = f"http://127.0.0.1:{server.server_address[1]}"
    yield client.ApiClient(config)
    server.shutdown()


def test_api_lookup_reads_discovery_and_owners(api: client.ApiClient) -> None:
    owners = ApiOwnerLookup(api)
    assert owners.served_versions("remora.dev") == frozenset({"v1alpha1"})
    assert owners.served_versions("nothing.example") == frozenset()
    assert owners.uid("remora.dev", "v1alpha1", "buildrequests", "team", "build-1") == BR_UID
    assert owners.uid("remora.dev", "v1alpha1", "buildrequests", "team", "missing") is None
    with pytest.raises(LookupUnavailable, match="etcd unhappy"):
        owners.uid("remora.dev", "v1alpha1", "buildrequests", "team", "boom")


def test_api_lookup_through_the_validator(api: client.ApiClient) -> None:
    live = decide(job_request(job(owner_ref())), ApiOwnerLookup(api))
    assert live["allowed"] is True
    stale = decide(job_request(job(owner_ref(uid="stale"))), ApiOwnerLookup(api))
    assert stale["allowed"] is False and "stale reference" in message(stale)


def test_api_lookup_unreachable_is_lookup_unavailable() -> None:
    config = client.Configuration()
    config.host = "http://127.0.0.1:9"  # discard port: nothing listens
    with pytest.raises(LookupUnavailable):
        ApiOwnerLookup(client.ApiClient(config), timeout=1.0).served_versions("remora.dev")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=15,
)
reference_fields = st.fixed_dictionaries(
    {},
    optional={
        key: json_values for key in ("apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion")
    },
)


@settings(max_examples=150, deadline=None)
@given(
    ref=reference_fields, labels=json_values, operation=st.sampled_from(["CREATE", "UPDATE"]), old=json_values
)
def test_fuzzed_owner_references_never_crash(
    ref: dict[str, Any], labels: Any, operation: str, old: Any
) -> None:
    obj = job(ref)
    if isinstance(labels, dict):
        obj["metadata"]["labels"].update(labels)
    status, response = review(validator(), job_request(obj, operation=operation, old=old))
    assert status == 200
    assert response.get("status", {}).get("code") != 500, response
