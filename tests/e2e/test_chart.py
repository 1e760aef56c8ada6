"""The chart against a real control plane, in URL mode.

helm installs the chart with the webhooks pointing at https://127.0.0.1:PORT, where a
`remora serve` subprocess answers; `remora certs bootstrap` and then `remora certs run`
(the rotation, with lifetimes of seconds) keep its certificate and the caBundle valid.
Then: a pod is injected; `helm upgrade` never leaves a webhook without a caBundle;
pods are created without pause while the serving certificate and the CA rotate, and
not one admission fails; `helm uninstall` leaves nothing of Remora behind.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.kube import ApiError, request, stream
from common.names import CAPABILITIES_ANNOTATION, STATUS_ANNOTATION

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "remora"
REG = "/apis/admissionregistration.k8s.io/v1"
# Short lifetimes so a whole CA rotation happens while the test watches: the CA is
# renewed about 19s after it is issued, each step waits 2s for propagation.
LIFETIMES = ["--ca-lifetime=30s", "--serving-lifetime=15s", "--propagation=2s"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A `remora` subprocess whose output goes to a log file (shown when the test fails)."""

    def __init__(self, name: str, args: list[str], log_dir: Path, env: dict[str, str]) -> None:
        self.log = log_dir / f"{name}.log"
        self.handle = self.log.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "remora", *args], stdout=self.handle, stderr=subprocess.STDOUT, env=env
        )

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.handle.close()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def hardened_pod(namespace: str, capability: str | None = "build") -> dict[str, Any]:
    annotations = {CAPABILITIES_ANNOTATION: capability} if capability else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "agent-", "namespace": namespace, "annotations": annotations},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "agent",
                    "image": "registry.k8s.io/pause:3.10",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "runAsNonRoot": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {"limits": {"memory": "16Mi"}},
                }
            ],
        },
    }


def ca_bundles(kube: Any, name: str) -> list[str | None]:
    out: list[str | None] = []
    for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        obj = request(kube, "GET", f"{REG}/{kind}/{name}")
        out += [(h.get("clientConfig") or {}).get("caBundle") for h in obj["webhooks"]]
    return out


class BundleWatch:
    """Records every caBundle set the webhook configurations go through (watch events)."""

    def __init__(self, kube: Any, name: str) -> None:
        self.kube = kube
        self.name = name
        self.seen: list[tuple[str, list[str | None]]] = []
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.threads = [
            threading.Thread(target=self._watch, args=(kind,), daemon=True)
            for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")
        ]
        for t in self.threads:
            t.start()

    def _watch(self, kind: str) -> None:
        query: dict[str, str | int | bool] = {"watch": True, "fieldSelector": f"metadata.name={self.name}"}
        while not self.stop.is_set():
            try:
                for event in stream(
                    self.kube, f"{REG}/{kind}", {**query, "timeoutSeconds": 5}, read_timeout=10
                ):
                    obj = event.get("object") or {}
                    hooks = obj.get("webhooks") or []
                    self.seen.append(
                        (
                            f"{kind} {event.get('type')}",
                            [(h.get("clientConfig") or {}).get("caBundle") for h in hooks],
                        )
                    )
                    if self.stop.is_set():
                        return
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.2)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(15)


@pytest.fixture
def release_ns(kube: Any) -> Iterator[str]:
    name = f"remora-e2e-{uuid.uuid4().hex[:6]}"
    request(kube, "POST", "/api/v1/namespaces", body={"metadata": {"name": name}})
    yield name
    with contextlib.suppress(ApiError):
        request(kube, "DELETE", f"/api/v1/namespaces/{name}")


