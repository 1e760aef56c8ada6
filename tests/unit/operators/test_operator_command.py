"""`remora operator`: bad arguments end with exit 2 and one readable line."""

from __future__ import annotations

from typing import Any

import pytest

from remora.cli import main


@pytest.fixture(autouse=True)
def no_pod_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("POD_NAME", "POD_NAMESPACE", "KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["build", "--agent", "a"], "no namespace"),
        (["build", "--namespace", "ns"], "no agent pod"),
        (["build", "--namespace", "Bad_NS", "--agent", "a"], "not a valid namespace name"),
        (["build", "--namespace", "ns", "--agent", "a" * 70], "not a pod name usable as a label value"),
        (["test", "--namespace", "ns", "--agent", "a", "--workers", "0"], "--workers 0 is out of range"),
        (["migrate", "--namespace", "ns", "--agent", "a", "--probe-port", "70000"], "not a port number"),
        (["build", "--namespace", "ns", "--agent", "a", "--git-image", "a b"], "not an image reference"),
        (
            ["build", "--namespace", "ns", "--agent", "a", "--kubeconfig", "/nonexistent"],
            "Kubernetes configuration",
        ),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["operator", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unknown_capability_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["operator", "deploy", "--namespace", "ns", "--agent", "a"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_pod_environment_supplies_namespace_and_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from remora.commands.operator import _options, register

    parser = argparse.ArgumentParser()
    register(parser)
    monkeypatch.setenv("POD_NAMESPACE", "team-a")
    monkeypatch.setenv("POD_NAME", "agent-7f9c")
    options = _options(parser.parse_args(["build"]))
    assert options["namespace"] == "team-a" and options["agent"] == "agent-7f9c"
    assert options["capability"] == "build" and options["probe_port"] == 8481


def test_each_capability_has_its_own_default_probe_port() -> None:
    import argparse

    from remora.commands.operator import _options, register

    parser = argparse.ArgumentParser()
    register(parser)
    ports = {
        cap: _options(parser.parse_args([cap, "--namespace", "ns", "--agent", "a"]))["probe_port"]
        for cap in ("build", "test", "migrate")
    }
    assert len(set(ports.values())) == 3
    assert (
        _options(parser.parse_args(["test", "--namespace", "ns", "--agent", "a", "--probe-port", "9"]))[
            "probe_port"
        ]
        == 9
    )


def test_a_probe_port_in_use_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    import socket

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv = ["operator", "build", "--namespace", "ns", "--agent", "a", "--kubeconfig", str(kubeconfig)]
        argv += ["--probe-host", "127.0.0.1", "--probe-port", str(port)]
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot listen on 127.0.0.1:" in err and len(err.strip().splitlines()) == 1
