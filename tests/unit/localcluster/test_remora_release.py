"""localcluster.remora_release without a control plane: the chart's names and values, the
arguments of the `remora` commands, and the subprocess wrapper (a real `remora --help`)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from common.names import CAPABILITIES_ANNOTATION
from localcluster import LocalCluster
from localcluster.remora_release import (
    ReleaseError,
    RemoraProcess,
    RemoraRelease,
    chart_fullname,
    hardened_pod,
    log_tail,
    url_mode_values,
)


def release(tmp_path: Path, **kwargs: Any) -> RemoraRelease:
    # A LocalCluster that is never started: only its paths and environment are read.
    return RemoraRelease(LocalCluster(tmp_path / "cluster"), None, tmp_path / "work", **kwargs)


@pytest.mark.parametrize(
    ("name", "fullname"),
    [("remora", "remora"), ("remora-scenarios", "remora-scenarios"), ("team-a", "team-a-remora")],
)
def test_fullname_follows_the_chart_rule(name: str, fullname: str) -> None:
    assert chart_fullname(name) == fullname


def test_url_mode_values_point_the_webhooks_at_localhost() -> None:
    values = url_mode_values("https://127.0.0.1:8443")
    assert values[::2] == ["--set"] * 3
    assert values[1::2] == [
        "webhook.url=https://127.0.0.1:8443",
        "certs.extraSANs={127.0.0.1}",
        "replicaCount=1",
    ]


def test_release_names_its_port_url_and_chart_objects(tmp_path: Path) -> None:
    rel = release(tmp_path, release="team-a", namespace="ns", values=["--set", "a=b"])
    assert rel.url == f"https://127.0.0.1:{rel.port}" and 0 < rel.port < 65536
    assert rel._values() == [*url_mode_values(rel.url), "--set", "a=b"]
    args = rel._certs_args()
    assert "--service=team-a-remora-webhook" in args and "--webhook-config=team-a-remora" in args
    assert "--namespace=ns" in args and f"--cert-dir={tmp_path / 'work' / 'certs'}" in args
    assert not any(a.startswith("--secret") for a in args)  # the command's default Secret


def test_release_credentials_reach_every_command(tmp_path: Path) -> None:
    token_config = tmp_path / "sa.kubeconfig"
    rel = release(tmp_path, kubeconfig=token_config, secret="team-certs")
    assert f"--kubeconfig={token_config}" in rel._certs_args() and "--secret=team-certs" in rel._certs_args()
    assert rel.env["KUBECONFIG"] == str(token_config)
    admin = release(tmp_path)
    assert admin.env["KUBECONFIG"] == str(admin.cluster.kubeconfig)


def test_hardened_pod_carries_capabilities_and_labels() -> None:
    pod = hardened_pod("agent", "build,test", app="agent")
    assert pod["metadata"] == {
        "name": "agent",
        "labels": {"app": "agent"},
        "annotations": {CAPABILITIES_ANNOTATION: "build,test"},
    }
    assert hardened_pod("plain", None)["metadata"]["annotations"] == {}
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_a_remora_subprocess_logs_into_its_file(tmp_path: Path) -> None:
    proc = RemoraProcess("help", ["--help"], tmp_path, dict(os.environ))
    deadline = time.monotonic() + 30
    while proc.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.stop()
    assert proc.popen.returncode == 0
    assert "usage" in proc.tail().lower()
    assert proc.log == tmp_path / "help.log"


def test_a_failing_command_says_what_failed(tmp_path: Path) -> None:
    rel = release(tmp_path)
    with pytest.raises(ReleaseError, match=r"remora no-such-command exited 2"):
        rel.run("no-such-command")


def test_log_tail_of_a_missing_log() -> None:
    assert log_tail(Path("/nonexistent/serve.log")) == "<no log>"
