"""The Validator end to end through the admission envelope: modes, workloads, updates, bad input."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from validate_support import container, hardened_pod, privileged_pod, request, review, workload

from common.names import AUDIT_LABEL, ENFORCE_LABEL, WARN_LABEL
from webhook.namespaces import Namespace, StaticNamespaces
from webhook.validate.config import ValidationConfig
from webhook.validate.handler import Validator
from webhook.validate.policy import Exemptions, Levels, PolicyConfig

NAMESPACES = StaticNamespaces.of(
    Namespace("team", labels={ENFORCE_LABEL: "baseline", WARN_LABEL: "restricted", AUDIT_LABEL: "hardened"}),
    Namespace("strict", labels={ENFORCE_LABEL: "hardened"}),
    Namespace("open"),
    Namespace("typo", labels={ENFORCE_LABEL: "restriced"}),
)
VALIDATOR = Validator(NAMESPACES)


def _restricted_only_violation() -> dict[str, Any]:
    """Meets baseline, breaks restricted (and so hardened) in one field."""
    pod = hardened_pod()
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    return pod


def test_enforce_denies_with_upstream_message_and_one_cause_per_field() -> None:
    status, response = review(VALIDATOR, request(privileged_pod()))
    assert status == 200
    assert response["uid"] == "1d6f6c1e-0000-4000-8000-000000000001"
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert response["status"]["message"] == (
        'violates PodSecurity "baseline:latest": privileged '
        '(container "app" must not set securityContext.privileged=true)'
    )
    details = response["status"]["details"]
    assert details["kind"] == "pods" and details["name"] == "bad"
    assert details["causes"] == [
        {
            "type": "FieldValueForbidden",
            "field": "spec.containers[0].securityContext.privileged",
            "message": "must not be true",
        }
    ]


def test_warn_and_audit_modes_answer_without_denying() -> None:
    _status, response = review(VALIDATOR, request(_restricted_only_violation()))
    assert response["allowed"] is True
    assert response["warnings"] == [
        'would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
        '(container "app" must set securityContext.allowPrivilegeEscalation=false)'
    ]
    assert response["auditAnnotations"]["enforce-policy"] == "baseline:latest"
    assert response["auditAnnotations"]["audit-violations"].startswith(
        'would violate PodSecurity "hardened:latest"'
    )


def test_a_compliant_pod_is_allowed_quietly() -> None:
    _status, response = review(VALIDATOR, request(hardened_pod()))
    assert response["allowed"] is True and "warnings" not in response
    assert "audit-violations" not in response.get("auditAnnotations", {})


def test_unlabelled_namespace_uses_the_configured_defaults() -> None:
    assert review(VALIDATOR, request(privileged_pod(), namespace="open"))[1]["allowed"] is True
    strict = Validator(
        NAMESPACES, config=ValidationConfig(policy=PolicyConfig(defaults=Levels(enforce="baseline")))
    )
    assert review(strict, request(privileged_pod(), namespace="open"))[1]["allowed"] is False


def test_a_mistyped_level_label_fails_closed_to_restricted_and_says_so() -> None:
    _status, response = review(VALIDATOR, request(_restricted_only_violation(), namespace="typo"))
    assert response["allowed"] is False
    assert "restricted:latest" in response["status"]["message"]
    assert any("restriced" in warning for warning in response["warnings"])


def test_unknown_namespace_fails_closed() -> None:
    _status, response = review(VALIDATOR, request(hardened_pod(), namespace="nowhere"))
    assert response["allowed"] is False and response["status"]["code"] == 503
    assert "nowhere" in response["status"]["message"]


WORKLOADS = [
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
    "PodTemplate",
]


@pytest.mark.parametrize("kind", WORKLOADS)
def test_workload_templates_warn_by_default(kind: str) -> None:
    obj, group, resource = workload(kind, privileged_pod())
    _status, response = review(VALIDATOR, request(obj, kind=kind, group=group, resource=resource))
    assert response["allowed"] is True
    assert any(
        w.startswith(f"{kind} 'w' pod template: would violate PodSecurity \"baseline:latest\"")
        for w in response["warnings"]
    )


@pytest.mark.parametrize("kind", WORKLOADS)
def test_workload_templates_are_enforced_when_configured(kind: str) -> None:
    validator = Validator(NAMESPACES, config=ValidationConfig(policy=PolicyConfig(enforce_workloads=True)))
    obj, group, resource = workload(kind, privileged_pod())
    _status, response = review(validator, request(obj, kind=kind, group=group, resource=resource))
    assert response["allowed"] is False
    prefix = {"CronJob": "spec.jobTemplate.spec.template.", "PodTemplate": "template."}.get(
        kind, "spec.template."
    )
    assert (
        response["status"]["details"]["causes"][0]["field"]
        == f"{prefix}spec.containers[0].securityContext.privileged"
    )


def test_a_replication_controller_without_template_has_nothing_to_check() -> None:
    obj = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"}, "spec": {}}
    req = request(obj, kind="ReplicationController", resource="replicationcontrollers")
    assert review(VALIDATOR, req)[1]["allowed"] is True


def test_ephemeral_containers_subresource_is_checked() -> None:
    old = hardened_pod()
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = [
        {"name": "debugger", "image": "busybox", "securityContext": {"privileged": True}}
    ]
    _status, response = review(
        VALIDATOR, request(new, operation="UPDATE", old=old, subresource="ephemeralcontainers")
    )
    assert response["allowed"] is False
    assert response["status"]["details"]["causes"][0]["field"] == (
        "spec.ephemeralContainers[0].securityContext.privileged"
    )


def test_pod_updates_that_only_touch_metadata_or_images_are_not_reevaluated() -> None:
    old = privileged_pod()  # admitted before the namespace was labelled
    relabelled = copy.deepcopy(old)
    relabelled["metadata"]["labels"] = {"tier": "web"}
    relabelled["spec"]["containers"][0]["image"] = "registry.example/app:2"
    assert review(VALIDATOR, request(relabelled, operation="UPDATE", old=old))[1]["allowed"] is True
    changed = copy.deepcopy(old)
    changed["spec"]["containers"].append(container("second", privileged=True))
    assert review(VALIDATOR, request(changed, operation="UPDATE", old=old))[1]["allowed"] is False


def test_workload_updates_that_leave_the_template_alone_are_not_rejudged() -> None:
    validator = Validator(NAMESPACES, config=ValidationConfig(policy=PolicyConfig(enforce_workloads=True)))
    old, group, resource = workload("Deployment", privileged_pod())
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 5
    req = request(scaled, kind="Deployment", group=group, resource=resource, operation="UPDATE", old=old)
    assert review(validator, req)[1]["allowed"] is True
    changed = copy.deepcopy(old)
    changed["spec"]["template"]["spec"]["hostNetwork"] = True
    req = request(changed, kind="Deployment", group=group, resource=resource, operation="UPDATE", old=old)
    assert review(validator, req)[1]["allowed"] is False


@pytest.mark.parametrize(
    ("operation", "subresource"), [("DELETE", None), ("CONNECT", None), ("UPDATE", "status")]
)
def test_operations_and_subresources_that_are_not_policed(operation: str, subresource: str | None) -> None:
    req = request(privileged_pod(), operation=operation, old=privileged_pod(), subresource=subresource)
    assert review(VALIDATOR, req)[1]["allowed"] is True


@pytest.mark.parametrize(
    ("exemptions", "kwargs"),
    [
        (Exemptions(namespaces=frozenset({"team"})), {}),
        (Exemptions(usernames=frozenset({"ci-bot"})), {"username": "ci-bot"}),
        (Exemptions(runtime_classes=frozenset({"kata"})), {}),
    ],
)
def test_exemptions(exemptions: Exemptions, kwargs: dict[str, Any]) -> None:
    validator = Validator(NAMESPACES, config=ValidationConfig(policy=PolicyConfig(exemptions=exemptions)))
    pod = privileged_pod()
    pod["spec"]["runtimeClassName"] = "kata"
    _status, response = review(validator, request(pod, **kwargs))
    assert response["allowed"] is True and response["auditAnnotations"]["exempt"]
    # the same pod without the exemption is denied
    assert review(VALIDATOR, request(pod))[1]["allowed"] is False


def test_dry_run_answers_the_same_and_touches_nothing() -> None:
    req = request(privileged_pod())
    req["dryRun"] = True
    assert review(VALIDATOR, req)[1]["allowed"] is False


# --- bad input: a clear 400 or a denial naming the problem, never a 500 -------------------------


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: r.update(object="a string"), "request.object must be the Pod"),
        (lambda r: r.pop("object"), "request.object must be the Pod"),
        (lambda r: r.update(kind="Pod"), "request.kind must be an object"),
        (lambda r: r.update(kind={"group": 5, "kind": "Pod"}), "request.kind.group must be a string"),
        (lambda r: r.update(subResource=["x"]), "request.subResource must be a string"),
        (lambda r: r["object"].update(spec=[]), "spec must be an object"),
        (lambda r: r["object"]["spec"].update(containers={"name": "x"}), "spec.containers: must be an array"),
        (
            lambda r: r["object"]["spec"]["containers"][0]["securityContext"].update(privileged="true"),
            "spec.containers[0].securityContext.privileged: must be a boolean, got a string",
        ),
        (
            lambda r: r["object"]["spec"]["securityContext"].update(runAsUser=True),
            "spec.securityContext.runAsUser: must be an integer, got a boolean",
        ),
        (
            lambda r: r["object"]["metadata"].update(
                annotations={"container.apparmor.security.beta.kubernetes.io/app": 1}
            ),
            "metadata.annotations[container.apparmor.security.beta.kubernetes.io/app]: must be a string",
        ),
        (
            lambda r: r["object"]["spec"].update(volumes=[{"name": "v", "hostPath": "/etc"}]),
            "spec.volumes[0].hostPath: must be an object",
        ),
    ],
)
def test_malformed_objects_get_a_400_denial_naming_the_field(mutate: Any, expected: str) -> None:
    req = request(hardened_pod())
    mutate(req)
    status, response = review(VALIDATOR, req)
    assert status == 200
    assert response["allowed"] is False and response["status"]["code"] == 400
    assert expected in response["status"]["message"]


def test_a_broken_envelope_is_http_400() -> None:
    from webhook import admission

    answer = admission.review(b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', VALIDATOR)
    assert answer.status == 400


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=25,
)
pod_fields = st.sampled_from(
    [
        "containers",
        "initContainers",
        "ephemeralContainers",
        "securityContext",
        "volumes",
        "hostNetwork",
        "os",
        "hostUsers",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=pod_fields, value=json_values, kind=st.sampled_from(["Pod", "Deployment", "CronJob"]))
def test_fuzzed_pod_specs_never_crash_the_handler(field: str, value: Any, kind: str) -> None:
    pod = hardened_pod()
    pod["spec"][field] = value
    obj, group, resource = (pod, "", "pods") if kind == "Pod" else workload(kind, pod)
    status, response = review(VALIDATOR, request(obj, kind=kind, group=group, resource=resource))
    assert status == 200
    assert response.get("status", {}).get("code") != 500, response


@settings(max_examples=100, deadline=None)
@given(
    req=st.dictionaries(
        st.sampled_from(
            [
                "operation",
                "kind",
                "object",
                "oldObject",
                "namespace",
                "userInfo",
                "subResource",
                "resource",
                "name",
            ]
        ),
        json_values,
    )
)
def test_fuzzed_requests_never_crash_the_handler(req: dict[str, Any]) -> None:
    req["uid"] = "u"
    status, response = review(VALIDATOR, req)
    assert status == 200
    assert response.get("status", {}).get("code") != 500, response
