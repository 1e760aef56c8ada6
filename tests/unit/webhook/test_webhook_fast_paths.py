"""The hot path's shortcuts give exactly what the general code gives.

inject() writes the patch of a first injection down directly (Injection.ops); it must equal
the general diff, patch(pod, mutated, INJECTION_SCOPE), operation for operation. The response
is assembled as bytes; it must equal the plain orjson encoding of the same AdmissionReview.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import jsonpatch
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_webhook_properties import CATALOG, NAMESPACE, SETTINGS, pods

from common.names import CAPABILITIES_ANNOTATION, STATUS_ANNOTATION
from webhook.admission import API_VERSION, KIND, encode_response
from webhook.mutate import TOKEN_VOLUME, inject, patch
from webhook.mutate.patch import INJECTION_SCOPE


@SETTINGS
@given(pods(), st.booleans())
def test_direct_ops_equal_the_general_diff(pod: dict[str, Any], native: bool) -> None:
    original = copy.deepcopy(pod)
    injection = inject(pod, CATALOG, NAMESPACE, native=native)
    if injection.ops is not None:
        assert injection.ops == patch(pod, injection.pod, INJECTION_SCOPE)
        assert jsonpatch.apply_patch(pod, injection.ops) == injection.pod
    assert pod == original


def agent(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "a", "annotations": {CAPABILITIES_ANNOTATION: "build,test"}},
        "spec": {"containers": [{"name": "agent", "image": "a"}], **spec},
    }


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"initContainers": []},
        {"initContainers": None},
        {"initContainers": [{"name": "setup", "image": "s"}]},
        {"volumes": [{"name": "w", "emptyDir": {}}], "automountServiceAccountToken": False},
        {"volumes": None, "automountServiceAccountToken": False},
        {"automountServiceAccountToken": False},
    ],
)
@pytest.mark.parametrize("native", [True, False])
def test_first_injections_take_the_direct_path(spec: dict[str, Any], native: bool) -> None:
    pod = agent(**spec)
    injection = inject(pod, CATALOG, NAMESPACE, native=native)
    assert injection.ops is not None
    assert injection.ops == patch(pod, injection.pod, INJECTION_SCOPE)
    assert jsonpatch.apply_patch(pod, injection.ops) == injection.pod


@pytest.mark.parametrize(
    "pod",
    [
        # injected before: the status annotation is there, the general diff decides
        {**agent(), "metadata": {"annotations": {CAPABILITIES_ANNOTATION: "build", STATUS_ANNOTATION: "{}"}}},
        # a token volume of the pod's own that differs from Remora's: replaced, not added
        agent(volumes=[{"name": TOKEN_VOLUME, "emptyDir": {}}], automountServiceAccountToken=False),
    ],
)
def test_other_injections_leave_the_patch_to_the_general_diff(pod: dict[str, Any]) -> None:
    injection = inject(pod, CATALOG, NAMESPACE)
    assert injection.ops is None
    assert jsonpatch.apply_patch(pod, patch(pod, injection.pod, INJECTION_SCOPE)) == injection.pod


def plain_encoding(uid: str, result: dict[str, Any]) -> bytes:
    """The AdmissionReview as one orjson.dumps of the whole, patch last, as before the byte assembly."""
    response = {"uid": uid, **result}
    ops = response.pop("patch", None)
    if ops:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(orjson.dumps(ops)).decode()
    return orjson.dumps({"apiVersion": API_VERSION, "kind": KIND, "response": response})


@pytest.mark.parametrize(
    "result",
    [
        {"allowed": True},
        {"allowed": True, "patch": []},
        {"allowed": True, "patch": [{"op": "add", "path": "/a", "value": {"b": ["ü", 1.5, None]}}]},
        {"allowed": True, "patch": [{"op": "remove", "path": "/x"}], "warnings": ['w "quoted"']},
        {"allowed": False, "status": {"code": 403, "reason": "Forbidden", "message": "no"}},
        {"allowed": True, "auditAnnotations": {"k": "v"}, "warnings": ["a", "b"]},
    ],
)
@pytest.mark.parametrize("uid", ["705ab4f5-6393-11e8-b7cc-42010a800002", 'odd "uid" \\ \u2028'])
def test_the_assembled_response_is_the_plain_encoding(uid: str, result: dict[str, Any]) -> None:
    assert encode_response(uid, result) == plain_encoding(uid, result)
