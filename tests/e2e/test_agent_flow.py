"""Broker -> agent -> capability resource -> operator -> Job -> (fake) kubelet -> outcome at the broker.

Everything is a real process against the real local control plane: `remora broker`,
`remora agent` (capabilities from a downward-API style annotations file, pod UID read from
the API) and one `remora operator <capability>` per capability, as the sidecars would run.
The agent pod is a real Pod object (it stays Pending: there is no kubelet), so owner
references and garbage collection are the real thing. The tests play the kubelet for the
Jobs' pods through the API.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from agent.client import BrokerClient, WorkItem
from agent.resources import resource_name
from common import kube as k
from common.names import KIND_BY_CAPABILITY
from localcluster import wait_until
from localcluster.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "operators" / "crds"
REMORA = Path(sys.executable).parent / "remora"
TOKEN = "e2e-broker-token"
AGENT_POD = "agent-0"
PARAMS: dict[str, dict[str, Any]] = {
    "build": {
        "image": "registry.example/builder:1",
        "source": {"git": {"url": "https://git.example/app.git"}},
    },
    "test": {"image": "registry.example/tests:1", "command": ["pytest", "-q"]},
    "migrate": {"image": "registry.example/migrate:1", "databaseSecretRef": {"name": "orders-db"}},
}
# What the Job's main container leaves as its termination message, and the status.result it makes.
MESSAGES = {
    "build": ("sha256:0123abcd", {"summary": "sha256:0123abcd"}),
    "test": ('{"passed": 12, "failed": 0}', {"passed": 12, "failed": 0, "skipped": 0}),
    "migrate": ("applied 3 migrations", {"summary": "applied 3 migrations"}),
}
Obj = dict[str, Any]


class Proc:
    """One `remora ...` subprocess with its log, stopped with SIGTERM (then SIGKILL) at the end."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log = log_path.open("wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.log_path.name}: exited {self.proc.returncode}:\n{self.tail()}")
        return True

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return int(self.proc.returncode)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


class Flow:
    def __init__(self, cluster: Any, kube: Any, namespace: str, tmp_path: Path) -> None:
        self.kube = kube
        self.namespace = namespace
        self.tmp_path = tmp_path
        self.env = {**cluster.env(), "PYTHONUNBUFFERED": "1", "REMORA_BROKER_TOKEN": TOKEN}
        self.procs: list[Proc] = []
        port = free_port()
        self.broker_url = f"http://127.0.0.1:{port}"
        self.broker = self._start(
            "broker", ["broker", "--db", str(tmp_path / "broker.db"), "--port", str(port)]
        )
        wait_until(lambda: self.broker.alive() and http_ok(f"{self.broker_url}/healthz"), timeout=20,
                   description="broker up")  # fmt: skip
        self.client = BrokerClient(self.broker_url, TOKEN)
        self.pod = self._agent_pod()
        for capability in PARAMS:
            probe = free_port()
            op = self._start(
                f"{capability}-operator",
                ["operator", capability, "--namespace", namespace, "--agent", AGENT_POD,
                 "--probe-host", "127.0.0.1", "--probe-port", str(probe)],
            )  # fmt: skip
            ready = f"http://127.0.0.1:{probe}/readyz"
            wait_until(partial(lambda op, url: op.alive() and http_ok(url), op, ready), timeout=30,
                       description=f"{capability} operator ready")  # fmt: skip
        self.agent = self.start_agent()

    def _start(self, name: str, args: list[str]) -> Proc:
        proc = Proc([str(REMORA), *args], self.env, self.tmp_path / f"{name}.log")
        self.procs.append(proc)
        return proc

    def _agent_pod(self) -> Obj:
        """The agent's own Pod object (never scheduled here) and its downward-API annotations file."""
        annotations = {"remora.dev/capabilities": "build,test,migrate"}
        pod = k.request(
            self.kube,
            "POST",
            f"/api/v1/namespaces/{self.namespace}/pods",
            body={
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": AGENT_POD, "annotations": annotations},
                "spec": {"containers": [{"name": "agent", "image": "ghcr.io/remora-dev/remora:0.1.0"}]},
            },
        )
        lines = [f'{key}="{value}"' for key, value in sorted(annotations.items())]
        (self.tmp_path / "annotations").write_text("\n".join(lines) + "\n")
        return dict(pod)

    def start_agent(self, grace_seconds: float = 5) -> Proc:
        # No --pod-uid: the agent reads its pod's UID from the API, as without the POD_UID env.
        return self._start(
            "agent",
            ["agent", "--broker", self.broker_url, "--capabilities-file", str(self.tmp_path / "annotations"),
             "--pod-name", AGENT_POD, "--namespace", self.namespace, "--lease-seconds", "15",
             "--poll-min", "0.1", "--poll-max", "0.5", "--grace-seconds", str(grace_seconds)],
        )  # fmt: skip

    def resource(self, capability: str, item_id: str) -> Obj | None:
        kind = KIND_BY_CAPABILITY[capability]
        path = f"/apis/remora.dev/v1alpha1/namespaces/{self.namespace}/{kind.plural}/{resource_name(item_id)}"
        try:
            return dict(k.request(self.kube, "GET", path))
        except k.ApiError as exc:
            if exc.not_found:
                return None
            raise

    def wait_job_name(self, capability: str, item_id: str) -> str:
        def job_name() -> str | None:
            self.agent.alive()
            obj = self.resource(capability, item_id)
            return ((obj or {}).get("status") or {}).get("jobName")

        return str(wait_until(job_name, timeout=30, description=f"{item_id}: a Job"))

    def wait_done(self, item_id: str, timeout: float = 30) -> WorkItem:
        def finished() -> WorkItem | None:
            self.agent.alive()
            item = self.client.get(item_id)
            return item if item.state == "done" else None

        result = wait_until(finished, timeout=timeout, description=f"{item_id}: outcome at the broker")
        assert isinstance(result, WorkItem)
        return result

    def close(self) -> None:
        self.client.close()
        for proc in reversed(self.procs):
            proc.stop()


