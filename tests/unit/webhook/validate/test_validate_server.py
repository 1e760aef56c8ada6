"""/validate over real HTTPS, as `remora serve` wires it (webhook.main.Webhook)."""

from __future__ import annotations

import ssl
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from validate_support import hardened_pod, privileged_pod, request

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the webhook tests' HTTPS helpers
from webhook_support import running_server, write_cert

from webhook.main import ServeConfig, SetupError, Webhook


def _body(obj: dict) -> bytes:
    return orjson.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request(obj)}
    )


def test_validate_endpoint_enforces_the_configured_level(tmp_path: Path) -> None:
    cert, key = write_cert(tmp_path, "remora-webhook")
    config_file = tmp_path / "validation.yaml"
    config_file.write_text("defaults:\n  enforce: baseline\n  warn: hardened\n")
    webhook = Webhook(ServeConfig(tls_cert=str(cert), tls_key=str(key), validation_config=str(config_file)))
    with (
        running_server(webhook.app, webhook.tls) as (url, _),
        httpx.Client(verify=ssl.create_default_context(cafile=str(cert)), timeout=10) as http,
    ):
        headers = {"Content-Type": "application/json"}
        denied = http.post(f"{url}/validate", content=_body(privileged_pod()), headers=headers)
        assert denied.status_code == 200
        response = denied.json()["response"]
        assert response["uid"] == "1d6f6c1e-0000-4000-8000-000000000001"
        assert response["allowed"] is False
        assert response["status"]["message"].startswith('violates PodSecurity "baseline:latest": privileged')

        pod = hardened_pod()
        del pod["spec"]["containers"][0]["resources"]
        allowed = http.post(f"{url}/validate", content=_body(pod), headers=headers).json()["response"]
        assert allowed["allowed"] is True
        assert allowed["warnings"][0].startswith(
            'would violate PodSecurity "hardened:latest": memory limit missing'
        )

        garbage = http.post(f"{url}/validate", content=b"{not json", headers=headers)
        assert garbage.status_code == 400 and "malformed JSON" in garbage.json()["error"]

        metrics = http.get(f"{url}/metrics").text
        assert "validate" in metrics


def test_a_bad_validation_config_stops_startup_with_one_line(tmp_path: Path) -> None:
    cert, key = write_cert(tmp_path, "remora-webhook")
    config_file = tmp_path / "validation.yaml"
    config_file.write_text("defaults:\n  enforce: strictest\n")
    with pytest.raises(SetupError, match=r"defaults\.enforce must be one of"):
        Webhook(ServeConfig(tls_cert=str(cert), tls_key=str(key), validation_config=str(config_file)))
