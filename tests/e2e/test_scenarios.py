"""The end-to-end scenarios of issue 8, as a user meets them.

One stack for the module (remora_stack.RemoraStack): the chart installed by `helm install` in
URL mode, `remora certs bootstrap`, and `remora serve` on 127.0.0.1. Each test makes its own
namespaces with `kubectl apply` and drives pods with `kubectl`, asserting on what kubectl
prints and on what the apiserver stored: injection and its three ways of not happening, an
unknown capability denied, the enforce/warn/audit levels (audit through the apiserver's audit
log), a server-side dry run that stores nothing, and the chart's failure policies while the
webhook is down. The webhook-down test runs last: it stops and restarts the shared server.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from remora_stack import RemoraStack, Tool, hardened_pod, wait_for, wait_for_default_serviceaccount

from common.kube import load_api_client
from common.names import (
    ALLOWED_CAPABILITIES_ANNOTATION,
    AUDIT_LABEL,
    ENFORCE_LABEL,
    INJECT_LABEL,
    INJECTION_LABEL,
    STATUS_ANNOTATION,
    WARN_LABEL,
)
from webhook.catalog.catalog import parse_catalog

INJECTED = {INJECTION_LABEL: "enabled"}
MakeNamespace = Callable[..., str]


@pytest.fixture(scope="module")
def stack(cluster: Any, helm: Tool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoraStack]:
    # The audit scenario reads the apiserver's audit log; turning it on restarts the
    # apiserver once, so it happens before anything else of this module runs.
    cluster.enable_audit_log()
    api = load_api_client(str(cluster.kubeconfig))
    remora = RemoraStack(cluster, api, helm, tmp_path_factory.mktemp("remora-stack"), "remora-scenarios")
    try:
        remora.start()
        yield remora
    finally:
        remora.close()
        api.close()


@pytest.fixture(autouse=True)
def _server_log_on_failure(stack: RemoraStack) -> Iterator[None]:
    yield
    print(f"--- remora serve log (tail)\n{stack.log_tail()}")  # shown only for a failed test


@pytest.fixture
def make_namespace(
    kube: Any, kubectl: Tool, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[MakeNamespace]:
    """`kubectl apply` a Namespace with these labels and annotations; deleted after the test."""
    made: list[str] = []
    base = request.node.name.removeprefix("test_").replace("_", "-")[:30].strip("-")

    def make(labels: dict[str, str], annotations: dict[str, str] | None = None) -> str:
        name = f"sc-{base}-{uuid.uuid4().hex[:5]}"
        manifest = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": labels, "annotations": annotations or {}},
        }
        kubectl("apply", "-f", manifest_file(tmp_path, manifest))
        made.append(name)
        wait_for_default_serviceaccount(kube, name)
        return name

    yield make
    for name in made:
        kubectl("delete", "namespace", name, "--wait=false", check=False)


def manifest_file(folder: Path, manifest: dict[str, Any]) -> str:
    path = folder / f"{manifest['kind'].lower()}-{manifest['metadata']['name']}-{uuid.uuid4().hex[:4]}.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return str(path)


def get_pod(kubectl: Tool, namespace: str, name: str) -> dict[str, Any]:
    pod: dict[str, Any] = json.loads(kubectl("get", "pod", name, "-n", namespace, "-o", "json").stdout)
    return pod


def pod_names(kubectl: Tool, namespace: str) -> list[str]:
    return kubectl("get", "pods", "-n", namespace, "-o", "name").stdout.split()


def native_sidecars(pod: dict[str, Any]) -> list[str]:
    return [c["name"] for c in pod["spec"].get("initContainers") or [] if c.get("restartPolicy") == "Always"]


def assert_not_injected(pod: dict[str, Any]) -> None:
    assert pod["spec"].get("initContainers") in (None, []), pod["spec"].get("initContainers")
    assert [c["name"] for c in pod["spec"]["containers"]] == ["agent"]
    assert STATUS_ANNOTATION not in (pod["metadata"].get("annotations") or {})


def apply_pod(kubectl: Tool, tmp_path: Path, namespace: str, pod: dict[str, Any]) -> str:
    """`kubectl apply -f` the pod; returns what kubectl printed (stdout)."""
    out = kubectl("apply", "-n", namespace, "-f", manifest_file(tmp_path, pod))
    return out.stdout.strip()


def root_pod(name: str) -> dict[str, Any]:
    """A pod meeting baseline but not restricted: no securityContext at all."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "agent", "image": "registry.k8s.io/pause:3.10"}]},
    }