@pytest.fixture
def flow(  # noqa: PLR0917 - pytest passes fixtures by name
    cluster: Any, kube: Any, kubectl: Any, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Flow]:
    kubectl("apply", "--server-side", "-f", str(CRD_DIR))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRD_DIR))
    failed_before = request.session.testsfailed
    running = Flow(cluster, kube, namespace, tmp_path)
    try:
        yield running
    finally:
        running.close()
        if request.session.testsfailed > failed_before:  # the test failed: show what the processes said
            for proc in running.procs:
                sys.stderr.write(f"--- {proc.log_path.name}\n{proc.tail()}\n")


@pytest.mark.parametrize("capability", ["build", "test", "migrate"])
def test_an_item_runs_through_its_capability_and_is_reported(
    flow: Flow, fake_kubelet: Any, capability: str
) -> None:
    item_id = f"{capability}-item-1"
    flow.client.enqueue(item_id, capability, PARAMS[capability])
    job_name = flow.wait_job_name(capability, item_id)

    resource = flow.resource(capability, item_id)
    assert resource is not None
    assert resource["metadata"]["labels"]["remora.dev/agent"] == AGENT_POD
    (owner,) = resource["metadata"]["ownerReferences"]
    assert owner["kind"] == "Pod" and owner["uid"] == flow.pod["metadata"]["uid"]
    assert not owner.get("controller") and not owner.get("blockOwnerDeletion")
    held = flow.client.get(item_id)
    assert held.state == "claimed" and held.lease and held.lease.holder == AGENT_POD

    message, result = MESSAGES[capability]
    fake_kubelet.run_and_finish_job_pod(flow.namespace, job_name, 0, message)
    item = flow.wait_done(item_id)
    assert item.outcome == "succeeded", item.details
    assert item.details and item.details["phase"] == "Succeeded"
    assert item.details["result"] == result
    wait_until(lambda: flow.resource(capability, item_id) is None, timeout=30, description="resource deleted")


def test_a_failed_job_is_reported_failed(flow: Flow, fake_kubelet: Any) -> None:
    flow.client.enqueue("t-fail", "test", PARAMS["test"])
    job_name = flow.wait_job_name("test", "t-fail")
    fake_kubelet.run_and_finish_job_pod(flow.namespace, job_name, 1, '{"passed": 3, "failed": 1}')
    item = flow.wait_done("t-fail")
    assert item.outcome == "failed"
    assert item.details and item.details["result"]["failed"] == 1
    reasons = {c["reason"] for c in item.details["conditions"] if c["type"] == "Failed"}
    assert reasons == {"BackoffLimitExceeded"}


