"""Play the kubelet through the API: write pod status the way a kubelet would.

The local control plane has no scheduler and no kubelet, so pods stay Pending
with no ``nodeName``. Controllers that only read pod status (the Job controller
counts phases, the ReplicaSet controller counts ready pods) work normally once
this helper writes that status through the ``pods/status`` subresource.

Pods are handled as plain dicts (JSON as the API serves it), never as generated
client models. Unscheduled pods are deleted at once by the API server (no
graceful termination without a node), which is what tests usually want.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
JOB_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
FAKE_RUNTIME = "remora-fake"

Pod = dict[str, Any]


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(kind: str, status: bool, now: str, reason: str | None = None) -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": kind,
        "status": "True" if status else "False",
        "lastProbeTime": None,
        "lastTransitionTime": now,
    }
    if reason:
        cond["reason"] = reason
    return cond


def is_native_sidecar(container: dict[str, Any]) -> bool:
    return container.get("restartPolicy") == "Always"


class FakeKubelet:
    """Writes pod status like a kubelet would; ``api_client`` is a ``kubernetes.client.ApiClient``."""

    def __init__(self, api_client: client.ApiClient, *, pod_ip: str = "127.0.0.1") -> None:
        self.api_client = api_client
        # Any: bodies are plain dicts and responses raw JSON, not the generated models
        self.core: Any = client.CoreV1Api(api_client)
        self.pod_ip = pod_ip

    # ------------------------------------------------------------------ reading

    def get_pod(self, namespace: str, name: str) -> Pod:
        resp = self.core.read_namespaced_pod(name, namespace, _preload_content=False)
        pod: Pod = json.loads(resp.data)
        return pod

    def list_pods(self, namespace: str, label_selector: str = "") -> list[Pod]:
        resp = self.core.list_namespaced_pod(namespace, label_selector=label_selector, _preload_content=False)
        items: list[Pod] = json.loads(resp.data).get("items") or []
        items.sort(key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))
        return items

    def pods_of_job(self, namespace: str, job_name: str, *, job_uid: str | None = None) -> list[Pod]:
        """Pods of a Job, oldest first: by controller uid if given, else by the job-name labels."""
        if job_uid:
            for label in JOB_UID_LABELS:
                pods = self.list_pods(namespace, f"{label}={job_uid}")
                if pods:
                    return pods
            return []
        for label in JOB_NAME_LABELS:
            pods = self.list_pods(namespace, f"{label}={job_name}")
            if pods:
                return pods
        return []

    def wait_for_pods_of_job(
        self,
        namespace: str,
        job_name: str,
        *,
        count: int = 1,
        phase: str | None = "Pending",
        timeout: float = 30.0,
    ) -> list[Pod]:
        """Wait until the Job has at least ``count`` pods (in ``phase``, if given); return them."""
        deadline = time.monotonic() + timeout
        while True:
            pods = [
                p
                for p in self.pods_of_job(namespace, job_name)
                if phase is None or p.get("status", {}).get("phase", "Pending") == phase
            ]
            if len(pods) >= count:
                return pods
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"job {namespace}/{job_name}: {len(pods)} pod(s) in phase {phase} after {timeout}s"
                )
            time.sleep(0.1)

    # ------------------------------------------------------------------ writing

    def run_pod(self, namespace: str, name: str, *, ready: bool = True) -> Pod:
        """Phase Running; every container running (and Ready if ``ready``); init containers done."""

        def mutate(pod: Pod) -> None:
            now = _now()
            spec = pod.get("spec", {})
            status = pod.setdefault("status", {})
            status["phase"] = "Running"
            status.setdefault("startTime", now)
            status["hostIP"] = self.pod_ip
            status["hostIPs"] = [{"ip": self.pod_ip}]
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
            status.setdefault("qosClass", "BestEffort")
            inits = []
            for c in spec.get("initContainers") or []:
                if is_native_sidecar(c):
                    inits.append(self._container_status(pod, c, self._running(now), ready=ready))
                else:
                    inits.append(self._container_status(pod, c, self._terminated(0, now, "Completed", "")))
            if inits:
                status["initContainerStatuses"] = inits
            status["containerStatuses"] = [
                self._container_status(pod, c, self._running(now), ready=ready)
                for c in spec.get("containers") or []
            ]
            status["conditions"] = [
                _condition("PodReadyToStartContainers", True, now),
                _condition("Initialized", True, now),
                _condition("Ready", ready, now, None if ready else "ContainersNotReady"),
                _condition("ContainersReady", ready, now, None if ready else "ContainersNotReady"),
                _condition("PodScheduled", True, now),
            ]

        return self._update_status(namespace, name, mutate)

    def finish_pod(
        self,
        namespace: str,
        name: str,
        exit_code: int = 0,
        message: str = "",
        *,
        reason: str | None = None,
        container: str | None = None,
    ) -> Pod:
        """Terminate the pod: phase Succeeded (exit 0) or Failed.

        The main containers (or only ``container``, the others exiting 0) terminate with
        ``exit_code``; ``message`` becomes the termination message
        (``state.terminated.message``); ``reason`` defaults to Completed / Error.
        Native sidecars terminate with 0.
        """
        term_reason = reason or ("Completed" if exit_code == 0 else "Error")

        def mutate(pod: Pod) -> None:
            now = _now()
            spec = pod.get("spec", {})
            status = pod.setdefault("status", {})
            status.setdefault("startTime", now)
            started = status["startTime"]
            inits = []
            for c in spec.get("initContainers") or []:
                inits.append(
                    self._container_status(pod, c, self._terminated(0, now, "Completed", "", started))
                )
            if inits:
                status["initContainerStatuses"] = inits
            statuses = []
            for c in spec.get("containers") or []:
                mine = container is None or c["name"] == container
                code = exit_code if mine else 0
                st = self._terminated(
                    code,
                    now,
                    term_reason if mine else "Completed",
                    message if mine else "",
                    started,
                )
                statuses.append(self._container_status(pod, c, st))
            status["containerStatuses"] = statuses
            status["phase"] = "Succeeded" if exit_code == 0 else "Failed"
            status["hostIP"] = self.pod_ip
            status["hostIPs"] = [{"ip": self.pod_ip}]
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
            status["conditions"] = [
                _condition("PodReadyToStartContainers", False, now),
                _condition("Initialized", True, now, "PodCompleted"),
                _condition("Ready", False, now, "PodCompleted"),
                _condition("ContainersReady", False, now, "PodCompleted"),
                _condition("PodScheduled", True, now),
            ]

        return self._update_status(namespace, name, mutate)

    def run_and_finish_job_pod(
        self,
        namespace: str,
        job_name: str,
        exit_code: int = 0,
        message: str = "",
        *,
        timeout: float = 30.0,
    ) -> Pod:
        """Wait for a Pending pod of the Job, run it, finish it; return the finished pod."""
        pod = self.wait_for_pods_of_job(namespace, job_name, count=1, phase="Pending", timeout=timeout)[0]
        name = pod["metadata"]["name"]
        self.run_pod(namespace, name)
        return self.finish_pod(namespace, name, exit_code, message)

    # ------------------------------------------------------------------ internals

    def _update_status(self, namespace: str, name: str, mutate: Any, attempts: int = 10) -> Pod:
        for attempt in range(attempts):
            pod = self.get_pod(namespace, name)
            mutate(pod)
            try:
                resp = self.core.replace_namespaced_pod_status(name, namespace, pod, _preload_content=False)
            except ApiException as exc:
                if exc.status == 409 and attempt + 1 < attempts:
                    time.sleep(0.05)
                    continue
                raise
            result: Pod = json.loads(resp.data)
            return result
        raise RuntimeError("unreachable")

    @staticmethod
    def _running(now: str) -> dict[str, Any]:
        return {"running": {"startedAt": now}}

    @staticmethod
    def _terminated(
        exit_code: int, now: str, reason: str, message: str, started: str | None = None
    ) -> dict[str, Any]:
        term: dict[str, Any] = {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": started or now,
            "finishedAt": now,
        }
        if message:
            term["message"] = message
        return {"terminated": term}

    @staticmethod
    def _container_status(
        pod: Pod, container: dict[str, Any], state: dict[str, Any], *, ready: bool = False
    ) -> dict[str, Any]:
        uid = pod["metadata"].get("uid", "")
        running = "running" in state
        return {
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": f"{FAKE_RUNTIME}://{container.get('image', '')}",
            "containerID": f"{FAKE_RUNTIME}://{uid}/{container['name']}",
            "ready": bool(ready and running),
            "started": running,
            "restartCount": 0,
            "state": state,
        }