# -- 1-4: injection, and the three ways of not injecting


def test_an_annotated_pod_in_a_labelled_namespace_gets_native_sidecars(
    stack: RemoraStack, kubectl: Tool, make_namespace: MakeNamespace, tmp_path: Path
) -> None:
    namespace = make_namespace(INJECTED)
    assert apply_pod(kubectl, tmp_path, namespace, hardened_pod("agent", "build,test")) == "pod/agent created"
    pod = get_pod(kubectl, namespace, "agent")
    assert native_sidecars(pod) == ["remora-build", "remora-test"]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["agent"]
    status = json.loads(pod["metadata"]["annotations"][STATUS_ANNOTATION])
    assert status["capabilities"] == ["build", "test"]
    assert status["version"]
    # The sidecars come from the catalog the chart installed, not from a built-in default.
    configmap = kubectl("get", "configmap", "remora-capabilities", "-n", stack.namespace, "-o", "json").stdout
    chart_catalog = parse_catalog(json.loads(configmap)["data"]["catalog.yaml"], "the chart's ConfigMap")
    assert status["catalogHash"] == chart_catalog.hash
    assert pod["spec"]["initContainers"][0]["image"] == chart_catalog.capabilities["build"].image


def test_no_injection_without_the_namespace_label(
    stack: RemoraStack, kubectl: Tool, make_namespace: MakeNamespace, tmp_path: Path
) -> None:
    namespace = make_namespace({})
    assert apply_pod(kubectl, tmp_path, namespace, hardened_pod("agent", "build")) == "pod/agent created"
    assert_not_injected(get_pod(kubectl, namespace, "agent"))


def test_no_injection_for_a_pod_that_opts_out(
    stack: RemoraStack, kubectl: Tool, make_namespace: MakeNamespace, tmp_path: Path
) -> None:
    namespace = make_namespace(INJECTED)
    pod = hardened_pod("agent", "build", **{INJECT_LABEL: "false"})
    assert apply_pod(kubectl, tmp_path, namespace, pod) == "pod/agent created"
    assert_not_injected(get_pod(kubectl, namespace, "agent"))


def test_no_injection_without_the_capabilities_annotation(
    stack: RemoraStack, kubectl: Tool, make_namespace: MakeNamespace, tmp_path: Path
) -> None:
    namespace = make_namespace(INJECTED)
    assert apply_pod(kubectl, tmp_path, namespace, hardened_pod("agent", None)) == "pod/agent created"
    assert_not_injected(get_pod(kubectl, namespace, "agent"))


# -- 5: denials kubectl shows


def test_an_unknown_capability_is_denied_naming_what_is_offered(
    stack: RemoraStack, kubectl: Tool, make_namespace: MakeNamespace, tmp_path: Path
) -> None:
    namespace = make_namespace(INJECTED)
    pod = manifest_file(tmp_path, hardened_pod("agent", "build,teleport"))
    denied = kubectl("apply", "-n", namespace, "-f", pod, check=False)
    assert denied.returncode != 0
    assert 'admission webhook "inject.remora.dev" denied the request' in denied.stderr, denied.stderr
    assert "unknown capability 'teleport' in remora.dev/capabilities" in denied.stderr
    assert "the catalog offers: build, migrate, test" in denied.stderr
    assert pod_names(kubectl, namespace) == []


def test_a_capability_the_namespace_does_not_allow_is_denied_naming_what_is_allowed(
    stack: RemoraStack, kubectl: Tool, make_namespace: MakeNamespace, tmp_path: Path
) -> None:
    namespace = make_namespace(INJECTED, {ALLOWED_CAPABILITIES_ANNOTATION: "build,test"})
    pod = manifest_file(tmp_path, hardened_pod("agent", "build,migrate"))
    denied = kubectl("apply", "-n", namespace, "-f", pod, check=False)
    assert denied.returncode != 0
    assert f"capability 'migrate' not allowed in namespace {namespace}" in denied.stderr, denied.stderr
    assert "allowed: build, test" in denied.stderr
    assert pod_names(kubectl, namespace) == []


