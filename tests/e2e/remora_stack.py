"""Remora installed on the local control plane the way a user does it in URL mode, as the
chart's ServiceAccount.

`RemoraStack.start()` drives `localcluster.remora_release.RemoraRelease`:
  1. `helm install` the chart into a fresh release namespace with `webhook.url` pointing at
     https://127.0.0.1:PORT, the capability ClusterRoles named after the release so releases
     never clash;
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
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import yaml

from common.kube import ApiError, request
from common.names import INJECTION_LABEL
from localcluster.remora_release import (
    RemoraRelease,
    chart_fullname,
    create_namespace,
    free_port,
    hardened_pod,
    wait_for_default_serviceaccount,
)

__all__ = [
    "RemoraStack",
    "Tool",
    "free_port",
    "hardened_pod",
    "wait_for",
    "wait_for_default_serviceaccount",
]


class Tool(Protocol):
    """The conftest's `kubectl`/`helm` fixtures: run the binary, return the finished process."""

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]: ...


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class RemoraStack:
    """`remora serve` on 127.0.0.1 plus the chart installed by helm in URL mode."""

    def __init__(self, cluster: Any, kube: Any, helm: Tool, workdir: Path, release: str = "") -> None:
        suffix = uuid.uuid4().hex[:6]
        self.cluster = cluster
        self.kube = kube
        self.workdir = workdir
        self.probe_namespace = f"remora-probe-{suffix}"
        self.kubeconfig = workdir / "webhook.kubeconfig"  # the chart's ServiceAccount, written in start()
        # Contains "remora", so the chart uses it as its fullname.
        release = release or f"remora-{suffix}"
        fullname = chart_fullname(release)
        self.remora_release = RemoraRelease(
            cluster,
            kube,
            workdir,
            release=release,
            namespace=f"remora-system-{suffix}",
            values=["--set", f"capabilityRoles.namePrefix={fullname}-capability-"],
            kubeconfig=self.kubeconfig,
            secret=f"{fullname}-certs",
            helm=helm,
        )
        self.release = release
        self.namespace = self.remora_release.namespace
        self.port = self.remora_release.port
        self.url = self.remora_release.url
        self.cert_dir = self.remora_release.cert_dir
        self.log_path = workdir / "serve.log"

    @property
    def fullname(self) -> str:
        return self.remora_release.fullname

    # -- lifecycle

    def start(self) -> RemoraStack:
        self.remora_release.install()
        self._write_service_account_kubeconfig()
        self.remora_release.bootstrap_certs()
        self.start_server()
        create_namespace(self.kube, self.probe_namespace, {INJECTION_LABEL: "enabled"})
        self.wait_injecting()
        return self

    def close(self) -> None:
        self.remora_release.close()
        with contextlib.suppress(ApiError):
            request(self.kube, "DELETE", f"/api/v1/namespaces/{self.probe_namespace}")

    def upgrade(self, *values: str) -> None:
        """`helm upgrade` with the base values and these extra arguments."""
        self.remora_release.upgrade(*values)

    def start_server(self) -> None:
        if not self.remora_release.running("serve"):
            self.remora_release.start_serve()

    def stop_server(self) -> None:
        self.remora_release.stop("serve")

    def log_tail(self, lines: int = 40) -> str:
        return self.remora_release.log_tail("serve", lines)

    def wait_injecting(self, timeout: float = 30.0) -> None:
        """Until the apiserver sends pods of a labelled namespace to the server and injects them."""
        self.remora_release.wait_injecting(self.probe_namespace, timeout)

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
