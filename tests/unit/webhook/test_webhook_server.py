"""The admission server over real HTTPS (uvicorn in a thread): answers, refusals, metrics, cert reload."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from webhook_support import UID, agent_pod, review, review_bytes, running_server, write_cert

from webhook.catalog import default_catalog
from webhook.metrics import Metrics
from webhook.mutate import Mutator
from webhook.namespaces import Namespace, StaticNamespaces
from webhook.server import allow_all, create_app
from webhook.tls import CertReloader, TLSConfigError

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_cert(tmp_path_factory.mktemp("tls"), "remora-test-1")


@pytest.fixture(scope="module")
def server(certs: tuple[Path, Path]) -> Iterator[str]:
    namespaces = StaticNamespaces.of(
        Namespace(
            "team-a", {"remora.dev/injection": "enabled"}, {"remora.dev/allowed-capabilities": "build,test"}
        )
    )
    app = create_app(Mutator(default_catalog, namespaces), allow_all, namespaces=namespaces)
    tls = CertReloader(str(certs[0]), str(certs[1]))
    with running_server(app, tls) as (url, _):
        yield url


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, verify=False, timeout=10) as c:
        yield c


def test_mutate_answers_a_pod_review_with_a_patch(client: httpx.Client) -> None:
    reply = client.post("/mutate", content=review_bytes(), headers=JSON)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    response = reply.json()["response"]
    assert response["uid"] == UID
    assert response["allowed"] is True
    assert orjson.loads(base64.b64decode(response["patch"]))


def test_mutate_denies_a_capability_the_namespace_does_not_allow(client: httpx.Client) -> None:
    response = client.post("/mutate", content=review_bytes(agent_pod("migrate")), headers=JSON).json()[
        "response"
    ]
    assert response["allowed"] is False
    assert "allowed: build, test" in response["status"]["message"]


def test_validate_is_wired_and_answers(client: httpx.Client) -> None:
    response = client.post("/validate", content=review_bytes(), headers=JSON).json()["response"]
    assert response == {"uid": UID, "allowed": True}


@pytest.mark.parametrize(
    ("body", "headers", "fragment"),
    [
        (b"{", JSON, "malformed JSON"),
        (b'{"a": NaN}', JSON, "malformed JSON"),
        (b'["\xff"]', JSON, "malformed JSON"),
        (b'["\\udc00"]', JSON, "malformed JSON"),
        (b"[" * 201 + b"]" * 201, JSON, "nests deeper than 200"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', JSON, "request must be"),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}',
            JSON,
            "request.uid",
        ),
        (
            review_bytes(),
            {"content-type": "text/plain"},
            "content type must be application/json, got 'text/plain'",
        ),
        (review_bytes(), {}, "content type must be application/json"),
    ],
)
def test_bad_requests_get_a_400_naming_the_problem(
    client: httpx.Client, body: bytes, headers: dict[str, str], fragment: str
) -> None:
    for path in ("/mutate", "/validate"):
        reply = client.post(path, content=body, headers=headers)
        assert reply.status_code == 400, reply.text
        assert fragment in reply.json()["error"]


def test_a_body_over_the_cap_is_refused_before_it_is_read(client: httpx.Client) -> None:
    big = review()
    big["request"]["object"]["metadata"]["annotations"]["blob"] = "x" * (3 * 1024 * 1024 + 10)
    reply = client.post("/mutate", content=orjson.dumps(big), headers=JSON)
    assert reply.status_code == 400
    assert "over the limit of 3145728" in reply.json()["error"]


def test_a_chunked_body_over_the_cap_is_refused(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(4):
            yield b" " * (1024 * 1024)

    reply = client.post("/mutate", content=chunks(), headers=JSON)
    assert reply.status_code == 400
    assert "over the limit" in reply.json()["error"]


def test_other_methods_and_paths_are_refused_plainly(client: httpx.Client) -> None:
    assert client.get("/mutate").status_code == 405
    assert client.post("/nothing", content=b"{}", headers=JSON).status_code == 404


def test_health_readiness_and_metrics(client: httpx.Client) -> None:
    assert client.get("/healthz").text == "ok\n"
    assert client.get("/readyz").status_code == 200
    client.post("/mutate", content=b"{", headers=JSON)
    metrics = client.get("/metrics").text
    assert 'remora_admission_requests_total{endpoint="mutate"}' in metrics
    assert 'remora_admission_decisions_total{decision="patched",endpoint="mutate"}' in metrics
    assert 'remora_admission_errors_total{endpoint="mutate",kind="bad_json"}' in metrics
    assert "remora_admission_duration_seconds_bucket" in metrics


def test_readiness_reports_why_not(certs: tuple[Path, Path]) -> None:
    app = create_app(allow_all, allow_all, readiness=lambda: "the catalog ConfigMap has not been read yet")
    tls = CertReloader(str(certs[0]), str(certs[1]))
    with running_server(app, tls) as (url, _), httpx.Client(base_url=url, verify=False) as c:
        reply = c.get("/readyz")
    assert reply.status_code == 503
    assert "ConfigMap" in reply.text


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_only_tls_1_2_or_newer_is_served(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock, pytest.raises(ssl.SSLError):
        old.wrap_socket(sock)


def test_a_slow_body_gets_a_400_not_a_hang(certs: tuple[Path, Path]) -> None:
    app = create_app(allow_all, allow_all, body_seconds=0.3)
    tls = CertReloader(str(certs[0]), str(certs[1]))
    with running_server(app, tls) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw) as sock,
        ):
            sock.sendall(
                b"POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                b"content-length: 100\r\n\r\n{"
            )
            reply = b""
            while b"did not arrive" not in reply and (chunk := sock.recv(4096)):
                reply += chunk
    assert reply.startswith(b"HTTP/1.1 400")
    assert b"did not arrive within 0.3s" in reply


# --- certificate reload ------------------------------------------------------------------------


def peer_common_name(port: int) -> str:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, context.wrap_socket(raw) as sock:
        der = sock.getpeercert(binary_form=True)
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    return str(cert.subject.rfc4514_string())


def wait_for(predicate: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_replaced_cert_files_are_served_to_new_connections_and_in_flight_requests_finish(
    tmp_path: Path,
) -> None:
    cert, key = write_cert(tmp_path, "remora-old")
    reloads: list[bool] = []
    tls = CertReloader(str(cert), str(key), on_reload=reloads.append)
    metrics = Metrics()
    app = create_app(Mutator(default_catalog, StaticNamespaces()), allow_all, metrics=metrics)
    with running_server(app, tls, reload_seconds=0.05) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        assert peer_common_name(port) == "CN=remora-old"
        failures: list[str] = []
        stop = threading.Event()

        def keep_posting() -> None:
            # One keep-alive connection opened before the swap and used throughout it.
            with httpx.Client(base_url=url, verify=False, timeout=10) as c:
                while not stop.is_set():
                    reply = c.post("/mutate", content=review_bytes(), headers=JSON)
                    if reply.status_code != 200:
                        failures.append(reply.text)

        workers = [threading.Thread(target=keep_posting) for _ in range(3)]
        for worker in workers:
            worker.start()
        time.sleep(0.2)
        new_dir = tmp_path / "new"
        new_dir.mkdir()
        new_cert, new_key = write_cert(new_dir, "remora-new")
        new_key.replace(key)  # key first: for a moment the pair does not match and must be refused
        wait_for(lambda: False in reloads)
        assert peer_common_name(port) == "CN=remora-old"
        new_cert.replace(cert)
        wait_for(lambda: peer_common_name(port) == "CN=remora-new")
        time.sleep(0.2)
        stop.set()
        for worker in workers:
            worker.join(10)
    assert failures == []
    assert reloads[-1] is True
    assert tls.last_error is None


def test_a_bad_pair_is_refused_and_the_old_cert_stays(tmp_path: Path) -> None:
    cert, key = write_cert(tmp_path, "remora-kept")
    tls = CertReloader(str(cert), str(key))
    fingerprint = tls.fingerprint
    cert.write_text("not a certificate")
    time.sleep(0.01)
    assert tls.check() is False
    assert tls.fingerprint == fingerprint
    assert tls.last_error and str(cert) in tls.last_error


def test_unusable_cert_files_stop_the_start_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(TLSConfigError, match="cannot read the TLS certificate"):
        CertReloader(str(tmp_path / "missing.crt"), str(tmp_path / "missing.key"))
    empty = tmp_path / "empty.crt"
    empty.write_text("")
    with pytest.raises(TLSConfigError, match="is empty"):
        CertReloader(str(empty), str(empty))


def test_metrics_count_tls_handshakes_per_connection_not_per_request(certs: tuple[Path, Path]) -> None:
    metrics = Metrics()
    tls = CertReloader(str(certs[0]), str(certs[1]))
    metrics.watch_tls(tls.context)
    app = create_app(allow_all, allow_all, metrics=metrics)
    with running_server(app, tls) as (url, _):
        with httpx.Client(base_url=url, verify=False, timeout=10) as keep_alive:
            for _ in range(3):
                assert keep_alive.get("/healthz").status_code == 200
        with httpx.Client(base_url=url, verify=False, timeout=10) as second:
            text = second.get("/metrics").text
    assert 'remora_tls_handshakes_total{kind="full"} 2.0' in text
    assert 'remora_tls_handshakes_total{kind="resumed"} 0.0' in text
