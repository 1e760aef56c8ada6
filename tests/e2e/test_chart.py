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
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from common.kube import ApiError, request, stream
from common.names import STATUS_ANNOTATION
from localcluster.remora_release import RemoraRelease, generated_hardened_pod

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "remora"
REG = "/apis/admissionregistration.k8s.io/v1"
# Short lifetimes so a whole CA rotation happens while the test watches: the CA is
# renewed about 19s after it is issued, each step waits 2s for propagation.
LIFETIMES = ["--ca-lifetime=30s", "--serving-lifetime=15s", "--propagation=2s"]


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


def test_chart_install_inject_upgrade_rotate_uninstall(
    cluster: Any, kube: Any, helm: Any, namespace: str, tmp_path: Path
) -> None:
    remora = RemoraRelease(cluster, kube, tmp_path, namespace=f"remora-e2e-{uuid.uuid4().hex[:6]}", helm=helm)
    release, release_ns = remora.fullname, remora.namespace
    kc = f"--kubeconfig={cluster.kubeconfig}"
    watch: BundleWatch | None = None
    try:
        # -- install: the configurations come without a caBundle; bootstrap writes it.
        remora.install()
        assert set(ca_bundles(kube, release)) == {None}
        remora.bootstrap_certs(*LIFETIMES)
        first_bundle = ca_bundles(kube, release)
        assert None not in first_bundle and len(set(first_bundle)) == 1
        remora.start_certs(*LIFETIMES, identity="e2e")
        remora.start_serve(reload_seconds=0.2)

        # -- enable a namespace, and a pod is injected.
        remora.run("enable-namespace", namespace, "--capabilities=build,test", kc, timeout=60)
        created = _create_pod_eventually(kube, namespace, timeout=60)
        assert STATUS_ANNOTATION in created["metadata"]["annotations"], created["metadata"]
        assert len(created["spec"].get("initContainers", []) + created["spec"]["containers"]) >= 2

        # -- the `helm test` check, run here as a process (no kubelet runs its pod).
        _run_helm_test_script(helm, kube, release_ns, remora.env)

        # -- helm upgrade keeps the caBundle: no version of the configurations lacks it.
        watch = BundleWatch(kube, release)
        time.sleep(1)
        remora.upgrade("--set", "webhook.logLevel=debug")
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
                body = generated_hardened_pod(namespace)
                pod = request(kube, "POST", f"/api/v1/namespaces/{namespace}/pods", body=body)
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
        remora.stop_all()
        remora.uninstall()
        _wait_gone(kube, f"/api/v1/namespaces/{release_ns}/secrets/remora-webhook-certs")
        _wait_gone(kube, f"/apis/coordination.k8s.io/v1/namespaces/{release_ns}/leases/remora-certs")
        left = _remora_objects(kube, release_ns)
        assert left == [], left
    finally:
        if watch:
            watch.close()
        remora.stop_all()
        if os.environ.get("REMORA_E2E_VERBOSE"):
            for name in ("certs", "serve"):
                print(f"--- {name}.log\n{remora.log_tail(name, 30)}")
        remora.close()


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
            body = generated_hardened_pod(namespace)
            return request(kube, "POST", f"/api/v1/namespaces/{namespace}/pods", body=body)
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
