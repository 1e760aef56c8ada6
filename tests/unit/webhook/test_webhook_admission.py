"""The AdmissionReview envelope: good reviews answered with the UID, bad ones refused by name."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from webhook_support import UID, agent_pod, review, review_bytes

from common.jsonio import MAX_DEPTH
from webhook.admission import (
    BAD_REQUEST,
    DENIED,
    HANDLER_ERROR,
    PATCHED,
    allow,
    deny,
)
from webhook.admission import (
    review as answer_review,
)
from webhook.catalog import default_catalog
from webhook.mutate import Mutator
from webhook.namespaces import StaticNamespaces

MUTATOR = Mutator(default_catalog, StaticNamespaces())


def response_of(body: bytes) -> dict[str, Any]:
    answer = answer_review(body, MUTATOR)
    assert answer.status == 200, answer.body
    decoded = orjson.loads(answer.body)
    assert decoded["apiVersion"] == "admission.k8s.io/v1"
    assert decoded["kind"] == "AdmissionReview"
    return decoded["response"]


def error_of(body: bytes) -> str:
    answer = answer_review(body, MUTATOR)
    assert answer.status == 400
    assert answer.outcome == BAD_REQUEST
    message = orjson.loads(answer.body)["error"]
    assert "\n" not in message
    return message


def test_a_pod_review_gets_a_base64_json_patch_and_its_uid_back() -> None:
    response = response_of(review_bytes())
    assert response["uid"] == UID
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    ops = orjson.loads(base64.b64decode(response["patch"]))
    assert {op["op"] for op in ops} == {"add"}


def test_a_pod_without_capabilities_is_allowed_without_a_patch() -> None:
    response = response_of(review_bytes(agent_pod(capabilities=None)))
    assert response == {"uid": UID, "allowed": True}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{", "malformed JSON"),
        (b"", "malformed JSON"),
        (b"[1, 2]", "must be a JSON object, got array"),
        (b'"text"', "must be a JSON object, got string"),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": NaN}',
            "malformed JSON",
        ),
        (b'{"a": "\xff\xfe"}', "malformed JSON"),
        (b'{"a": "\\ud800"}', "malformed JSON"),
        (b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}', "apiVersion must be"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}', "kind must be 'AdmissionReview'"),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}',
            "request must be a JSON object, it is missing",
        ),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": []}', "it is a array"),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}',
            "request.uid must be",
        ),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 7}}', "got 7"),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": ""}}',
            "non-empty",
        ),
    ],
)
def test_an_unusable_envelope_is_a_400_naming_the_problem(body: bytes, fragment: str) -> None:
    assert fragment in error_of(body)


def test_nesting_deeper_than_the_cap_is_refused() -> None:
    deep = review()
    deep["request"]["object"]["metadata"]["annotations"]["x"] = "y"
    nested: Any = "leaf"
    for _ in range(MAX_DEPTH):
        nested = [nested]
    deep["request"]["object"]["spec"]["extra"] = nested
    assert f"nests deeper than {MAX_DEPTH}" in error_of(orjson.dumps(deep))


def test_a_body_over_three_mebibytes_is_refused() -> None:
    big = review()
    big["request"]["object"]["metadata"]["annotations"]["blob"] = "x" * (3 * 1024 * 1024)
    assert "over the limit of 3145728" in error_of(orjson.dumps(big))


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ({"group": "apps", "version": "v1", "kind": "Deployment"}, "got apps/v1 Deployment"),
        (None, "no request.kind"),
        ("Pod", "no request.kind"),
    ],
)
def test_a_kind_other_than_pod_is_denied_with_a_message(kind: Any, fragment: str) -> None:
    response = response_of(review_bytes(kind=kind))
    assert response["allowed"] is False
    assert response["status"]["code"] == 400
    assert "v1 Pods only" in response["status"]["message"]
    assert fragment in response["status"]["message"]


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ("a pod", "request.object must be the Pod"),
        ({"metadata": {}}, "request.object.spec must be an object, it is missing"),
        ({"spec": {"containers": "agent"}}, "request.object.spec.containers must be a list"),
        ({"spec": {"containers": [7]}}, "request.object.spec.containers[0] must be an object"),
        (
            {"spec": {"containers": [{"image": "x"}]}},
            "spec.containers[0].name must be a string, it is missing",
        ),
        ({"metadata": [], "spec": {"containers": []}}, "request.object.metadata must be an object"),
        (
            {"metadata": {"annotations": "x"}, "spec": {"containers": []}},
            "metadata.annotations must be an object",
        ),
    ],
)
def test_an_unreadable_pod_is_denied_naming_the_field(obj: Any, fragment: str) -> None:
    response = response_of(orjson.dumps(review(obj)))
    assert response["allowed"] is False
    assert fragment in response["status"]["message"]


def test_updates_and_subresources_pass_unchanged() -> None:
    assert response_of(review_bytes(operation="UPDATE")) == {"uid": UID, "allowed": True}
    assert response_of(review_bytes(subResource="ephemeralcontainers")) == {"uid": UID, "allowed": True}


def test_dry_run_is_answered_like_any_request_and_changes_nothing_outside_the_response() -> None:
    catalog_before = default_catalog()
    normal, dry = response_of(review_bytes()), response_of(review_bytes(dryRun=True))
    assert normal == dry
    assert default_catalog() is catalog_before


def test_a_handler_bug_is_a_denial_naming_it_not_a_crash() -> None:
    def broken(request: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("surprise")

    answer = answer_review(review_bytes(), broken)
    assert answer.status == 200
    assert (answer.outcome, answer.error_kind) == (DENIED, HANDLER_ERROR)
    response = orjson.loads(answer.body)["response"]
    assert response["allowed"] is False
    assert "KeyError" in response["status"]["message"]


def test_allow_and_deny_build_the_documented_fields() -> None:
    assert allow() == {"allowed": True}
    assert allow(
        patch=[{"op": "add", "path": "/a", "value": 1}], warnings=["w"], audit_annotations={"k": "v"}
    ) == {
        "allowed": True,
        "patch": [{"op": "add", "path": "/a", "value": 1}],
        "warnings": ["w"],
        "auditAnnotations": {"k": "v"},
    }
    assert deny("no", code=400, reason="BadRequest") == {
        "allowed": False,
        "status": {"code": 400, "reason": "BadRequest", "message": "no"},
    }
    assert answer_review(
        review_bytes(), lambda r: allow(patch=[{"op": "add", "path": "/x", "value": 1}])
    ).outcome == (PATCHED)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | json_values.map(orjson.dumps))
def test_any_body_gets_a_400_or_an_answer_never_an_exception(body: bytes) -> None:
    answer = answer_review(body, MUTATOR)
    assert answer.status in (200, 400)
    orjson.loads(answer.body)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_request_object_gets_an_answer_with_the_uid(obj: Any) -> None:
    answer = answer_review(orjson.dumps(review(obj)), MUTATOR)
    assert answer.status == 200
    assert orjson.loads(answer.body)["response"]["uid"] == UID
    assert answer.error_kind is None  # handled by the mutator, not by the last-resort catch