def test_chart_install_inject_upgrade_rotate_uninstall(  # noqa: PLR0917 (pytest fixtures)
    cluster: Any, kube: Any, helm: Any, namespace: str, release_ns: str, tmp_path: Path
) -> None:
    release = "remora"
    port = _free_port()
    url = f"https://127.0.0.1:{port}"
    env = {**os.environ, **cluster.env(), "KUBECONFIG": str(cluster.kubeconfig)}
    kc = f"--kubeconfig={cluster.kubeconfig}"
    cert_dir = tmp_path / "certs"
    procs: list[Proc] = []
    watch: BundleWatch | None = None
    base_values = [
        "--set",
        f"webhook.url={url}",
        "--set",
        "certs.extraSANs={127.0.0.1}",
        "--set",
        "replicaCount=1",
    ]
    try:
        # -- install: the configurations come without a caBundle; bootstrap writes it.
        helm("install", release, str(CHART), "-n", release_ns, *base_values)
        assert set(ca_bundles(kube, release)) == {None}
        boot = subprocess.run(
            [sys.executable, "-m", "remora", "certs", "bootstrap", kc, f"--namespace={release_ns}",
             "--service=remora-webhook", "--extra-san=127.0.0.1", f"--webhook-config={release}",
             f"--cert-dir={cert_dir}", *LIFETIMES],
            capture_output=True, text=True, env=env, check=False, timeout=60,
        )  # fmt: skip
        assert boot.returncode == 0, boot.stderr
        first_bundle = ca_bundles(kube, release)
        assert None not in first_bundle and len(set(first_bundle)) == 1
        procs.append(
            Proc(
                "certs",
                [
                    "certs",
                    "run",
                    kc,
                    f"--namespace={release_ns}",
                    "--service=remora-webhook",
                    "--extra-san=127.0.0.1",
                    f"--webhook-config={release}",
                    f"--cert-dir={cert_dir}",
                    "--poll=1s",
                    "--identity=e2e",
                    *LIFETIMES,
                ],
                tmp_path,
                env,
            )
        )
        procs.append(
            Proc(
                "serve",
                [
                    "serve",
                    kc,
                    f"--port={port}",
                    "--host=127.0.0.1",
                    f"--tls-cert={cert_dir / 'tls.crt'}",
                    f"--tls-key={cert_dir / 'tls.key'}",
                    f"--catalog-configmap={release_ns}/remora-capabilities",
                    "--reload-seconds=0.2",
                ],
                tmp_path,
                env,
            )
        )

        # -- enable a namespace, and a pod is injected.
        enable = subprocess.run(
            [sys.executable, "-m", "remora", "enable-namespace", namespace, "--capabilities=build,test", kc],
            capture_output=True, text=True, env=env, check=False, timeout=60,
        )  # fmt: skip
        assert enable.returncode == 0, enable.stderr
        created = _create_pod_eventually(kube, namespace, timeout=60)
        assert STATUS_ANNOTATION in created["metadata"]["annotations"], created["metadata"]
        assert len(created["spec"].get("initContainers", []) + created["spec"]["containers"]) >= 2

        # -- the `helm test` check, run here as a process (no kubelet runs its pod).
        _run_helm_test_script(helm, kube, release_ns, env)

        # -- helm upgrade keeps the caBundle: no version of the configurations lacks it.
        watch = BundleWatch(kube, release)
        time.sleep(1)
        helm(
            "upgrade", release, str(CHART), "-n", release_ns, *base_values, "--set", "webhook.logLevel=debug"
        )
        live = ca_bundles(kube, release)
        assert None not in live, live
        # The chart rendered the live value (lookup), so Helm's own record carries it too.
        manifest = helm("get", "manifest", release, "-n", release_ns).stdout
        assert "caBundle:" in manifest and any(v in manifest for v in set(live) if v), (
            "upgrade did not keep caBundle"
        )

        # -- rotation under load: create pods without pause across a CA rotation.
        secret_path = f"/api/v1/namespaces/{release_ns}/secrets/remora-webhook-certs"
        first_ca = request(kube, "GET", secret_path)["data"]["ca.crt"]
        failures: list[str] = []
        created_count = 0
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            try:
                pod = request(
                    kube, "POST", f"/api/v1/namespaces/{namespace}/pods", body=hardened_pod(namespace)
                )
                if STATUS_ANNOTATION not in (pod["metadata"].get("annotations") or {}):
                    failures.append(f"not injected: {pod['metadata']['name']}")
                created_count += 1
            except ApiError as exc:
                failures.append(str(exc))
            if (
                request(kube, "GET", secret_path)["data"]["ca.crt"] != first_ca
                and time.monotonic() > deadline - 30
            ):
                # The CA has rotated; keep going a little to cover dropping the old CA.
                deadline = min(deadline, time.monotonic() + 8)
        watch.close()
        print(
            f"rotation under load: {created_count} pods admitted, caBundles seen {sorted(sizes_seen(watch))}"
        )
        assert created_count > 20
        assert failures == [], failures[:5]
        assert request(kube, "GET", secret_path)["data"]["ca.crt"] != first_ca, "the CA did not rotate"
        sizes = sizes_seen(watch)
        assert 0 not in sizes, "a webhook configuration was seen without a caBundle"
        assert 2 in sizes, f"no overlap with old and new CA was observed: {sizes}"

        # -- uninstall leaves nothing of Remora behind.
        for p in procs:
            p.stop()
        helm("uninstall", release, "-n", release_ns, "--wait", "--timeout=60s")
        _wait_gone(kube, f"/api/v1/namespaces/{release_ns}/secrets/remora-webhook-certs")
        _wait_gone(kube, f"/apis/coordination.k8s.io/v1/namespaces/{release_ns}/leases/remora-certs")
        left = _remora_objects(kube, release_ns)
        assert left == [], left
    finally:
        if watch:
            watch.close()
        for p in procs:
            p.stop()
        if os.environ.get("REMORA_E2E_VERBOSE"):
            for p in procs:
                print(f"--- {p.log.name}\n{p.tail()}")


