"""Wiring for `remora agent`: find out who and what this pod is, then run the loop until SIGTERM."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from agent.agent import Agent, AgentConfig
from agent.client import BrokerClient, BrokerError
from agent.cluster import KubeCluster
from agent.podinfo import (
    PodIdentity,
    PodInfoError,
    capabilities_from_annotations,
    known_capabilities,
    read_annotations_file,
)
from common.kube import ApiError, load_api_client
from common.names import parse_capability_list

log = logging.getLogger("remora.agent")
MAX_LABEL_VALUE = 63


class AgentSetupError(Exception):
    """The agent cannot start as configured; the message says what to fix."""


def resolve_capabilities(explicit: str | None, annotations_file: str) -> list[str]:
    try:
        if explicit:
            return known_capabilities(parse_capability_list(explicit))
        return capabilities_from_annotations(read_annotations_file(annotations_file))
    except PodInfoError as exc:
        raise AgentSetupError(f"capabilities: {exc}") from None


def run_agent(
    *,
    broker_url: str,
    token: str,
    capabilities: str | None,
    capabilities_file: str,
    kubeconfig: str | None,
    pod_name: str,
    namespace: str,
    pod_uid: str | None,
    max_items: int,
    lease_seconds: int,
    poll_min: float,
    poll_max: float,
    grace_seconds: float,
) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if len(pod_name) > MAX_LABEL_VALUE:
        raise AgentSetupError(
            f"pod name {pod_name[:70]!r}... is too long to be the {MAX_LABEL_VALUE}-char label"
        )
    caps = resolve_capabilities(capabilities, capabilities_file)
    try:
        api = load_api_client(kubeconfig)
    except Exception as exc:  # the kubernetes loader raises several unrelated types
        raise AgentSetupError(f"cannot load Kubernetes configuration: {exc}") from None
    cluster = KubeCluster(api, namespace)
    if not pod_uid:
        try:
            pod_uid = cluster.pod_uid(pod_name)
        except ApiError as exc:
            raise AgentSetupError(
                f"cannot read pod {namespace}/{pod_name} for its UID (set POD_UID): {exc}"
            ) from None
    try:
        broker = BrokerClient(broker_url, token)
    except BrokerError as exc:
        raise AgentSetupError(str(exc)) from None
    config = AgentConfig(
        pod=PodIdentity(pod_name, namespace, pod_uid),
        capabilities=tuple(caps),
        max_items=max_items,
        lease_seconds=lease_seconds,
        poll_min=poll_min,
        poll_max=poll_max,
        grace_seconds=grace_seconds,
    )
    agent = Agent(config, broker, cluster)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: no more claims; finishing or releasing held work", signum)
        agent.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return agent.run()
    finally:
        broker.close()
