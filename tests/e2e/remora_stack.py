"""Remora installed on the local control plane the way a user does it in URL mode.

`RemoraStack.start()`:
  1. `helm install` the chart into a fresh release namespace with `webhook.url` pointing at
     https://127.0.0.1:PORT (and 127.0.0.1 in `certs.extraSANs`, as the chart requires), the
     capability ClusterRoles named after the release so releases never clash;
  2. `remora certs bootstrap` creates the CA and serving certificate, stores them in the
     release's Secret, writes the caBundle into the chart's webhook configurations and the
     files into a local folder;
  3. `remora serve` runs as a subprocess on that port with those files, following the
     chart's catalog ConfigMap;
  4. waits until the real apiserver injects a dry-run pod in a labelled probe namespace.
Steps 2 and 3 run as the chart's ServiceAccount (a TokenRequest token), as the chart's
Deployment would: they can do exactly what the chart's RBAC grants.

`stop_server()` / `start_server()` take the webhook away and bring it back on the same
port; `upgrade(...)` runs `helm upgrade` with the base values plus more. `close()` stops the
server and uninstalls the chart. Nothing here talks to the webhook behind the apiserver's back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import httpx
import yaml

from common.kube import ApiError, request
from common.names import CAPABILITIES_ANNOTATION, INJECTION_LABEL, STATUS_ANNOTATION

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "remora"
SETPRIV = shutil.which("setpriv")


class Tool(Protocol):
    """The conftest's `kubectl`/`helm` fixtures: run the binary, return the finished process."""

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]: ...


