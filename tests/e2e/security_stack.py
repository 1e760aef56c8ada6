"""What the tenancy and security tests add to the shared chart stack (`remora_stack.RemoraStack`).

`chart_stack` is a RemoraStack (the chart installed by helm in URL mode under a release name
of its own, `remora certs bootstrap` and `remora serve` running as the chart's webhook
ServiceAccount, so they can do exactly what the chart's RBAC grants) seen through `Stack`,
which adds what these tests need: the capability role prefix, the webhook's token, TLS
context and log, and `remora enable-namespace` against the release's ClusterRoles.

Also here: `service_account_token` and `token_kubeconfig`, for running anything as a
ServiceAccount; `Operator`, `remora operator` run that way; and namespace helpers.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from remora_stack import RemoraStack, free_port, wait_for_default_serviceaccount

from common.kube import ApiError, request

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "operators" / "crds"


def service_account_token(kube: Any, namespace: str, account: str, seconds: int = 3600) -> str:
    """A fresh bound token for the ServiceAccount (POST serviceaccounts/token, as the kubelet asks)."""
    answer = request(
        kube,
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds},
        },
    )
    return str(answer["status"]["token"])


def token_kubeconfig(cluster: Any, token: str, path: Path) -> Path:
    """A kubeconfig that authenticates with `token` only (no client certificate), mode 0600."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {"server": cluster.server, "certificate-authority": str(cluster.ca_file)},
            }
        ],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "local", "user": "sa"}}],
        "current-context": "sa",
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(config, out)
    return path


def api_client(kubeconfig: Path) -> Any:
    from kubernetes import config

    return config.new_client_from_config(config_file=str(kubeconfig))


def ensure_crds(kubectl: Any) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRD_DIR))


class Stack:
    """A running RemoraStack, with the names and credentials these tests ask about."""

    def __init__(self, remora: RemoraStack, cluster: Any) -> None:
        self.remora = remora
        self.release = remora.release
        self.namespace = remora.namespace  # the release namespace
        self.fullname = remora.fullname
        self.role_prefix = f"{remora.fullname}-capability-"  # as RemoraStack.base_values sets it
        self.port = remora.port
        self.url = remora.url
        self.cert_dir = remora.cert_dir
        self.log_dir = remora.workdir
        config = yaml.safe_load(remora.kubeconfig.read_text())
        self.webhook_token = str(config["users"][0]["user"]["token"])
        # The admin's environment, for the commands a platform team runs.
        self.env = {
            **os.environ,
            **cluster.env(),
            "KUBECONFIG": str(cluster.kubeconfig),
            "PYTHONUNBUFFERED": "1",
        }

    @property
    def webhook_account(self) -> str:
        return f"{self.fullname}-webhook"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert_dir / "ca.crt"))

    def serve_log(self) -> str:
        return self.remora.log_path.read_text(errors="replace")

    def enable_namespace(self, namespace: str, capabilities: str, account: str = "default") -> str:
        """`remora enable-namespace` with the admin kubeconfig, binding this release's ClusterRoles."""
        proc = subprocess.run(
            [sys.executable, "-m", "remora", "enable-namespace", namespace, f"--capabilities={capabilities}",
             f"--service-account={account}", f"--role-prefix={self.role_prefix}"],
            capture_output=True, text=True, env=self.env, check=False, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stdout


class Operator:
    """`remora operator CAP` run as a ServiceAccount (its token in a kubeconfig), like the sidecar."""

    def __init__(
        self,
        stack: Stack,
        kubeconfig: Path,
        capability: str,
        namespace: str,
        log: Path,
        *,
        agent: str = "agent-0",
    ) -> None:
        self.port = free_port()
        self.log = log
        self.handle = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "remora", "operator", capability, f"--kubeconfig={kubeconfig}",
             f"--namespace={namespace}", f"--agent={agent}", "--probe-host=127.0.0.1",
             f"--probe-port={self.port}", "--log-level=debug"],
            stdout=self.handle, stderr=subprocess.STDOUT, env={**stack.env, "KUBECONFIG": str(kubeconfig)},
        )  # fmt: skip

    def probe(self, path: str) -> int:
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as resp:
                return int(resp.status)
        except OSError as exc:
            return int(getattr(exc, "code", 0) or 0)

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as resp:
            return str(resp.read().decode())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.handle.close()


@contextlib.contextmanager
def chart_stack(cluster: Any, kube: Any, helm: Any, work: Path) -> Iterator[Stack]:
    """The chart installed and `remora serve` injecting through the apiserver; torn down after."""
    remora = RemoraStack(cluster, kube, helm, work)
    try:
        remora.start()
        yield Stack(remora, cluster)
    finally:
        remora.close()


def wait_for_webhook(kube: Any, namespace: str, body: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    """Create a pod, retrying while the apiserver cannot reach the webhook yet (it fails closed)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return dict(request(kube, "POST", f"/api/v1/namespaces/{namespace}/pods", body=body))
        except ApiError as exc:
            if time.monotonic() > deadline or (
                "failed calling webhook" not in exc.message and exc.status != 500
            ):
                raise
            time.sleep(0.5)


def make_namespace(kube: Any, prefix: str, labels: dict[str, str] | None = None) -> str:
    """A fresh namespace whose default ServiceAccount exists (the caller deletes it)."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    request(kube, "POST", "/api/v1/namespaces", body={"metadata": {"name": name, "labels": labels or {}}})
    wait_for_default_serviceaccount(kube, name)
    return name


def delete_namespace(kube: Any, name: str) -> None:
    if os.environ.get("REMORA_KEEP_E2E_NAMESPACES") == "1":
        return
    with contextlib.suppress(ApiError):
        request(kube, "DELETE", f"/api/v1/namespaces/{name}")
