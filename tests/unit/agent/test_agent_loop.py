"""The agent's state handling: a real broker on loopback, an in-memory stand-in for the apiserver."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest
from conftest import LiveBroker
from fake_cluster import REFUSED_FIELD, FakeCluster

from agent import protocol
from agent.agent import Agent, AgentConfig
from agent.client import BrokerClient
from agent.podinfo import PodIdentity
from agent.resources import ITEM_ID_ANNOTATION, LEASE_TOKEN_ANNOTATION, desired_resource, resource_name
from common.names import AGENT_LABEL, KIND_BY_CAPABILITY

POD = PodIdentity("agent-pod-1", "work", "0b7e-pod-uid")
CONFIG = AgentConfig(
    pod=POD,
    capabilities=("build", "test", "migrate"),
    max_items=4,
    lease_seconds=6,
    poll_min=0.05,
    poll_max=0.2,
    grace_seconds=1.0,
)
BUILD = KIND_BY_CAPABILITY["build"]


def wait_for(what: str, check: Callable[[], object], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Running:
    agent: Agent
    thread: threading.Thread
    cluster: FakeCluster
    broker: BrokerClient
    result: list[int]

    def stop(self, timeout: float = 15.0) -> None:
        self.agent.request_stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "agent did not stop"


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    fake = FakeCluster()
    yield fake
    fake.close()


@pytest.fixture
def start_agent(live_broker: LiveBroker, cluster: FakeCluster) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(config: AgentConfig = CONFIG) -> Running:
        broker = live_broker.client()
        agent = Agent(config, broker, cluster)
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(agent.run()), daemon=True)
        thread.start()
        running = Running(agent, thread, cluster, broker, result)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.thread.is_alive():
            running.agent.request_stop()
            running.thread.join(15)
        running.broker.close()


def done(client: BrokerClient, item_id: str) -> Callable[[], bool]:
    return lambda: client.get(item_id).state == protocol.DONE


@pytest.mark.parametrize("capability", ["build", "test", "migrate"])
def test_an_item_becomes_its_resource_and_its_outcome_is_reported(
    capability: str, client: BrokerClient, cluster: FakeCluster, start_agent: Callable[..., Running]
) -> None:
    kind = KIND_BY_CAPABILITY[capability]
    params = {"image": "registry.example/tool:1", "args": ["--fast"]}
    client.enqueue(f"work-{capability}", capability, params)
    start_agent()
    name = resource_name(f"work-{capability}")
    resource = wait_for("the resource", lambda: cluster.find(kind, name))
    assert isinstance(resource, dict)
    meta = resource["metadata"]
    assert resource["apiVersion"] == "remora.dev/v1alpha1" and resource["kind"] == kind.kind
    assert meta["labels"] == {AGENT_LABEL: POD.name}
    assert meta["ownerReferences"] == [{"apiVersion": "v1", "kind": "Pod", "name": POD.name, "uid": POD.uid}]
    assert meta["annotations"][ITEM_ID_ANNOTATION] == f"work-{capability}"
    assert resource["spec"] == {**params, "cancel": False}
    held = client.get(f"work-{capability}")
    assert held.state == protocol.CLAIMED and held.lease and held.lease.holder == POD.name

    cluster.set_status(kind, name, {"phase": "Running"})
    time.sleep(0.2)
    assert client.get(f"work-{capability}").state == protocol.CLAIMED
    cluster.set_status(kind, name, {"phase": "Succeeded", "result": {"summary": "ok"}, "jobName": "j-1"})
    wait_for("the outcome", done(client, f"work-{capability}"))
    final = client.get(f"work-{capability}")
    assert final.outcome == "succeeded"
    assert (
        final.details
        and final.details["result"] == {"summary": "ok"}
        and final.details["phase"] == "Succeeded"
    )
    wait_for("the resource to be deleted", lambda: cluster.find(kind, name) is None)


def test_a_failed_resource_is_reported_failed_with_its_conditions(
    client: BrokerClient, cluster: FakeCluster, start_agent: Callable[..., Running]
) -> None:
    client.enqueue("w1", "build", {"image": "x"})
    start_agent()
    wait_for("the resource", lambda: cluster.find(BUILD, "w1"))
    conditions = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "exit 2"}]
    cluster.set_status(BUILD, "w1", {"phase": "Failed", "conditions": conditions})
    wait_for("the outcome", done(client, "w1"))
    final = client.get("w1")
    assert final.outcome == "failed" and final.details and final.details["conditions"] == conditions


def test_only_its_own_capabilities_are_claimed(
    client: BrokerClient, cluster: FakeCluster, start_agent: Callable[..., Running]
) -> None:
    client.enqueue("t1", "test", {})
    client.enqueue("b1", "build", {})
    start_agent(replace(CONFIG, capabilities=("build",)))
    wait_for("the build resource", lambda: cluster.find(BUILD, "b1"))
    time.sleep(0.5)
    assert client.get("t1").state == protocol.QUEUED
    assert cluster.creates == [("BuildRequest", "b1")]


def test_a_cancel_at_the_broker_becomes_spec_cancel(
    client: BrokerClient, cluster: FakeCluster, start_agent: Callable[..., Running]
) -> None:
    client.enqueue("c1", "build", {"image": "x"})
    start_agent()
    wait_for("the resource", lambda: cluster.find(BUILD, "c1"))
    client.cancel("c1", "user changed their mind")
    wait_for("spec.cancel", lambda: (cluster.find(BUILD, "c1") or {}).get("spec", {}).get("cancel") is True)
    cancelled = [
        {"type": "Failed", "status": "True", "reason": "Cancelled", "message": "cancelled by spec.cancel"}
    ]
    cluster.set_status(BUILD, "c1", {"phase": "Failed", "conditions": cancelled})
    wait_for("the outcome", done(client, "c1"))
    assert client.get("c1").outcome == "failed"


def test_a_restart_picks_up_its_resources_instead_of_starting_again(
    client: BrokerClient, cluster: FakeCluster, start_agent: Callable[..., Running]
) -> None:
    client.enqueue("r1", "test", {"suite": "unit"})
    (item,) = client.claim(POD.name, ["test"], 1, 600).items
    assert item.lease and item.lease.token
    kind = KIND_BY_CAPABILITY["test"]
    cluster.create(kind, desired_resource(kind, "r1", {"suite": "unit"}, POD, item.lease.token))
    cluster.creates.clear()
    start_agent()
    time.sleep(0.5)
    assert cluster.creates == []
    cluster.set_status(kind, "r1", {"phase": "Succeeded"})
    wait_for("the outcome", done(client, "r1"))
    assert client.get("r1").attempts == 1


def test_an_existing_resource_for_the_item_is_taken_over(
    live_broker: LiveBroker, client: BrokerClient, cluster: FakeCluster, start_agent: Callable[..., Running]
) -> None:
    old_pod = PodIdentity("old-agent", "work", "old-uid")
    client.enqueue("e1", "build", {"image": "x"})
    (item,) = client.claim(old_pod.name, ["build"], 1, 10).items
    assert item.lease and item.lease.token
    cluster.create(BUILD, desired_resource(BUILD, "e1", {"image": "x"}, old_pod, item.lease.token))
    live_broker.clock.advance(11)  # the old agent's lease lapses
    start_agent()
    wait_for("the takeover", lambda: cluster.find(BUILD, "e1")["metadata"]["labels"][AGENT_LABEL] == POD.name)  # type: ignore[index]
    taken = cluster.find(BUILD, "e1")
    assert taken is not None
    assert taken["metadata"]["annotations"][LEASE_TOKEN_ANNOTATION] != item.lease.token
    assert taken["metadata"]["ownerReferences"][0]["uid"] == POD.uid
    cluster.set_status(BUILD, "e1", {"phase": "Succeeded"})
    wait_for("the outcome", done(client, "e1"))
    assert client.get("e1").attempts == 2


def test_a_lost_lease_deletes_the_work(
    live_broker: LiveBroker, client: BrokerClient, cluster: FakeCluster, start_agent: Callable[..., Running]
) -> None:
    client.enqueue("l1", "build", {"image": "x"})
    start_agent(replace(CONFIG, capabilities=("build",), max_items=1))
    first = wait_for("the resource", lambda: cluster.find(BUILD, "l1"))
    assert isinstance(first, dict)
    client.enqueue("l2", "test", {})  # not ours: keeps the queue non-empty for nobody
    live_broker.clock.advance(1000)  # the lease lapses; the agent learns on its next extension
    wait_for("a new claim", lambda: client.get("l1").attempts == 2, timeout=15)
    again = wait_for(
        "the resource under the new lease",
        lambda: (
            (o := cluster.find(BUILD, "l1"))
            and o["metadata"]["annotations"][LEASE_TOKEN_ANNOTATION]
            != first["metadata"]["annotations"][LEASE_TOKEN_ANNOTATION]
        ),
        timeout=15,
    )
    assert again


def test_parameters_the_api_refuses_are_reported_failed(
    client: BrokerClient, cluster: FakeCluster, start_agent: Callable[..., Running]
) -> None:
    client.enqueue("bad1", "build", {"image": "x", REFUSED_FIELD: 1})
    start_agent()
    wait_for("the outcome", done(client, "bad1"))
    final = client.get("bad1")
    assert final.outcome == "failed" and final.details and final.details["reason"] == "InvalidParameters"
    assert REFUSED_FIELD in final.details["message"]


def test_a_resource_deleted_underneath_is_reported_unknown(
    client: BrokerClient, cluster: FakeCluster, start_agent: Callable[..., Running]
) -> None:
    client.enqueue("d1", "build", {"image": "x"})
    start_agent()
    wait_for("the resource", lambda: cluster.find(BUILD, "d1"))
    cluster.delete(BUILD, "d1")
    wait_for("the outcome", done(client, "d1"))
    assert client.get("d1").outcome == "unknown"


def test_stop_releases_unfinished_work_when_the_grace_period_ends(
    client: BrokerClient, cluster: FakeCluster, start_agent: Callable[..., Running]
) -> None:
    client.enqueue("s1", "build", {"image": "x"})
    running = start_agent(replace(CONFIG, grace_seconds=1.0))
    wait_for("the resource", lambda: cluster.find(BUILD, "s1"))
    client.enqueue("s2", "build", {"image": "x"})
    started = time.monotonic()
    running.stop()
    assert time.monotonic() - started < 2.0
    assert running.result == [0]
    item = client.get("s1")
    assert item.state == protocol.QUEUED and item.lease is None
    assert cluster.find(BUILD, "s1") is None
    assert client.get("s2").state == protocol.QUEUED  # nothing claimed after the stop


def test_stop_lets_held_work_finish_within_the_grace_period(
    client: BrokerClient, cluster: FakeCluster, start_agent: Callable[..., Running]
) -> None:
    client.enqueue("f1", "build", {"image": "x"})
    running = start_agent(replace(CONFIG, grace_seconds=20.0))
    wait_for("the resource", lambda: cluster.find(BUILD, "f1"))
    running.agent.request_stop()
    time.sleep(0.3)
    assert running.thread.is_alive()
    cluster.set_status(BUILD, "f1", {"phase": "Succeeded"})
    running.thread.join(5)
    assert not running.thread.is_alive()
    assert client.get("f1").outcome == "succeeded"


def test_a_broker_outage_delays_reports_but_loses_nothing(
    live_broker: LiveBroker, client: BrokerClient, cluster: FakeCluster, start_agent: Callable[..., Running]
) -> None:
    client.enqueue("o1", "build", {"image": "x"})
    running = start_agent()
    wait_for("the resource", lambda: cluster.find(BUILD, "o1"))
    good = running.agent.broker
    running.agent.broker = BrokerClient("http://127.0.0.1:9", "x", timeout=0.5)  # nothing listens there
    cluster.set_status(BUILD, "o1", {"phase": "Succeeded"})
    time.sleep(0.5)
    assert cluster.find(BUILD, "o1") is not None  # kept until the outcome is reported
    running.agent.broker = good
    wait_for("the outcome", done(client, "o1"), timeout=15)
