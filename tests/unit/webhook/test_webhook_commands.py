"""`remora inject` and `remora serve` as a user runs them: exit codes, one-line errors, a live server."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from webhook_support import free_port, review_bytes, write_cert

from remora.cli import main

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "agent-pod.yaml"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_readme_example_gets_build_and_test_sidecars(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["inject", "-f", str(EXAMPLE)], capsys)
    assert (code, err) == (0, "")
    pod = yaml.safe_load(out)
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["remora-build", "remora-test"]


def test_stdin_is_read_with_a_dash(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(EXAMPLE.read_bytes())))
    code, out, _ = run(["inject", "-f", "-"], capsys)
    assert code == 0
    assert "remora-build" in out


def test_a_denial_exits_1_with_the_reason_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["inject", "-f", str(EXAMPLE), "--namespace-allowed", "build"], capsys)
    assert code == 1
    assert out == ""
    assert err == (
        "remora inject: denied: Pod team-a/agent: capability 'test' not allowed in namespace team-a "
        "(remora.dev/allowed-capabilities); allowed: build\n"
    )


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("kind: Pod\nspec: [", "invalid YAML at line"),
        ("- just\n- a list\n", "document 1 is not a Kubernetes object"),
        (
            "kind: Pod\nmetadata: {annotations: {remora.dev/capabilities: build}}\nspec: {}\n",
            "Pod (unnamed): spec.containers must be a list, it is missing",
        ),
        (
            "kind: Deployment\nmetadata: {name: d}\nspec: {template: 3}\n",
            "Deployment d: spec.template must be",
        ),
        ("a: &x [1]\nb: *x\n", "YAML aliases are not supported"),
        ("kind: Pod\n1: x\n", "YAML holds a value JSON cannot"),
    ],
)
def test_unreadable_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, fragment: str
) -> None:
    path = tmp_path / "in.yaml"
    path.write_text(content)
    code, out, err = run(["inject", "-f", str(path)], capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and fragment in err, err


def test_a_missing_file_and_a_bad_catalog_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["inject", "-f", str(tmp_path / "none.yaml")], capsys)
    assert code == 2 and "cannot read" in err and err.count("\n") == 1
    bad = tmp_path / "catalog.yaml"
    bad.write_text("apiVersion: remora.dev/v1alpha1\nkind: CapabilityCatalog\ncapabilities: {}\n")
    code, _, err = run(["inject", "-f", str(EXAMPLE), "--catalog", str(bad)], capsys)
    assert code == 2 and "capabilities: {} should be non-empty" in err


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--port", "0"], "--port must be 1-65535"),
        (["--catalog-configmap", "no-slash"], "must be NAMESPACE/NAME"),
        (["--catalog", "a.yaml", "--catalog-configmap", "ns/name"], "not both"),
        (["--workers", "0"], "--workers must be 1-16"),
    ],
)
def test_serve_refuses_bad_arguments_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragment: str
) -> None:
    cert, key = write_cert(tmp_path, "x")
    code, _, err = run(
        ["serve", "--tls-cert", str(cert), "--tls-key", str(key), "--no-cluster", *extra], capsys
    )
    assert code == 2
    assert fragment in err


def test_serve_refuses_unusable_certificates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("junk")
    code, _, err = run(["serve", "--tls-cert", str(junk), "--tls-key", str(junk), "--no-cluster"], capsys)
    assert code == 2
    assert "not a usable certificate and key" in err


def test_remora_serve_injects_and_follows_catalog_file_changes(tmp_path: Path) -> None:
    cert, key = write_cert(tmp_path, "remora-serve")
    catalog = tmp_path / "catalog.yaml"
    entry = {
        "kind": "BuildRequest",
        "image": "registry.example/op:1",
        "command": ["op"],
        "resources": {"limits": {"memory": "64Mi"}},
    }
    doc = {"apiVersion": "remora.dev/v1alpha1", "kind": "CapabilityCatalog", "capabilities": {"build": entry}}
    catalog.write_text(yaml.safe_dump(doc))
    port = free_port()
    env = {**os.environ, "KUBECONFIG": "", "KUBERNETES_SERVICE_HOST": ""}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "remora",
            "serve",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
            "--catalog",
            str(catalog),
            "--reload-seconds",
            "0.1",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=False, timeout=5) as client:
            wait_until_up(client, process)

            def image() -> str:
                body = review_bytes(pod_with("build"))
                reply = client.post("/mutate", content=body, headers={"content-type": "application/json"})
                ops = orjson.loads(base64.b64decode(reply.json()["response"]["patch"]))
                added = next(op["value"] for op in ops if op["path"] == "/spec/initContainers")
                return str(added[0]["image"])

            assert image() == "registry.example/op:1"
            entry["image"] = "registry.example/op:2"
            catalog.write_text(yaml.safe_dump(doc))
            deadline = time.monotonic() + 10
            while image() != "registry.example/op:2":
                assert time.monotonic() < deadline, "the catalog file change was not picked up"
                time.sleep(0.1)
            catalog.write_text("capabilities: [")  # a broken edit: refused, the last good one stays
            time.sleep(0.5)
            assert image() == "registry.example/op:2"
            assert 'remora_reloads_total{result="refused",what="catalog"}' in client.get("/metrics").text
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=15)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal so the exit status tells why.
    assert process.returncode in (0, -15), output
    assert b"Finished server process" in output
    assert b"catalog refused" in output


def test_remora_serve_workers_share_the_port_and_end_with_it(tmp_path: Path) -> None:
    cert, key = write_cert(tmp_path, "remora-serve")
    port = free_port()
    env = {**os.environ, "KUBECONFIG": "", "KUBERNETES_SERVICE_HOST": ""}
    argv = ["serve", "--port", str(port), "--host", "127.0.0.1"]
    argv += ["--tls-cert", str(cert), "--tls-key", str(key)]
    process = subprocess.Popen(
        [sys.executable, "-m", "remora", *argv, "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    children: list[int] = []
    try:
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=False, timeout=5) as client:
            wait_until_up(client, process)
            children_file = Path(f"/proc/{process.pid}/task/{process.pid}/children")
            children = [int(pid) for pid in children_file.read_text().split()]
            assert len(children) == 1, children
            for _ in range(20):  # new connections each time: whichever worker accepts answers
                with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=False, timeout=5) as fresh:
                    reply = fresh.post(
                        "/mutate",
                        content=review_bytes(pod_with("build")),
                        headers={"content-type": "application/json"},
                    )
                    assert reply.status_code == 200 and reply.json()["response"]["allowed"]
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert process.returncode in (0, -15), output
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in children):
        assert time.monotonic() < deadline, "a worker outlived the server"
        time.sleep(0.1)


def pod_with(capabilities: str) -> dict[str, object]:
    return {
        "metadata": {"name": "agent", "annotations": {"remora.dev/capabilities": capabilities}},
        "spec": {"containers": [{"name": "agent", "image": "agent:1"}]},
    }


def wait_until_up(client: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, process.communicate()[0]
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "remora serve did not come up"
        time.sleep(0.1)
