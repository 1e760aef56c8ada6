"""The decision every capability operator makes: from observed state to actions, pure.

A capability is data (its kind, `desired_job`, how to read a result, whether it runs
exclusively per some key); `decide` is the whole life cycle of a capability resource:

    no Job yet        -> create it, status Running (or wait for the lock, status Pending)
    Job running       -> status Running (written only if it says something else)
    Job Complete      -> Succeeded, with the result from the pod's termination message
    Job Failed        -> Failed, with the Job's reason (BackoffLimitExceeded, DeadlineExceeded ...)
    cancel            -> delete the Job, Failed with reason Cancelled
    Job gone after we created it -> Unknown with reason JobDeleted (someone else deleted it)
    terminal          -> nothing, ever again
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from common.names import Kind
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

Obj = dict[str, Any]

LOCK_WAIT_SECONDS: Final = 5.0
STALE_LOCK_RETRY_SECONDS: Final = 0.2


@dataclass(frozen=True)
class Capability:
    kind: Kind
    desired_job: Callable[[Obj], Obj]
    # Turns the main container's termination message (None if there is none) into status.result.
    read_result: Callable[[str | None], Obj | None] | None = None
    # For capabilities that run one at a time per key (the migration's database Secret).
    exclusive_key: Callable[[Obj], str] | None = None
    exclusive_what: str = ""

    def job_name(self, resource: Obj) -> str:
        return jobs.job_name(resource, self.kind.short_name)


@dataclass(frozen=True)
class Observed:
    resource: Obj
    now: datetime
    job: Obj | None = None  # the Job this resource controls, if it exists
    pods: list[Obj] = field(default_factory=list)  # the Job's pods, read once the Job has finished
    lock: locks.Lock | None = None  # for exclusive capabilities, while not terminal


def decide(cap: Capability, seen: Observed) -> list[Action]:
    resource = seen.resource
    if (resource.get("metadata") or {}).get("deletionTimestamp") or status.is_terminal(resource):
        return []
    cancel = (resource.get("spec") or {}).get("cancel") is True
    if seen.job is not None:
        outcome = jobs.job_outcome(seen.job)
        if outcome is not None:
            return _finished(cap, seen, outcome)
        if cancel:
            return [DeleteJob(seen.job["metadata"]["name"], seen.job["metadata"]["uid"]), *_cancelled(seen)]
        return _running(seen, seen.job["metadata"]["name"])
    if cancel:
        return _cancelled(seen)
    if status.current(resource).get("jobName"):
        return _job_deleted(seen)
    if cap.exclusive_key is not None:
        waiting = _wait_for_lock(cap, seen)
        if waiting is not None:
            return waiting
    return _start(cap, seen)


def _start(cap: Capability, seen: Observed) -> list[Action]:
    job = cap.desired_job(seen.resource)
    name = job["metadata"]["name"]
    actions: list[Action] = []
    if cap.exclusive_key is not None and seen.lock is not None and not seen.lock.held_by(seen.resource):
        actions.append(
            AcquireLock(locks.lease_body(seen.resource, cap.exclusive_key(seen.resource), seen.now))
        )
    actions.append(CreateJob(job))
    actions += _running(seen, name)
    return actions


def _running(seen: Observed, job_name: str) -> list[Action]:
    new = status.StatusBuilder(seen.resource, seen.now)
    message = f"Job {job_name} is running the work"
    new.set("phase", status.RUNNING).set("jobName", job_name).set_once(
        "startTime", status.timestamp(seen.now)
    )
    new.set_condition(status.ACCEPTED, "True", "JobCreated", f"created Job {job_name}")
    new.set_condition(status.RUNNING, "True", "JobRunning", message)
    if not new.changed:
        return []
    return [WriteStatus(new.status), RecordEvent("Normal", "Started", message)]


def _finished(cap: Capability, seen: Observed, outcome: jobs.JobOutcome) -> list[Action]:
    new = _ending(seen)
    result = cap.read_result(jobs.termination_message(seen.pods)) if cap.read_result else None
    if result is not None:
        new.set("result", result)
    if outcome.succeeded:
        new.set("phase", status.SUCCEEDED)
        new.set_condition(status.RUNNING, "False", "Completed", "the Job completed")
        new.set_condition(status.SUCCEEDED, "True", outcome.reason, outcome.message)
        event = RecordEvent("Normal", "Succeeded", outcome.message or "the Job completed")
    else:
        new.set("phase", status.FAILED)
        new.set_condition(status.RUNNING, "False", outcome.reason, "the Job failed")
        new.set_condition(status.FAILED, "True", outcome.reason, outcome.message or "the Job failed")
        event = RecordEvent("Warning", "Failed", f"{outcome.reason}: {outcome.message}".rstrip(": "))
    return [*_release(seen), WriteStatus(new.status), event]


def _cancelled(seen: Observed) -> list[Action]:
    new = _ending(seen).set("phase", status.FAILED)
    new.set_condition(status.RUNNING, "False", "Cancelled", "cancelled by spec.cancel")
    new.set_condition(status.FAILED, "True", "Cancelled", "cancelled by spec.cancel")
    return [*_release(seen), WriteStatus(new.status), RecordEvent("Normal", "Cancelled", "cancelled")]


def _job_deleted(seen: Observed) -> list[Action]:
    job_name = status.current(seen.resource).get("jobName")
    message = f"Job {job_name} was deleted before it finished; the outcome is unknown"
    new = _ending(seen).set("phase", status.UNKNOWN)
    new.set_condition(status.RUNNING, "False", "JobDeleted", message)
    new.set_condition(status.SUCCEEDED, "Unknown", "JobDeleted", message)
    new.set_condition(status.FAILED, "Unknown", "JobDeleted", message)
    return [*_release(seen), WriteStatus(new.status), RecordEvent("Warning", "JobDeleted", message)]


def _ending(seen: Observed) -> status.StatusBuilder:
    new = status.StatusBuilder(seen.resource, seen.now)
    return new.set_once("completionTime", status.timestamp(seen.now))


def _release(seen: Observed) -> list[Action]:
    lock = seen.lock
    if lock is not None and lock.held_by(seen.resource):
        return [ReleaseLock(lock.name, lock.lease_uid)]
    return []


def _wait_for_lock(cap: Capability, seen: Observed) -> list[Action] | None:
    """Actions while another resource holds the lock; None when this one may go ahead."""
    lock = seen.lock
    if lock is None or lock.free or lock.held_by(seen.resource):
        return None
    if lock.holder_finished:
        return [ReleaseLock(lock.name, lock.lease_uid), Requeue(STALE_LOCK_RETRY_SECONDS)]
    key = cap.exclusive_key(seen.resource) if cap.exclusive_key else ""
    message = (
        f"waiting: {cap.kind.kind} {lock.holder_name} is running against {cap.exclusive_what} {key}; "
        f"one at a time"
    )
    new = status.StatusBuilder(seen.resource, seen.now).set("phase", status.PENDING)
    new.set_condition(status.ACCEPTED, "True", "Accepted", "accepted; waiting for its turn")
    new.set_condition(status.RUNNING, "False", "WaitingForLock", message)
    actions: list[Action] = []
    if new.changed:
        actions += [WriteStatus(new.status), RecordEvent("Normal", "Waiting", message)]
    return [*actions, Requeue(LOCK_WAIT_SECONDS)]