class StackError(AssertionError):
    """The stack did not come up; the message carries the server's log tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hardened_pod(name: str, capabilities: str | None = "build", **labels: str) -> dict[str, Any]:
    """An agent pod that meets every level, so only the webhook under test decides."""
    annotations = {CAPABILITIES_ANNOTATION: capabilities} if capabilities is not None else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
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


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_for_default_serviceaccount(kube: Any, namespace: str, timeout: float = 30.0) -> None:
    """Pods are refused until the serviceaccount controller has made "default"."""

    def exists() -> bool:
        try:
            request(kube, "GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/default")
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True

    wait_for(exists, timeout, f"serviceaccount {namespace}/default")


class RemoraStack:
    """`remora serve` on 127.0.0.1 plus the chart installed by helm in URL mode."""

    def __init__(self, cluster: Any, kube: Any, helm: Tool, workdir: Path, release: str = "") -> None:
        suffix = uuid.uuid4().hex[:6]
        self.cluster = cluster
        self.kube = kube
        self.helm = helm
        self.workdir = workdir
        # Contains "remora", so the chart uses it as its fullname.
        self.release = release or f"remora-{suffix}"
        self.namespace = f"remora-system-{suffix}"
        self.probe_namespace = f"remora-probe-{suffix}"
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.cert_dir = workdir / "certs"
        self.log_path = workdir / "serve.log"
        self.kubeconfig = workdir / "webhook.kubeconfig"  # the chart's ServiceAccount
        self.env = {**cluster.env(), "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"}
        self.server: subprocess.Popen[bytes] | None = None
        self.installed = False

    @property
    def fullname(self) -> str:
        return self.release if "remora" in self.release else f"{self.release}-remora"

    def base_values(self) -> list[str]:
        return [
            "--set", f"webhook.url={self.url}",
            "--set", "certs.extraSANs={127.0.0.1}",
            "--set", "replicaCount=1",
            "--set", f"capabilityRoles.namePrefix={self.fullname}-capability-",
        ]  # fmt: skip

    # -- lifecycle

    def start(self) -> RemoraStack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._create_namespace(self.namespace, {})
        self.helm("install", self.release, str(CHART), "-n", self.namespace, *self.base_values())
        self.installed = True
        self._write_service_account_kubeconfig()
        self._bootstrap_certs()
        self.start_server()
        self._create_namespace(self.probe_namespace, {INJECTION_LABEL: "enabled"})
        self.wait_injecting()
        return self

    def close(self) -> None:
        self.stop_server()
        if self.installed:
            self.helm("uninstall", self.release, "-n", self.namespace, "--wait", "--timeout=60s", check=False)
            self.installed = False
        for name in (self.probe_namespace, self.namespace):
            with contextlib.suppress(ApiError):
                request(self.kube, "DELETE", f"/api/v1/namespaces/{name}")

    def upgrade(self, *values: str) -> None:
        """`helm upgrade` with the base values and these extra arguments."""
        self.helm("upgrade", self.release, str(CHART), "-n", self.namespace, *self.base_values(), *values)

    def start_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            return
        argv = [
            sys.executable, "-m", "remora", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--tls-cert", str(self.cert_dir / "tls.crt"), "--tls-key", str(self.cert_dir / "tls.key"),
            "--kubeconfig", str(self.kubeconfig),
            "--catalog-configmap", f"{self.namespace}/remora-capabilities",
            "--reload-seconds", "0.5",
        ]  # fmt: skip
        if SETPRIV:  # the server dies with the test process, even when that is killed
            argv = [SETPRIV, "--pdeathsig", "KILL", "--", *argv]
        with self.log_path.open("ab") as log:
            self.server = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT)
        self._wait_ready()

    def stop_server(self) -> None:
        if self.server is None:
            return
        if self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(5)
        self.server = None

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "<no log>"

    # -- readiness

    def wait_injecting(self, timeout: float = 30.0) -> None:
        """Until the apiserver sends pods of a labelled namespace to the server and injects them."""
        path = f"/api/v1/namespaces/{self.probe_namespace}/pods"

        def injected() -> bool:
            try:
                pod = request(self.kube, "POST", path, body=hardened_pod("probe"), query={"dryRun": "All"})
            except ApiError:
                return False
            return STATUS_ANNOTATION in (pod["metadata"].get("annotations") or {})

        try:
            wait_for(injected, timeout, "the apiserver to inject through the chart's webhook")
        except AssertionError as exc:
            raise StackError(f"{exc}\n--- remora serve log\n{self.log_tail()}") from None

    def _wait_ready(self, timeout: float = 30.0) -> None:
        context = ssl.create_default_context(cafile=str(self.cert_dir / "ca.crt"))
        deadline = time.monotonic() + timeout
        while True:
            assert self.server is not None
            if self.server.poll() is not None:
                raise StackError(f"remora serve exited with {self.server.returncode}\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", verify=context, timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise StackError(f"remora serve not ready in {timeout:.0f}s\n{self.log_tail()}")
            time.sleep(0.2)

    # -- steps

    def _write_service_account_kubeconfig(self) -> None:
        """A kubeconfig with a bound token of the chart's webhook ServiceAccount (mode 0600)."""
        answer = request(
            self.kube,
            "POST",
            f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{self.fullname}-webhook/token",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        )
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {
                        "server": self.cluster.server,
                        "certificate-authority": str(self.cluster.ca_file),
                    },
                }
            ],
            "users": [{"name": "webhook", "user": {"token": answer["status"]["token"]}}],
            "contexts": [{"name": "webhook", "context": {"cluster": "local", "user": "webhook"}}],
            "current-context": "webhook",
        }
        fd = os.open(self.kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            yaml.safe_dump(config, out)

    def _bootstrap_certs(self) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "remora", "certs", "bootstrap",
             f"--kubeconfig={self.kubeconfig}", f"--namespace={self.namespace}",
             f"--secret={self.fullname}-certs", f"--service={self.fullname}-webhook",
             "--extra-san=127.0.0.1", f"--webhook-config={self.fullname}", f"--cert-dir={self.cert_dir}"],
            capture_output=True, text=True, env=self.env, cwd=ROOT, timeout=60, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise StackError(f"remora certs bootstrap exited {proc.returncode}: {proc.stderr.strip()}")

    def _create_namespace(self, name: str, labels: dict[str, str]) -> None:
        request(self.kube, "POST", "/api/v1/namespaces", body={"metadata": {"name": name, "labels": labels}})
        wait_for_default_serviceaccount(self.kube, name)
