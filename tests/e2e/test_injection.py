"""The injecting webhook against a real control plane.

A `remora serve` subprocess (watching namespaces through the API) answers /mutate at
https://127.0.0.1:PORT; a MutatingWebhookConfiguration (by URL, reinvocationPolicy IfNeeded,
the remora.dev/injection=enabled namespace selector) sends it pod creations. Then: an agent pod
is stored with native sidecars and the status annotation (the apiserver's defaulting and
reinvocation change nothing more), a dry run returns the injected pod and stores nothing, a
Deployment's pods get sidecars, a capability the namespace does not allow is denied with the
list of allowed ones, and the opt-out label is honoured.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from webhook_server import serving

from common.kube import ApiError, request
from common.names import (
    ALLOWED_CAPABILITIES_ANNOTATION,
    CAPABILITIES_ANNOTATION,
    INJECT_LABEL,
    INJECTION_LABEL,
    STATUS_ANNOTATION,
)


@pytest.fixture
def injecting(cluster: Any, kube: Any, namespace: str, tmp_path: Path) -> Iterator[str]:
    """`remora serve` plus a mutating webhook configuration; yields the labelled namespace."""
    with injecting_in(cluster, kube, namespace, tmp_path):
        yield namespace


@contextlib.contextmanager
def injecting_in(cluster: Any, kube: Any, namespace: str, tmp_path: Path, *extra: str) -> Iterator[None]:
    """Label `namespace` for injection (build and test allowed) and serve /mutate for it."""
    request(
        kube,
        "PATCH",
        f"/api/v1/namespaces/{namespace}",
        body={
            "metadata": {
                "labels": {INJECTION_LABEL: "enabled"},
                "annotations": {ALLOWED_CAPABILITIES_ANNOTATION: "build,test"},
            }
        },
        content_type="application/merge-patch+json",
    )
    with serving(
        cluster, kube, tmp_path, lambda name, base, ca: configuration(name, base, ca, namespace), *extra
    ):
        yield


def configuration(name: str, base: str, ca_bundle: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "inject.remora.dev",
                "clientConfig": {
                    "url": f"{base}/mutate",
                    "caBundle": ca_bundle,
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ],
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "reinvocationPolicy": "IfNeeded",
                "timeoutSeconds": 5,
                "namespaceSelector": {
                    "matchLabels": {INJECTION_LABEL: "enabled", "kubernetes.io/metadata.name": namespace}
                },
            }
        ],
    }


def agent_pod(name: str, capabilities: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels, "annotations": {CAPABILITIES_ANNOTATION: capabilities}},
        "spec": {
            "automountServiceAccountToken": False,
            "initContainers": [{"name": "setup", "image": "busybox:1.36", "command": ["true"]}],
            "containers": [{"name": "agent", "image": "registry.example/agent:1.4"}],
        },
    }


def names(containers: list[dict[str, Any]] | None) -> list[str]:
    return [c["name"] for c in containers or []]


def test_an_agent_pod_is_stored_with_its_sidecars(kube: Any, injecting: str) -> None:
    created = request(
        kube, "POST", f"/api/v1/namespaces/{injecting}/pods", body=agent_pod("agent", "build,test")
    )
    spec = created["spec"]
    assert names(spec["initContainers"]) == ["remora-build", "remora-test", "setup"]
    assert names(spec["containers"]) == ["agent"]
    assert all(c["restartPolicy"] == "Always" for c in spec["initContainers"][:2])
    assert "remora-serviceaccount" in names(spec["volumes"])
    status = json.loads(created["metadata"]["annotations"][STATUS_ANNOTATION])
    assert status["capabilities"] == ["build", "test"]
    # After the apiserver defaulted the sidecars, injecting again changes nothing.
    from webhook.catalog import default_catalog
    from webhook.mutate import inject
    from webhook.namespaces import Namespace

    ns = Namespace(injecting, {INJECTION_LABEL: "enabled"}, {ALLOWED_CAPABILITIES_ANNOTATION: "build,test"})
    again = inject(created, default_catalog(), ns)
    assert again.pod is created
    assert again.warnings == []


def test_a_dry_run_returns_the_injected_pod_and_stores_nothing(kube: Any, injecting: str) -> None:
    answer = request(
        kube,
        "POST",
        f"/api/v1/namespaces/{injecting}/pods",
        body=agent_pod("dry", "build"),
        query={"dryRun": "All"},
    )
    assert names(answer["spec"]["initContainers"]) == ["remora-build", "setup"]
    with pytest.raises(ApiError) as caught:
        request(kube, "GET", f"/api/v1/namespaces/{injecting}/pods/dry")
    assert caught.value.not_found


def test_a_capability_the_namespace_does_not_allow_is_denied(kube: Any, injecting: str) -> None:
    with pytest.raises(ApiError) as caught:
        request(
            kube, "POST", f"/api/v1/namespaces/{injecting}/pods", body=agent_pod("greedy", "build,migrate")
        )
    assert caught.value.status == 403
    assert "capability 'migrate' not allowed" in caught.value.message
    assert "allowed: build, test" in caught.value.message


def test_the_opt_out_label_is_honoured(kube: Any, injecting: str) -> None:
    pod = agent_pod("plain", "build", **{INJECT_LABEL: "false"})
    created = request(kube, "POST", f"/api/v1/namespaces/{injecting}/pods", body=pod)
    assert names(created["spec"]["initContainers"]) == ["setup"]
    assert STATUS_ANNOTATION not in created["metadata"].get("annotations", {})


def test_a_deployments_pods_get_sidecars(kube: Any, injecting: str) -> None:
    template = agent_pod("ignored", "test")
    template["metadata"] = {"labels": {"app": "agent"}, "annotations": template["metadata"]["annotations"]}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "agents"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "agent"}}, "template": template},
    }
    request(kube, "POST", f"/apis/apps/v1/namespaces/{injecting}/deployments", body=deployment)
    deadline = time.monotonic() + 60
    while True:
        pods = request(
            kube, "GET", f"/api/v1/namespaces/{injecting}/pods", query={"labelSelector": "app=agent"}
        )
        if pods["items"]:
            break
        assert time.monotonic() < deadline, "the Deployment made no pod"
        time.sleep(0.5)
    assert names(pods["items"][0]["spec"]["initContainers"]) == ["remora-test", "setup"]


def catalog_configmap(image: str) -> dict[str, Any]:
    catalog = {
        "apiVersion": "remora.dev/v1alpha1",
        "kind": "CapabilityCatalog",
        "capabilities": {
            "build": {
                "kind": "BuildRequest",
                "image": image,
                "command": ["remora", "operator", "build"],
                "resources": {"limits": {"memory": "128Mi"}},
            }
        },
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "remora-capabilities"},
        "data": {"catalog.yaml": json.dumps(catalog)},
    }


def test_the_catalog_configmap_is_followed_and_a_bad_edit_is_refused(
    cluster: Any, kube: Any, namespace: str, tmp_path: Path
) -> None:
    configmaps = f"/api/v1/namespaces/{namespace}/configmaps"
    request(kube, "POST", configmaps, body=catalog_configmap("registry.example/operator:1"))
    source = f"{namespace}/remora-capabilities"
    with injecting_in(cluster, kube, namespace, tmp_path, "--catalog-configmap", source):

        def sidecar_image(pod_name: str) -> str:
            pod = request(
                kube, "POST", f"/api/v1/namespaces/{namespace}/pods", body=agent_pod(pod_name, "build")
            )
            return str(pod["spec"]["initContainers"][0]["image"])

        assert sidecar_image("a1") == "registry.example/operator:1"
        broken = catalog_configmap("registry.example/operator:2")
        broken["data"]["catalog.yaml"] = "capabilities: ["
        request(kube, "PUT", f"{configmaps}/remora-capabilities", body=broken)
        time.sleep(1.5)
        assert sidecar_image("a2") == "registry.example/operator:1"  # the last good catalog stays
        request(
            kube,
            "PUT",
            f"{configmaps}/remora-capabilities",
            body=catalog_configmap("registry.example/operator:3"),
        )
        deadline = time.monotonic() + 15
        index = 3
        while sidecar_image(f"a{index}") != "registry.example/operator:3":
            assert time.monotonic() < deadline, "the ConfigMap change was not picked up"
            index += 1
            time.sleep(0.3)
