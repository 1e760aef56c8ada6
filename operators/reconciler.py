"""Observe, decide, execute: one capability operator's reconcile against the apiserver.

Observation reads the informer caches, going to the apiserver only where a cache may lag
behind (our own Job right after we created it) or does not cover (the Job's pods once it has
finished, the migration lock). Execution carries the decided actions out in order, tolerates
NotFound and AlreadyExists where they mean "already done", writes status only through the
/status subresource, and on a write conflict reads the resource again and decides afresh.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from common import names
from common.kube import ApiError
from operators import jobs, locks, status
from operators.actions import (
    AcquireLock,
    Action,
    CreateJob,
    DeleteJob,
    RecordEvent,
    ReleaseLock,
    Requeue,
    WriteStatus,
)
from operators.capability import Capability, Observed, decide
from operators.runtime.client import Client
from operators.runtime.controller import Request, Result
from operators.runtime.events import EventRecorder
from operators.runtime.store import Store

log = logging.getLogger("remora.operators.reconciler")

Obj = dict[str, Any]
CONFLICT_ATTEMPTS: Final = 4
LOCK_RACE_RETRY_SECONDS: Final = 0.5


class JobNameTaken(Exception):
    """A Job with this resource's deterministic name exists and is not controlled by it."""


def resource_path(kind: names.Kind, namespace: str, name: str = "") -> str:
    base = f"/apis/{names.GROUP}/{names.VERSION}/namespaces/{namespace}/{kind.plural}"
    return f"{base}/{name}" if name else base


def job_path(namespace: str, name: str = "") -> str:
    base = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    return f"{base}/{name}" if name else base


def lease_path(namespace: str, name: str = "") -> str:
    base = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    return f"{base}/{name}" if name else base