# -- 6: enforce, warn, audit


def test_enforce_refuses_the_pod_with_the_pod_security_message(
    stack: RemoraStack, cluster: Any, kubectl: Tool, make_namespace: MakeNamespace, tmp_path: Path
) -> None:
    namespace = make_namespace({ENFORCE_LABEL: "restricted"})
    refused = kubectl("apply", "-n", namespace, "-f", manifest_file(tmp_path, root_pod("root")), check=False)
    assert refused.returncode != 0
    assert refused.stderr.startswith('Error from server (Forbidden): error when creating "'), refused.stderr
    # Upstream PodSecurity's words, behind the prefix the apiserver gives every webhook denial.
    assert (
        'admission webhook "pods.enforce.validate.remora.dev" denied the request: '
        'violates PodSecurity "restricted:latest": '
    ) in refused.stderr, refused.stderr
    assert 'allowPrivilegeEscalation != false (container "agent"' in refused.stderr
    assert "runAsNonRoot != true" in refused.stderr
    assert pod_names(kubectl, namespace) == []
    # A pod that meets the level goes through; its audit event names the level, as PodSecurity's does.
    assert apply_pod(kubectl, tmp_path, namespace, hardened_pod("good", None)) == "pod/good created"
    annotations = audit_annotations(cluster.audit_log_path, namespace, "good")
    assert annotations.get("pods.enforce.validate.remora.dev/enforce-policy") == "restricted:latest", (
        annotations
    )


def test_warn_prints_a_kubectl_warning_and_creates_the_pod(
    stack: RemoraStack, kubectl: Tool, make_namespace: MakeNamespace, tmp_path: Path
) -> None:
    namespace = make_namespace({WARN_LABEL: "restricted"})
    applied = kubectl("apply", "-n", namespace, "-f", manifest_file(tmp_path, root_pod("root")))
    assert applied.stdout.strip() == "pod/root created"
    assert 'Warning: would violate PodSecurity "restricted:latest": ' in applied.stderr, applied.stderr
    assert 'allowPrivilegeEscalation != false (container "agent"' in applied.stderr
    assert pod_names(kubectl, namespace) == ["pod/root"]


def test_audit_creates_the_pod_and_annotates_the_audit_event(
    stack: RemoraStack, cluster: Any, kubectl: Tool, make_namespace: MakeNamespace, tmp_path: Path
) -> None:
    namespace = make_namespace({AUDIT_LABEL: "restricted"})
    applied = kubectl("apply", "-n", namespace, "-f", manifest_file(tmp_path, root_pod("root")))
    assert applied.stdout.strip() == "pod/root created"
    assert "Warning" not in applied.stderr, applied.stderr  # audit is silent to the user
    annotations = audit_annotations(cluster.audit_log_path, namespace, "root")
    # The apiserver prefixes each webhook audit annotation with the webhook's name.
    key = "pods.audit.validate.remora.dev/audit-violations"
    assert key in annotations, annotations
    assert annotations[key].startswith('would violate PodSecurity "restricted:latest": '), annotations[key]
    assert "runAsNonRoot != true" in annotations[key]


def audit_annotations(log: Path, namespace: str, name: str, timeout: float = 15.0) -> dict[str, str]:
    """The annotations of the audit event for creating pod namespace/name (ResponseComplete)."""
    found: dict[str, str] = {}

    def read() -> bool:
        for line in log.read_text(errors="replace").splitlines():
            if namespace not in line:
                continue
            event = json.loads(line)
            ref = event.get("objectRef") or {}
            if (
                event.get("verb") == "create"
                and event.get("stage") == "ResponseComplete"
                and ref.get("resource") == "pods"
                and ref.get("namespace") == namespace
                and ref.get("name") == name
            ):
                found.update(event.get("annotations") or {})
                return True
        return False

    wait_for(read, timeout, f"the audit event for creating pod {namespace}/{name} in {log}")
    return found