def _run_helm_test_script(helm: Any, kube: Any, release_ns: str, env: dict[str, str]) -> None:
    import yaml

    rendered = helm(
        "template", "remora", str(CHART), "-n", release_ns, "--set", "webhook.url=https://127.0.0.1:1",
        "--set", "certs.extraSANs={127.0.0.1}", "--show-only", "templates/tests/test-injection.yaml",
    ).stdout  # fmt: skip
    docs = {d["kind"]: d for d in yaml.safe_load_all(rendered) if d}
    test_ns = docs["Namespace"]
    meta = test_ns["metadata"]
    annotations = {k: v for k, v in meta["annotations"].items() if k.startswith("remora.dev/")}
    body = {"metadata": {"name": meta["name"], "labels": meta["labels"], "annotations": annotations}}
    request(kube, "POST", "/api/v1/namespaces", body=body)
    try:
        container = docs["Pod"]["spec"]["containers"][0]
        assert container["command"] == ["python", "-c"]
        proc = subprocess.run(
            [sys.executable, "-c", *container["args"]], capture_output=True, text=True, env=env, cwd=ROOT,
            timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.startswith("ok: injected"), proc.stdout
    finally:
        request(kube, "DELETE", f"/api/v1/namespaces/{test_ns['metadata']['name']}")


def _create_pod_eventually(kube: Any, namespace: str, timeout: float) -> dict[str, Any]:
    """The first pod creation waits for `remora serve` to come up (it fails closed until then)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return request(kube, "POST", f"/api/v1/namespaces/{namespace}/pods", body=hardened_pod(namespace))
        except ApiError as exc:
            if time.monotonic() > deadline:
                raise
            if "failed calling webhook" not in exc.message and exc.status != 500:
                raise
            time.sleep(0.5)


def sizes_seen(watch: BundleWatch) -> set[int]:
    return {_count_certs(v) for _, bundles in watch.seen for v in bundles}


def _count_certs(value: str | None) -> int:
    if not value:
        return 0
    return base64.b64decode(value).count(b"-----BEGIN CERTIFICATE-----")


def _wait_gone(kube: Any, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request(kube, "GET", path)
        except ApiError as exc:
            if exc.not_found:
                return
            raise
        time.sleep(0.5)
    raise AssertionError(f"{path} still exists {timeout}s after uninstall")


def _remora_objects(kube: Any, release_ns: str) -> list[str]:
    """Everything labelled part-of=remora (bar the CRDs, which Helm never deletes) and the
    objects the rotation creates, cluster-wide and in the release namespace."""
    found: list[str] = []
    selector = {"labelSelector": "app.kubernetes.io/part-of=remora"}
    for path in (
        f"{REG}/mutatingwebhookconfigurations",
        f"{REG}/validatingwebhookconfigurations",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        f"/apis/apps/v1/namespaces/{release_ns}/deployments",
        f"/api/v1/namespaces/{release_ns}/services",
        f"/api/v1/namespaces/{release_ns}/configmaps",
        f"/api/v1/namespaces/{release_ns}/serviceaccounts",
        f"/apis/policy/v1/namespaces/{release_ns}/poddisruptionbudgets",
    ):
        for item in request(kube, "GET", path, query=selector).get("items") or []:
            found.append(f"{path.rsplit('/', 1)[-1]}/{item['metadata']['name']}")
    for path in (
        f"/api/v1/namespaces/{release_ns}/secrets",
        f"/apis/coordination.k8s.io/v1/namespaces/{release_ns}/leases",
    ):
        for item in (
            request(kube, "GET", path, query={"labelSelector": "app.kubernetes.io/managed-by=remora"}).get(
                "items"
            )
            or []
        ):
            found.append(f"{path.rsplit('/', 1)[-1]}/{item['metadata']['name']}")
    return found
