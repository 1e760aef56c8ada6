"""The pure decision: observed state -> actions, for every stage of a capability resource's life."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from operator_resources import job_for, pod_with_message, resource, with_status

from operators import build, migrate, status, testrun
from operators.actions import (
    AcquireLock,
    CreateJob,
    DeleteJob,
    RecordEvent,
    ReleaseLock,
    Requeue,
    WriteStatus,
)
from operators.capability import Capability, Observed, decide
from operators.locks import Lock

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 23, 12, 5, 0, tzinfo=UTC)
BUILD = build.capability()
TEST = testrun.capability()
MIGRATE = migrate.capability()


def kinds(actions: list[object]) -> list[str]:
    return [type(a).__name__ for a in actions]


def written(actions: list[object]) -> dict[str, object]:
    statuses = [a.status for a in actions if isinstance(a, WriteStatus)]
    assert len(statuses) == 1
    return statuses[0]


def cond(st: dict[str, object], kind: str) -> dict[str, object]:
    found = status.get_condition(st, kind)
    assert found is not None, f"no {kind} condition"
    return found


def started(cap: Capability, res: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    """The resource after its first reconcile wrote status, and the Job it created."""
    actions = decide(cap, Observed(res, NOW))
    job = next(a.job for a in actions if isinstance(a, CreateJob))
    return with_status(res, **written(actions)), job


def test_a_new_resource_gets_one_job_then_running_status_then_an_event() -> None:
    res = resource()
    actions = decide(BUILD, Observed(res, NOW))
    assert kinds(actions) == ["CreateJob", "WriteStatus", "RecordEvent"]
    job = actions[0].job  # type: ignore[attr-defined]
    st = written(actions)
    assert st["phase"] == "Running" and st["jobName"] == job["metadata"]["name"]
    assert st["startTime"] == "2026-11-23T12:00:00Z" and st["observedGeneration"] == 1
    for kind in ("Accepted", "Running"):
        c = cond(st, kind)
        assert c["status"] == "True" and c["observedGeneration"] == 1
        assert c["lastTransitionTime"] == "2026-11-23T12:00:00Z"
    assert actions[2] == RecordEvent(
        "Normal", "Started", f"Job {job['metadata']['name']} is running the work"
    )


def test_a_running_job_with_status_already_written_needs_nothing() -> None:
    res, job = started(BUILD, resource())
    assert decide(BUILD, Observed(res, LATER, job=job_for(job))) == []


def test_running_status_lost_after_the_job_was_created_is_written_again() -> None:
    res = resource()
    _, job = started(BUILD, res)
    actions = decide(BUILD, Observed(res, NOW, job=job_for(job)))
    assert kinds(actions) == ["WriteStatus", "RecordEvent"]


@pytest.mark.parametrize("condition", ["Complete", "SuccessCriteriaMet"])
def test_a_complete_job_ends_succeeded_with_the_result(condition: str) -> None:
    res, job = started(BUILD, resource())
    pods = [pod_with_message("sha256:abc")]
    actions = decide(BUILD, Observed(res, LATER, job=job_for(job, (condition, "True")), pods=pods))
    assert kinds(actions) == ["WriteStatus", "RecordEvent"]
    st = written(actions)
    assert st["phase"] == "Succeeded" and st["result"] == {"summary": "sha256:abc"}
    assert st["startTime"] == "2026-11-23T12:00:00Z" and st["completionTime"] == "2026-11-23T12:05:00Z"
    assert cond(st, "Succeeded")["status"] == "True"
    running = cond(st, "Running")
    assert running["status"] == "False" and running["lastTransitionTime"] == "2026-11-23T12:05:00Z"
    assert (
        cond(st, "Accepted")["lastTransitionTime"] == "2026-11-23T12:00:00Z"
    )  # unchanged condition keeps it
    assert actions[1].type == "Normal"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ("Failed", "BackoffLimitExceeded"),
        ("Failed", "DeadlineExceeded"),
        ("FailureTarget", "PodFailurePolicy"),
    ],
)
def test_a_failed_job_ends_failed_with_the_jobs_reason(condition: str, reason: str) -> None:
    res, job = started(BUILD, resource())
    actions = decide(BUILD, Observed(res, LATER, job=job_for(job, (condition, "True"), reason=reason)))
    st = written(actions)
    assert st["phase"] == "Failed"
    assert cond(st, "Failed")["reason"] == reason and cond(st, "Failed")["status"] == "True"
    assert actions[-1].type == "Warning"  # type: ignore[attr-defined]


def test_a_failure_condition_wins_over_a_success_condition() -> None:
    res, job = started(BUILD, resource())
    both = job_for(job, ("SuccessCriteriaMet", "True"), ("FailureTarget", "True"))
    assert written(decide(BUILD, Observed(res, LATER, job=both)))["phase"] == "Failed"


def test_conditions_that_are_not_true_do_not_finish_anything() -> None:
    res, job = started(BUILD, resource())
    assert decide(BUILD, Observed(res, LATER, job=job_for(job, ("Complete", "False")))) == []


def test_test_results_come_from_the_termination_message() -> None:
    res, job = started(TEST, resource("TestRun", "t1"))
    message = '{"passed": 41, "failed": 1, "skipped": 2, "summary": "1 failure in test_login"}'
    done = job_for(job, ("Failed", "True"), reason="BackoffLimitExceeded")
    st = written(decide(TEST, Observed(res, LATER, job=done, pods=[pod_with_message(message)])))
    assert st["result"] == {"passed": 41, "failed": 1, "skipped": 2, "summary": "1 failure in test_login"}
    assert st["phase"] == "Failed"


def test_cancel_deletes_the_job_and_ends_failed_cancelled() -> None:
    res, job = started(BUILD, resource())
    res["spec"]["cancel"] = True
    res["metadata"]["generation"] = 2
    running = job_for(job)
    actions = decide(BUILD, Observed(res, LATER, job=running))
    assert kinds(actions) == ["DeleteJob", "WriteStatus", "RecordEvent"]
    assert actions[0] == DeleteJob(job["metadata"]["name"], "job-uid")
    st = written(actions)
    assert st["phase"] == "Failed" and st["observedGeneration"] == 2
    assert cond(st, "Failed")["reason"] == "Cancelled" and cond(st, "Failed")["observedGeneration"] == 2


def test_cancel_before_the_job_exists_creates_nothing() -> None:
    actions = decide(BUILD, Observed(resource(cancel=True), NOW))
    assert kinds(actions) == ["WriteStatus", "RecordEvent"]
    assert cond(written(actions), "Failed")["reason"] == "Cancelled"


def test_a_job_that_finished_before_the_cancel_reports_its_real_outcome() -> None:
    res, job = started(BUILD, resource())
    res["spec"]["cancel"] = True
    st = written(decide(BUILD, Observed(res, LATER, job=job_for(job, ("Complete", "True")))))
    assert st["phase"] == "Succeeded"


def test_a_job_deleted_by_someone_else_is_unknown_not_failed() -> None:
    res, _ = started(BUILD, resource())
    actions = decide(BUILD, Observed(res, LATER, job=None))
    assert kinds(actions) == ["WriteStatus", "RecordEvent"]
    st = written(actions)
    assert st["phase"] == "Unknown"
    assert cond(st, "Running")["reason"] == "JobDeleted"
    assert cond(st, "Failed")["status"] == "Unknown" and cond(st, "Succeeded")["status"] == "Unknown"
    assert actions[1].reason == "JobDeleted"  # type: ignore[attr-defined]


@pytest.mark.parametrize("phase", ["Succeeded", "Failed", "Unknown"])
def test_terminal_resources_are_left_alone(phase: str) -> None:
    res = with_status(resource(cancel=True), phase=phase, jobName="x")
    assert decide(BUILD, Observed(res, LATER)) == []


def test_a_resource_being_deleted_is_left_to_garbage_collection() -> None:
    res = resource()
    res["metadata"]["deletionTimestamp"] = "2026-11-23T12:00:00Z"
    assert decide(BUILD, Observed(res, NOW)) == []


# -- the migration lock ---------------------------------------------------------------------


def test_a_migration_with_a_free_database_takes_the_lock_before_its_job() -> None:
    res = resource("DatabaseMigration", "m1")
    actions = decide(MIGRATE, Observed(res, NOW, lock=Lock("remora-dbm-orders-db")))
    assert kinds(actions) == ["AcquireLock", "CreateJob", "WriteStatus", "RecordEvent"]
    lease = actions[0].lease  # type: ignore[attr-defined]
    assert lease["metadata"]["name"] == "remora-dbm-orders-db"
    assert lease["spec"]["holderIdentity"] == "m1/uid-of-m1"
    assert lease["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "remora.dev/v1alpha1",
            "kind": "DatabaseMigration",
            "name": "m1",
            "uid": "uid-of-m1",
            "controller": True,
        }
    ]


def test_a_migration_waits_while_another_holds_the_database() -> None:
    res = resource("DatabaseMigration", "m2")
    lock = Lock("remora-dbm-orders-db", "m1", "uid-of-m1", "lease-uid")
    actions = decide(MIGRATE, Observed(res, NOW, lock=lock))
    assert kinds(actions) == ["WriteStatus", "RecordEvent", "Requeue"]
    st = written(actions)
    assert st["phase"] == "Pending"
    running = cond(st, "Running")
    assert running["status"] == "False" and running["reason"] == "WaitingForLock"
    assert "m1" in str(running["message"]) and "orders-db" in str(running["message"])
    # Still waiting a moment later: no new write, only the requeue.
    again = decide(MIGRATE, Observed(with_status(res, **st), LATER, lock=lock))
    assert again == [Requeue(5.0)]


def test_a_stale_lock_of_a_finished_holder_is_broken() -> None:
    res = resource("DatabaseMigration", "m2")
    lock = Lock("remora-dbm-orders-db", "m1", "uid-of-m1", "lease-uid", holder_finished=True)
    assert decide(MIGRATE, Observed(res, NOW, lock=lock)) == [
        ReleaseLock("remora-dbm-orders-db", "lease-uid"),
        Requeue(0.2),
    ]


def test_a_finished_migration_releases_its_lock_before_writing_status() -> None:
    res, job = started(MIGRATE, resource("DatabaseMigration", "m1"))
    lock = Lock("remora-dbm-orders-db", "m1", "uid-of-m1", "lease-uid")
    actions = decide(MIGRATE, Observed(res, LATER, job=job_for(job, ("Complete", "True")), lock=lock))
    assert kinds(actions) == ["ReleaseLock", "WriteStatus", "RecordEvent"]


def test_a_cancelled_waiting_migration_never_takes_the_lock() -> None:
    res = resource("DatabaseMigration", "m2", cancel=True)
    lock = Lock("remora-dbm-orders-db", "m1", "uid-of-m1", "lease-uid")
    actions = decide(MIGRATE, Observed(res, NOW, lock=lock))
    assert not any(isinstance(a, AcquireLock | CreateJob) for a in actions)
    assert written(actions)["phase"] == "Failed"


def test_a_migration_that_already_holds_the_lock_does_not_take_it_again() -> None:
    res = resource("DatabaseMigration", "m1")
    lock = Lock("remora-dbm-orders-db", "m1", "uid-of-m1", "lease-uid")
    assert kinds(decide(MIGRATE, Observed(res, NOW, lock=lock))) == [
        "CreateJob",
        "WriteStatus",
        "RecordEvent",
    ]
