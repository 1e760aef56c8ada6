"""The validating webhook against a real control plane.

A `remora serve` subprocess answers /validate at https://127.0.0.1:PORT; a
ValidatingWebhookConfiguration (by URL, fail closed, matching only this test's namespace)
sends it pods, Deployments, Jobs and BuildRequests. Then: the namespace's enforce label denies a
privileged pod with the upstream message, a Deployment's bad template gets a kubectl warning, a
BuildRequest needs its agent label, a Job needs its one live controller reference, and deleting
the BuildRequest lets garbage collection remove the Job it caused.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from webhook_server import serving

from common.kube import ApiError, request
from common.names import (
    AGENT_LABEL,
    API_VERSION,
    ENFORCE_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    WARN_LABEL,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def validating(cluster: Any, kube: Any, kubectl: Any, namespace: str, tmp_path: Path) -> Iterator[str]:
    """`remora serve` plus a webhook configuration for `namespace` only; yields the namespace."""
    for crd in sorted((ROOT / "operators" / "crds").glob("*.yaml")):
        kubectl("apply", "-f", str(crd))
    kubectl("wait", "--for=condition=Established", "crd/buildrequests.remora.dev", "--timeout=60s")
    with serving(cluster, kube, tmp_path, lambda name, base, ca: _configuration(name, base, ca, namespace)):
        yield namespace


def _configuration(name: str, base: str, ca_bundle: str, namespace: str) -> dict[str, Any]:
    rules = [
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
         "resources": ["pods", "pods/ephemeralcontainers"]},
        {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
         "resources": ["deployments"]},
        {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
         "resources": ["jobs"]},
        {"apiGroups": ["remora.dev"], "apiVersions": ["v1alpha1"], "operations": ["CREATE", "UPDATE"],
         "resources": ["buildrequests"]},
    ]  # fmt: skip
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "validate.remora.dev",
                "clientConfig": {
                    "url": f"{base}/validate",
                    "caBundle": ca_bundle,
                },
                "rules": rules,
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 5,
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [namespace]}
                    ]
                },
            }
        ],
    }


def _pod(namespace: str, *, privileged: bool = False) -> dict[str, Any]:
    security: dict[str, Any] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    if privileged:
        security = {"privileged": True}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "p-", "namespace": namespace},
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {"name": "app", "image": "registry.k8s.io/pause:3.10", "securityContext": security}
            ],
        },
    }


def _label(kube: Any, namespace: str, labels: dict[str, str]) -> None:
    request(kube, "PATCH", f"/api/v1/namespaces/{namespace}", body={"metadata": {"labels": labels}},
            content_type="application/merge-patch+json")  # fmt: skip
    time.sleep(1.0)  # the webhook's namespace view follows through its watch


def test_enforce_denies_a_privileged_pod_and_admits_a_restricted_one(validating: str, kube: Any) -> None:
    _label(kube, validating, {ENFORCE_LABEL: "restricted"})
    with pytest.raises(ApiError) as denied:
        request(kube, "POST", f"/api/v1/namespaces/{validating}/pods", body=_pod(validating, privileged=True))
    assert 'violates PodSecurity "restricted:latest"' in denied.value.message
    assert "privileged" in denied.value.message
    created = request(kube, "POST", f"/api/v1/namespaces/{validating}/pods", body=_pod(validating))
    assert created["metadata"]["name"].startswith("p-")


def test_a_deployment_template_gets_a_kubectl_warning(validating: str, kube: Any, kubectl: Any) -> None:
    _label(kube, validating, {ENFORCE_LABEL: "baseline", WARN_LABEL: "restricted"})
    pod = _pod(validating, privileged=True)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": validating},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod["spec"]},
        },
    }
    result = kubectl("apply", "-f", "-", input=yaml.safe_dump(deployment))
    assert "Deployment 'web' pod template: would violate PodSecurity \"baseline:latest\"" in result.stderr


def _build_request(namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "BuildRequest",
        "metadata": {"name": "build-1", "namespace": namespace, "labels": labels},
        "spec": {"image": "registry.k8s.io/pause:3.10"},
    }


def _job(namespace: str, owner: dict[str, Any]) -> dict[str, Any]:
    pod = _pod(namespace)
    pod["spec"]["restartPolicy"] = "Never"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "generateName": "build-1-",
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE},
            "ownerReferences": [owner],
        },
        "spec": {"template": {"spec": pod["spec"]}},
    }


def test_ownership_rules_and_garbage_collection(validating: str, kube: Any) -> None:
    brs = f"/apis/remora.dev/v1alpha1/namespaces/{validating}/buildrequests"
    jobs = f"/apis/batch/v1/namespaces/{validating}/jobs"
    with pytest.raises(ApiError) as unlabelled:
        request(kube, "POST", brs, body=_build_request(validating, {}))
    assert AGENT_LABEL in unlabelled.value.message
    owner = request(kube, "POST", brs, body=_build_request(validating, {AGENT_LABEL: "agent-1"}))
    ref = {"apiVersion": API_VERSION, "kind": "BuildRequest", "name": "build-1",
           "uid": owner["metadata"]["uid"], "controller": True}  # fmt: skip

    with pytest.raises(ApiError) as stale:
        request(kube, "POST", jobs, body=_job(validating, {**ref, "uid": str(uuid.uuid4())}))
    assert "stale reference" in stale.value.message
    with pytest.raises(ApiError) as blocking:
        request(kube, "POST", jobs, body=_job(validating, {**ref, "blockOwnerDeletion": True}))
    assert "blockOwnerDeletion" in blocking.value.message

    job = request(kube, "POST", jobs, body=_job(validating, ref))
    name = job["metadata"]["name"]
    request(kube, "DELETE", f"{brs}/build-1")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            request(kube, "GET", f"{jobs}/{name}")
        except ApiError as exc:
            if exc.not_found:
                return
            raise
        time.sleep(0.5)
    raise AssertionError(f"job {name} outlived its BuildRequest")