# -- 7: dry run


def test_a_server_side_dry_run_shows_the_injected_pod_and_stores_nothing(
    stack: RemoraStack, kubectl: Tool, make_namespace: MakeNamespace, tmp_path: Path
) -> None:
    namespace = make_namespace(INJECTED)
    pod = manifest_file(tmp_path, hardened_pod("agent", "build"))
    said = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", pod)
    assert said.stdout.strip() == "pod/agent created (server dry run)"
    shown = json.loads(kubectl("apply", "--dry-run=server", "-n", namespace, "-f", pod, "-o", "json").stdout)
    assert native_sidecars(shown) == ["remora-build"]
    assert STATUS_ANNOTATION in shown["metadata"]["annotations"]
    # Nothing stored: no pod, no events, and applying for real creates (not configures) it.
    assert pod_names(kubectl, namespace) == []
    events = kubectl("get", "events", "-n", namespace, "-o", "name").stdout.split()
    assert events == [], events
    missing = kubectl("get", "pod", "agent", "-n", namespace, check=False)
    assert missing.returncode != 0 and '"agent" not found' in missing.stderr
    assert kubectl("apply", "-n", namespace, "-f", pod).stdout.strip() == "pod/agent created"


# -- 8: the webhook down (last: it stops and restarts the shared server)


def test_with_the_webhook_down_the_chart_failure_policies_hold_and_injection_resumes(
    stack: RemoraStack, kubectl: Tool, make_namespace: MakeNamespace, tmp_path: Path
) -> None:
    labelled = make_namespace(INJECTED)
    plain = make_namespace({})

    def apply(namespace: str, name: str) -> subprocess.CompletedProcess[str]:
        pod = manifest_file(tmp_path, hardened_pod(name, "build"))
        return kubectl("apply", "-n", namespace, "-f", pod, check=False)

    stack.stop_server()
    try:
        # failurePolicy Fail (the chart's default): refused, and kubectl says why.
        refused = apply(labelled, "refused")
        assert refused.returncode != 0
        assert 'failed calling webhook "inject.remora.dev"' in refused.stderr, refused.stderr
        assert f"{stack.url}/mutate" in refused.stderr and "connection refused" in refused.stderr
        assert pod_names(kubectl, labelled) == []
        # Namespaces without the label never reach the webhook.
        assert apply(plain, "plain-1").returncode == 0
        assert_not_injected(get_pod(kubectl, plain, "plain-1"))

        # Ignore for the injector only: the validating webhooks still fail closed (chart default).
        stack.upgrade("--set", "webhook.failurePolicy.mutating=Ignore")
        policy = kubectl(
            "get",
            "mutatingwebhookconfiguration",
            stack.fullname,
            "-o",
            "jsonpath={.webhooks[0].failurePolicy}",
        )
        assert policy.stdout == "Ignore"
        wait_for(
            lambda: (
                'failed calling webhook "pods.injected.validate.remora.dev"' in apply(labelled, "x").stderr
            ),
            15,
            "the apiserver to ignore the injector and fail on the validating webhook",
        )
        # Ignore for both: the pod is created, without sidecars.
        stack.upgrade(
            "--set",
            "webhook.failurePolicy.mutating=Ignore",
            "--set",
            "webhook.failurePolicy.validating=Ignore",
        )
        wait_for(
            lambda: apply(labelled, "bare").returncode == 0, 15, "the pod to be admitted without the webhook"
        )
        assert_not_injected(get_pod(kubectl, labelled, "bare"))
        assert apply(plain, "plain-2").returncode == 0
        assert_not_injected(get_pod(kubectl, plain, "plain-2"))
    finally:
        stack.upgrade()  # back to the chart's defaults
        stack.start_server()

    # The webhook is back: injection resumes (the upgrades kept the caBundle).
    stack.wait_injecting()
    assert apply(labelled, "again").returncode == 0
    assert native_sidecars(get_pod(kubectl, labelled, "again")) == ["remora-build"]
