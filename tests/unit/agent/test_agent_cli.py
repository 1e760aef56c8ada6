"""`remora broker` and `remora agent` on the command line, and the examples the README points at."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import TOKEN, LiveBroker

from common.names import CAPABILITIES_ANNOTATION, INJECTION_LABEL
from remora.cli import build_parser, main

EXAMPLES = Path(__file__).parents[3] / "examples"


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMORA_BROKER_TOKEN", TOKEN)


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_broker_needs_a_token(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("REMORA_BROKER_TOKEN", raising=False)
    assert main(["broker", "--db", "/tmp/never.db"]) == 2
    assert "no bearer token" in one_line_error(capsys)
    assert main(["broker", "--token-file", "/nonexistent/token"]) == 2
    assert "cannot read token file" in one_line_error(capsys)


@pytest.mark.usefixtures("token_env")
def test_broker_refuses_bad_arguments(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["broker", "--port", "70000"]) == 2
    assert "--port" in one_line_error(capsys)
    assert main(["broker", "--db", str(tmp_path / "no" / "such" / "dir.db")]) == 2
    assert "does not exist" in one_line_error(capsys)
    assert main(["broker", "enqueue", "x", "--capability", "build", "--param", "novalue"]) == 2
    assert "KEY=VALUE" in one_line_error(capsys)
    assert main(["broker", "enqueue", "x", "--capability", "build", "--parameters", "[1]"]) == 2
    assert "JSON object" in one_line_error(capsys)


@pytest.mark.usefixtures("token_env")
def test_an_unreachable_broker_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broker", "stats", "--url", "http://127.0.0.1:9"]) == 1
    assert "unreachable" in one_line_error(capsys)


@pytest.mark.usefixtures("token_env")
def test_broker_client_commands(live_broker: LiveBroker, capsys: pytest.CaptureFixture[str]) -> None:
    url = ["--url", live_broker.url]
    assert main(["broker", "enqueue", "b-1", "--capability", "build", "--param", "image=app:1", *url]) == 0
    assert json.loads(capsys.readouterr().out)["parameters"] == {"image": "app:1"}
    assert main(["broker", "list", "--state", "queued", *url]) == 0
    assert [i["id"] for i in json.loads(capsys.readouterr().out)["items"]] == ["b-1"]
    assert main(["broker", "cancel", "b-1", "--reason", "demo", *url]) == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "cancelled"
    assert main(["broker", "stats", *url]) == 0
    assert json.loads(capsys.readouterr().out) == {"queued": 0, "claimed": 0, "done": 1}
    assert main(["broker", "get", "nope", *url]) == 1
    assert "not_found" in one_line_error(capsys)


@pytest.mark.usefixtures("token_env")
@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--capabilities", "build,paint"], "unknown capability 'paint'"),
        (["--capabilities-file", "/nonexistent/annotations"], "cannot read annotations file"),
        (["--capabilities", "build", "--max-items", "0"], "--max-items"),
        (["--capabilities", "build", "--lease-seconds", "1"], "--lease-seconds"),
        (["--capabilities", "build", "--poll-min", "5", "--poll-max", "1"], "--poll-min"),
    ],
)
def test_agent_refuses_bad_configuration(
    args: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["agent", "--broker", "http://127.0.0.1:9", "--pod-name", "p", "--namespace", "n"]
    assert main([*base, *args]) == 2
    assert problem in one_line_error(capsys)


def test_agent_needs_to_know_its_pod(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("POD_NAME", "POD_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)
    assert main(["agent", "--broker", "http://127.0.0.1:9"]) == 2
    assert "POD_NAME" in one_line_error(capsys)


def test_the_examples_fit_together() -> None:
    (namespace,) = yaml.safe_load_all((EXAMPLES / "namespace.yaml").read_text())
    assert namespace["metadata"]["labels"][INJECTION_LABEL] == "enabled"
    docs = list(yaml.safe_load_all((EXAMPLES / "agent-deployment.yaml").read_text()))
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    assert all(d["metadata"]["namespace"] == namespace["metadata"]["name"] for d in docs)
    template = deployment["spec"]["template"]
    assert template["metadata"]["annotations"][CAPABILITIES_ANNOTATION] == "build,test,migrate"
    (container,) = template["spec"]["containers"]
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {
        "POD_NAME": "metadata.name",
        "POD_NAMESPACE": "metadata.namespace",
        "POD_UID": "metadata.uid",
    }
    args = build_parser().parse_args(container["command"][1:])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    (item,) = volumes["podinfo"]["downwardAPI"]["items"]
    assert item["fieldRef"]["fieldPath"] == "metadata.annotations"
    assert args.capabilities_file == f"{mounts['podinfo']}/{item['path']}"
    assert args.token_file.startswith(mounts["broker-token"])
    assert args.grace_seconds < template["spec"]["terminationGracePeriodSeconds"]
    (role,) = [d for d in docs if d["kind"] == "Role"]
    assert set(role["rules"][0]["resources"]) == {"buildrequests", "testruns", "databasemigrations"}


def test_the_agent_deployment_meets_the_hardened_level(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-f", str(EXAMPLES / "agent-deployment.yaml"), "--level", "hardened"]) == 0