def test_a_cancel_at_the_broker_stops_the_job(flow: Flow) -> None:
    flow.client.enqueue("b-cancel", "build", PARAMS["build"])
    flow.wait_job_name("build", "b-cancel")
    flow.client.cancel("b-cancel", "not needed any more")
    item = flow.wait_done("b-cancel")
    assert item.outcome == "failed"
    assert item.details
    reasons = {c["reason"] for c in item.details["conditions"] if c["type"] == "Failed"}
    assert reasons == {"Cancelled"}


def test_parameters_the_crd_refuses_are_reported_failed(flow: Flow) -> None:
    flow.client.enqueue("m-bad", "migrate", {"image": "x"})  # databaseSecretRef is required
    item = flow.wait_done("m-bad")
    assert item.outcome == "failed" and item.details and item.details["reason"] == "InvalidParameters"
    assert "databaseSecretRef" in item.details["message"]


def test_sigterm_releases_held_work_and_a_restart_picks_it_up(flow: Flow, fake_kubelet: Any) -> None:
    flow.client.enqueue("b-held", "build", PARAMS["build"])
    flow.wait_job_name("build", "b-held")
    assert flow.agent.stop() == 0  # grace 5s: the Job never finishes, so the lease is released
    released = flow.client.get("b-held")
    assert released.state == "queued" and released.attempts == 1
    wait_until(
        lambda: flow.resource("build", "b-held") is None, timeout=30, description="released work deleted"
    )

    flow.agent = flow.start_agent()
    job_name = flow.wait_job_name("build", "b-held")
    assert flow.client.get("b-held").attempts == 2
    fake_kubelet.run_and_finish_job_pod(flow.namespace, job_name, 0, "second try")
    assert flow.wait_done("b-held").outcome == "succeeded"


def test_a_restarted_agent_carries_on_with_its_resources(flow: Flow, fake_kubelet: Any) -> None:
    flow.client.enqueue("t-crash", "test", PARAMS["test"])
    job_name = flow.wait_job_name("test", "t-crash")
    flow.agent.proc.kill()  # a crash: no release, the resource stays
    flow.agent.proc.wait()
    flow.agent = flow.start_agent()
    fake_kubelet.run_and_finish_job_pod(flow.namespace, job_name, 0, "after restart")
    item = flow.wait_done("t-crash")
    assert item.outcome == "succeeded" and item.attempts == 1
    assert os.path.exists(flow.agent.log_path)
    assert "picking up" in flow.agent.tail()


def test_a_vanished_agent_pod_takes_its_work_along_and_the_lease_hands_it_on(
    flow: Flow, fake_kubelet: Any
) -> None:
    flow.client.enqueue("b-gone", "build", PARAMS["build"])
    flow.wait_job_name("build", "b-gone")
    flow.agent.proc.kill()  # the node died with the pod on it: no release
    flow.agent.proc.wait()
    k.request(flow.kube, "DELETE", f"/api/v1/namespaces/{flow.namespace}/pods/{AGENT_POD}")

    def jobs() -> list[Obj]:
        return list(k.request(flow.kube, "GET", f"/apis/batch/v1/namespaces/{flow.namespace}/jobs")["items"])

    # Garbage collection: the pod owned the resource, the resource owned the Job.
    wait_until(lambda: flow.resource("build", "b-gone") is None, timeout=60, description="resource collected")
    wait_until(lambda: not jobs(), timeout=60, description="Job collected")
    # Meanwhile the broker holds the item until the lease runs out (GC may take longer than that).
    assert flow.client.get("b-gone").state in ("claimed", "queued")

    flow.pod = flow._agent_pod()  # the replacement pod (same name, new UID)
    flow.agent = flow.start_agent()
    job_name = flow.wait_job_name("build", "b-gone")  # claimed again once the old lease expired
    resource = flow.resource("build", "b-gone")
    assert resource is not None
    assert resource["metadata"]["ownerReferences"][0]["uid"] == flow.pod["metadata"]["uid"]
    fake_kubelet.run_and_finish_job_pod(flow.namespace, job_name, 0, "rebuilt")
    item = flow.wait_done("b-gone")
    assert item.outcome == "succeeded" and item.attempts == 2
