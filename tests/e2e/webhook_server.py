"""A local `remora serve` behind a webhook configuration written by the test, not the chart.

For tests of one webhook at a time: a self-signed certificate, `remora serve` on a free port
(a RemoraProcess: its own process group, killed with its parent), a wait for /readyz, then
the configuration that `configuration(name, url_base, ca_bundle)` builds. On the way out the
configuration is deleted, the server stopped and its log tail printed (pytest shows it on a
failure).
"""

from __future__ import annotations

import base64
import contextlib
import ssl
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from common.kube import ApiError, request
from localcluster.remora_release import RemoraProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "unit" / "webhook"))
from webhook_support import write_cert  # noqa: E402

REG = "/apis/admissionregistration.k8s.io/v1"
# (webhook configuration name, "https://127.0.0.1:PORT", base64 caBundle) -> the object
Configuration = Callable[[str, str, str], dict[str, Any]]


@contextlib.contextmanager
def serving(
    cluster: Any, kube: Any, tmp_path: Path, configuration: Configuration, *extra: str
) -> Iterator[str]:
    """Yields the server's base URL once the apiserver has the configuration."""
    cert, key = write_cert(tmp_path, "remora-webhook")
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    server = RemoraProcess(
        "serve",
        ["serve", "--host", "127.0.0.1", "--port", str(port), "--tls-cert", str(cert),
         "--tls-key", str(key), "--kubeconfig", str(cluster.kubeconfig), "--reload-seconds", "0.5",
         *extra],
        tmp_path,
        cluster.env(),
    )  # fmt: skip
    ca_bundle = base64.b64encode(cert.read_bytes()).decode()
    body = configuration(f"remora-test-{uuid.uuid4().hex[:6]}", base, ca_bundle)
    plural = body["kind"].lower() + "s"
    name = body["metadata"]["name"]
    try:
        _wait_ready(f"{base}/readyz", cert, server)
        request(kube, "POST", f"{REG}/{plural}", body=body)
        time.sleep(1.0)  # the apiserver picks up webhook configurations asynchronously
        yield base
    finally:
        with contextlib.suppress(ApiError):
            request(kube, "DELETE", f"{REG}/{plural}/{name}")
        server.stop()
        print(server.tail())


def _wait_ready(url: str, cert: Path, server: RemoraProcess) -> None:
    context = ssl.create_default_context(cafile=str(cert))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not server.alive():
            raise AssertionError(f"remora serve exited with {server.popen.returncode}: {server.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, verify=context, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"remora serve did not become ready: {server.tail()}")