class CapabilityReconciler:
    def __init__(
        self,
        cap: Capability,
        client: Client,
        *,
        resources: Store,
        jobs_cache: Store,
        recorder: EventRecorder | None,
        clock: Callable[[], datetime] = status.now_utc,
    ) -> None:
        self.cap = cap
        self.client = client
        self.resources = resources
        self.jobs = jobs_cache
        self.recorder = recorder
        self.clock = clock

    def __call__(self, request: Request) -> Result | None:
        resource = self.resources.get((request.namespace, request.name))
        for attempt in range(CONFLICT_ATTEMPTS):
            if resource is None:
                return None  # deleted: garbage collection removes what it caused
            actions = decide(self.cap, self.observe(resource))
            try:
                return self.execute(resource, actions)
            except ApiError as exc:
                if not exc.conflict or exc.already_exists or attempt == CONFLICT_ATTEMPTS - 1:
                    raise
                log.debug("conflict on %s, reading it again: %s", request, exc)
                resource = self._read_live(request.namespace, request.name)
        return None

    # -- observe ---------------------------------------------------------------------------

    def observe(self, resource: Obj) -> Observed:
        namespace = resource["metadata"]["namespace"]
        terminal = status.is_terminal(resource)
        name = self.cap.job_name(resource)
        job = self.jobs.get((namespace, name))
        if job is None and not terminal and status.current(resource).get("jobName"):
            # Our own create may not have come back through the watch yet: ask before
            # concluding that someone deleted the Job.
            job = self._get_or_none(job_path(namespace, name))
            if job is not None:
                job = trim_job(job)
                self.jobs.put_if_newer(job)
        if job is not None and not jobs.is_controlled_by(job, resource):
            job = None
        pods: list[Obj] = []
        if job is not None and not terminal and self.cap.read_result and jobs.job_outcome(job):
            pods = self._job_pods(namespace, job)
        lock = None
        if self.cap.exclusive_key is not None and not terminal:
            lock = self._observe_lock(resource, self.cap.exclusive_key(resource))
        return Observed(resource=resource, now=self.clock(), job=job, pods=pods, lock=lock)

    def _job_pods(self, namespace: str, job: Obj) -> list[Obj]:
        selector = f"{jobs.JOB_UID_LABEL}={job['metadata']['uid']}"
        answer = self.client.request(
            "GET", f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": selector}
        )
        return list(answer.get("items") or [])

    def _observe_lock(self, resource: Obj, key: str) -> locks.Lock:
        namespace = resource["metadata"]["namespace"]
        name = locks.lease_name(key)
        lease = self._get_or_none(lease_path(namespace, name))
        if lease is None:
            return locks.Lock(name)
        holder_name, holder_uid = locks.parse_holder(lease)
        lease_uid = str(lease["metadata"].get("uid") or "")
        if holder_uid is None or holder_name is None:
            return locks.Lock(name, "(unknown)", "(unknown)", lease_uid, holder_finished=True)
        finished = False
        if holder_uid != resource["metadata"]["uid"]:
            holder = self._get_or_none(resource_path(self.cap.kind, namespace, holder_name))
            finished = (
                holder is None or holder["metadata"].get("uid") != holder_uid or status.is_terminal(holder)
            )
        return locks.Lock(name, holder_name, holder_uid, lease_uid, holder_finished=finished)

    # -- execute ---------------------------------------------------------------------------

    def execute(self, resource: Obj, actions: list[Action]) -> Result | None:
        namespace = resource["metadata"]["namespace"]
        result: Result | None = None
        for action in actions:
            match action:
                case AcquireLock(lease=lease):
                    try:
                        self.client.create(lease_path(namespace), lease)
                    except ApiError as exc:
                        if not exc.already_exists:
                            raise
                        return Result(LOCK_RACE_RETRY_SECONDS)  # another migration took it first
                case CreateJob(job=job):
                    self._create_job(resource, job)
                case DeleteJob(name=name, uid=uid):
                    self._delete(job_path(namespace, name), uid)
                    self.jobs.delete((namespace, name))
                case ReleaseLock(name=name, uid=uid):
                    self._delete(lease_path(namespace, name), uid)
                case WriteStatus(status=new_status):
                    if not self._write_status(resource, new_status):
                        return None
                case RecordEvent(type=event_type, reason=reason, note=note):
                    if self.recorder is not None:
                        self.recorder.record(resource, event_type, reason, note)
                case Requeue(after=after):
                    result = Result(after)
        return result

    def _create_job(self, resource: Obj, job: Obj) -> None:
        namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
        try:
            created = self.client.create(job_path(namespace), job)
        except ApiError as exc:
            if not exc.already_exists:
                raise
            created = self._get_or_none(job_path(namespace, name))
            if created is None or not jobs.is_controlled_by(created, resource):
                raise JobNameTaken(
                    f"Job {namespace}/{name} exists and is not controlled by this resource"
                ) from None
        self.jobs.put_if_newer(trim_job(created))

    def _write_status(self, resource: Obj, new_status: Obj) -> bool:
        """PUT the status subresource (optimistic concurrency through resourceVersion); False if gone."""
        meta = resource["metadata"]
        body = {**resource, "status": new_status}
        path = resource_path(self.cap.kind, meta["namespace"], meta["name"]) + "/status"
        try:
            updated = self.client.replace(path, body)
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        if isinstance(updated, dict):
            updated.get("metadata", {}).pop("managedFields", None)
            self.resources.put_if_newer(updated, insert=False)
        return True

    def _delete(self, path: str, uid: str) -> None:
        try:
            self.client.delete(path, propagation="Background", uid=uid or None)
        except ApiError as exc:
            # Gone already, or a different object now has the name (precondition failed).
            if not (exc.not_found or exc.conflict):
                raise

    def _get_or_none(self, path: str) -> Obj | None:
        try:
            obj = self.client.get(path)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        return obj if isinstance(obj, dict) else None

    def _read_live(self, namespace: str, name: str) -> Obj | None:
        obj = self._get_or_none(resource_path(self.cap.kind, namespace, name))
        if obj is not None:
            obj.get("metadata", {}).pop("managedFields", None)
            self.resources.put_if_newer(obj, insert=False)
        return obj


def trim_job(job: Obj) -> Obj:
    """What the Job cache keeps: metadata and status (the pod template is most of a Job's size)."""
    meta = dict(job.get("metadata") or {})
    meta.pop("managedFields", None)
    spec = {k: v for k, v in (job.get("spec") or {}).items() if k != "template"}
    return {
        "apiVersion": job.get("apiVersion"),
        "kind": job.get("kind"),
        "metadata": meta,
        "spec": spec,
        "status": job.get("status") or {},
    }
