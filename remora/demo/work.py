"""The demo's work items: what to enqueue, how to watch them move, and the kubelet for their Jobs.

Each tick reads the broker's items, the capability resources, the Jobs and their pods,
and reports what moved to :class:`Progress`. It also plays the kubelet for the Jobs the
operators create: a new Job pod is marked Running, and a moment later Succeeded with the
termination message the work would leave (a TestRun's counts, a build's image digest, a
migration's summary), which the operator turns into the resource's status.result.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

from agent.client import BrokerClient, WorkItem
from agent.resources import item_of
from common.kube import request
from common.names import API_VERSION, KIND_BY_NAME, KINDS
from remora.demo.progress import Progress

Obj = dict[str, Any]
RUN_SECONDS = 1.5  # how long a Job pod "runs" before it succeeds
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"

# One work item per capability: parameters the CRDs accept.
PARAMETERS: dict[str, Obj] = {
    "build": {
        "image": "registry.example/builder:1",
        "source": {"git": {"url": "https://git.example/shop.git"}},
    },
    "test": {"image": "registry.example/shop-tests:1", "command": ["pytest", "-q"]},
    "migrate": {"image": "registry.example/shop-migrate:1", "databaseSecretRef": {"name": "orders-db"}},
}


def termination_message(capability: str, job_name: str) -> str:
    """What the work itself would write to /dev/termination-log."""
    if capability == "build":
        return "sha256:" + hashlib.sha256(job_name.encode()).hexdigest()
    if capability == "test":
        return json.dumps({"passed": 42, "failed": 0, "skipped": 1})
    return "applied 3 migrations (0001_orders, 0002_index_sku, 0003_drop_legacy)"


def describe_result(item: WorkItem) -> str:
    details = item.details or {}
    result = details.get("result")
    if isinstance(result, Mapping):
        if "summary" in result:
            return str(result["summary"])[:80]
        return ", ".join(f"{k} {v}" for k, v in result.items())[:80]
    return str(details.get("message") or details.get("reason") or "")[:80]


class WorkWatcher:
    """Follows the demo's items through broker, resource, Job and pod; runs the Job pods."""

    def __init__(
        self, api: Any, kubelet: Any, broker: BrokerClient, namespace: str, progress: Progress
    ) -> None:
        self.api = api
        self.kubelet = kubelet
        self.broker = broker
        self.namespace = namespace
        self.progress = progress
        self.running: dict[str, float] = {}  # Job pod name -> when the demo marked it Running
        self.finished: set[str] = set()
        self.outcomes: dict[str, WorkItem] = {}

    def enqueue(self, capabilities: list[str], run_id: str) -> None:
        for capability in capabilities:
            item_id = f"{capability}-{run_id}"
            self.broker.enqueue(item_id, capability, PARAMETERS[capability])
            self.progress.add(item_id, capability)
        for item_id in self.progress.items:
            self.progress.see(item_id, "queued", "enqueued at the broker")

    def tick(self) -> None:
        items = {i.id: i for i in self._broker_items()}
        for item_id, item in items.items():
            if item.state == "claimed" and item.lease:
                self.progress.see(item_id, "claimed", f"claimed by agent {item.lease.holder}")
        resources = self._resources()
        for item_id, resource in resources.items():
            meta = resource["metadata"]
            self.progress.see(item_id, "resource", f"{resource['kind']}/{meta['name']} created by the agent")
        jobs = self._jobs(resources)
        pods = self._job_pods()
        for item_id, job in jobs.items():
            job_name = job["metadata"]["name"]
            self.progress.see(item_id, "job", f"Job {job_name} created by the {job['capability']} sidecar")
            for pod in pods.get(job_name, []):
                self._play_kubelet(item_id, job["capability"], job_name, pod)
        for item_id, item in items.items():
            if item.state == "done" and item.outcome:
                self.outcomes[item_id] = item
                stage = "succeeded" if item.outcome == "succeeded" else "failed"
                self.progress.see(item_id, stage, describe_result(item))

    def _play_kubelet(self, item_id: str, capability: str, job_name: str, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        phase = (pod.get("status") or {}).get("phase", "Pending")
        if name in self.finished or pod["metadata"].get("deletionTimestamp"):
            return
        if phase == "Pending" and name not in self.running:
            self.kubelet.run_pod(self.namespace, name)
            self.running[name] = time.monotonic()
            self.progress.see(item_id, "running", f"pod {name} Running (the demo plays its kubelet)")
        elif name in self.running and time.monotonic() - self.running[name] >= RUN_SECONDS:
            self.kubelet.finish_pod(self.namespace, name, 0, termination_message(capability, job_name))
            self.finished.add(name)

    def _broker_items(self) -> list[WorkItem]:
        items, _ = self.broker.list_items(limit=100)
        return [i for i in items if i.id in self.progress.items]

    def _resources(self) -> dict[str, Obj]:
        found: dict[str, Obj] = {}
        for kind in KINDS:
            path = f"/apis/{API_VERSION}/namespaces/{self.namespace}/{kind.plural}"
            for resource in request(self.api, "GET", path).get("items") or []:
                ids = item_of(resource)
                if ids and ids[0] in self.progress.items:
                    resource.setdefault("kind", kind.kind)
                    found[ids[0]] = resource
        return found

    def _jobs(self, resources: Mapping[str, Obj]) -> dict[str, Obj]:
        by_uid = {r["metadata"]["uid"]: item_id for item_id, r in resources.items()}
        found: dict[str, Obj] = {}
        for job in (
            request(self.api, "GET", f"/apis/batch/v1/namespaces/{self.namespace}/jobs").get("items") or []
        ):
            for owner in job["metadata"].get("ownerReferences") or []:
                if (
                    owner.get("controller")
                    and owner.get("uid") in by_uid
                    and owner.get("kind") in KIND_BY_NAME
                ):
                    job["capability"] = KIND_BY_NAME[owner["kind"]].capability
                    found[by_uid[owner["uid"]]] = job
        return found

    def _job_pods(self) -> dict[str, list[Obj]]:
        query = {"labelSelector": JOB_NAME_LABEL}
        pods = request(self.api, "GET", f"/api/v1/namespaces/{self.namespace}/pods", query=query)
        by_job: dict[str, list[Obj]] = {}
        for pod in pods.get("items") or []:
            by_job.setdefault(pod["metadata"]["labels"][JOB_NAME_LABEL], []).append(pod)
        return by_job
