"""Builders and a real HTTPS server for the injector's tests."""

from __future__ import annotations

import copy
import datetime
import ipaddress
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette

from localcluster.ports import free_port
from webhook.server import build_server
from webhook.tls import CertReloader

UID = "705ab4f5-6393-11e8-b7cc-42010a800002"


def agent_pod(capabilities: str | None = "build,test", **spec: Any) -> dict[str, Any]:
    """A plain agent pod as a ReplicaSet would create it."""
    annotations = {"remora.dev/capabilities": capabilities} if capabilities is not None else {}
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "agent-7f9c6d-",
            "namespace": "team-a",
            "labels": {"app": "agent"},
            "annotations": annotations,
        },
        "spec": {
            "serviceAccountName": "agent",
            "containers": [
                {
                    "name": "agent",
                    "image": "registry.example/agent:1.4",
                    "resources": {"limits": {"memory": "256Mi"}},
                    "volumeMounts": [{"name": "work", "mountPath": "/work"}],
                }
            ],
            "volumes": [{"name": "work", "emptyDir": {}}],
            "restartPolicy": "Always",
        },
    }
    pod["spec"].update(spec)
    return pod


def review(
    obj: Any = None, *, operation: str = "CREATE", namespace: str = "team-a", **request: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "uid": UID,
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        "object": copy.deepcopy(obj) if obj is not None else agent_pod(),
        "oldObject": None,
        "dryRun": False,
    }
    body.update(request)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": body}


def review_bytes(obj: Any = None, **kwargs: Any) -> bytes:
    return orjson.dumps(review(obj, **kwargs))


def apiserver_defaults(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod as the apiserver hands it back on reinvocation: container defaults filled in."""
    pod = copy.deepcopy(pod)
    for key in ("initContainers", "containers"):
        for container in pod["spec"].get(key, []):
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("imagePullPolicy", "IfNotPresent")
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("fieldRef")
                if ref is not None:
                    ref.setdefault("apiVersion", "v1")
            resources = container.get("resources", {})
            for name, value in resources.get("limits", {}).items():
                resources.setdefault("requests", {}).setdefault(name, value)
    return pod


# --- certificates -------------------------------------------------------------------------


def write_cert(folder: Path, common_name: str, *, prefix: str = "tls") -> tuple[Path, Path]:
    """A self-signed serving certificate for 127.0.0.1 and localhost; returns (cert, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{prefix}.crt", folder / f"{prefix}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@contextmanager
def running_server(
    app: Starlette, tls: CertReloader, *, reload_seconds: float = 0.1
) -> Iterator[tuple[str, uvicorn.Server]]:
    """Serve `app` over HTTPS on a free port in a background thread; yields (base URL, server)."""
    import asyncio

    from webhook.server import serve

    port = free_port()
    server = build_server(app, host="127.0.0.1", port=port, tls=tls, log_level="warning")
    thread = threading.Thread(
        target=lambda: asyncio.run(serve(server, tls, reload_seconds=reload_seconds)), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"https://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(10)
