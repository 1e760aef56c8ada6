"""Observe, decide, execute against an in-memory apiserver: writes, conflicts, NotFound, locks."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from operator_fakes import FakeClient
from operator_resources import pod_with_message, resource

from common.kube import ApiError
from operators import build, migrate, testrun
from operators.capability import Capability
from operators.reconciler import CapabilityReconciler, JobNameTaken, job_path, resource_path
from operators.runtime.controller import Request, Result
from operators.runtime.store import Store

NS = "team-a"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def record(self, obj: dict[str, Any], event_type: str, reason: str, note: str) -> None:
        self.events.append((obj["metadata"]["name"], event_type, reason))


class World:
    def __init__(self, cap: Capability) -> None:
        self.cap = cap
        self.api = FakeClient()
        self.resources = Store()
        self.jobs = Store()
        self.recorder = Recorder()
        self.reconcile = CapabilityReconciler(
            cap,
            self.api,
            resources=self.resources,
            jobs_cache=self.jobs,
            recorder=self.recorder,  # type: ignore[arg-type]
            clock=lambda: datetime(2026, 11, 23, 12, tzinfo=UTC),
        )

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        obj["metadata"].pop("uid", None)
        stored = self.api.seed(resource_path(self.cap.kind, NS), obj)
        self.resources.put(stored)
        return stored

    def live(self, name: str) -> dict[str, Any]:
        return self.api.objects[resource_path(self.cap.kind, NS, name)]

    def jobs_in_api(self) -> list[dict[str, Any]]:
        prefix = job_path(NS) + "/"
        return [o for p, o in self.api.objects.items() if p.startswith(prefix)]

    def sync_job_cache(self) -> None:
        for job in self.jobs_in_api():
            self.jobs.put(copy.deepcopy(job))

    def finish_job(self, condition: str = "Complete") -> dict[str, Any]:
        (job,) = self.jobs_in_api()
        job["status"] = {"conditions": [{"type": condition, "status": "True", "reason": condition}]}
        self.sync_job_cache()
        return job


def test_first_reconcile_writes_a_job_and_status_and_nothing_more() -> None:
    world = World(build.capability())
    world.create(resource())
    assert world.reconcile(Request(NS, "b1")) is None
    writes = world.api.writes()
    assert [w[0] for w in writes] == ["POST", "PUT"]
    assert writes[1][1].endswith("/buildrequests/b1/status")
    (job,) = world.jobs_in_api()
    assert job["metadata"]["ownerReferences"][0]["uid"] == world.live("b1")["metadata"]["uid"]
    assert world.live("b1")["status"]["phase"] == "Running"
    assert world.recorder.events == [("b1", "Normal", "Started")]
    # The caches were written through: the next reconcile (say, the Job's ADDED event) writes nothing.
    world.api.calls.clear()
    world.reconcile(Request(NS, "b1"))
    assert world.api.writes() == []


def test_a_resource_missing_from_the_cache_is_not_found_and_needs_nothing() -> None:
    world = World(build.capability())
    assert world.reconcile(Request(NS, "gone")) is None
    assert world.api.calls == []


def test_a_conflict_reads_the_resource_again_and_decides_afresh() -> None:
    world = World(build.capability())
    stored = world.create(resource())
    stale = copy.deepcopy(stored)
    world.api.objects[resource_path(world.cap.kind, NS, "b1")]["metadata"]["resourceVersion"] = "999"
    world.resources.put(stale)
    world.reconcile(Request(NS, "b1"))
    assert len(world.jobs_in_api()) == 1  # the retry found its own Job (AlreadyExists) and kept it
    assert world.live("b1")["status"]["phase"] == "Running"
    assert ("GET", resource_path(world.cap.kind, NS, "b1")) in world.api.calls
    assert world.recorder.events == [("b1", "Normal", "Started")]  # events only after a successful write


def test_conflicts_that_never_end_surface_as_an_error() -> None:
    world = World(build.capability())
    world.create(resource())
    path = resource_path(world.cap.kind, NS, "b1") + "/status"
    original = world.api.request

    def always_conflict(method: str, p: str, **kwargs: Any) -> Any:
        if method == "PUT" and p == path:
            world.api.calls.append((method, p))
            raise ApiError(409, "Conflict", "modified")
        return original(method, p, **kwargs)

    world.api.request = always_conflict  # type: ignore[method-assign]
    with pytest.raises(ApiError):
        world.reconcile(Request(NS, "b1"))
    assert world.api.calls.count(("PUT", path)) == 4


def test_a_status_write_to_a_deleted_resource_is_not_an_error() -> None:
    world = World(build.capability())
    world.create(resource())
    world.api.fail_next[("PUT", resource_path(world.cap.kind, NS, "b1") + "/status")] = ApiError(
        404, "NotFound", "gone"
    )
    assert world.reconcile(Request(NS, "b1")) is None
    assert world.recorder.events == []


def test_a_job_missing_from_the_cache_is_looked_up_before_calling_it_deleted() -> None:
    world = World(build.capability())
    world.create(resource())
    world.reconcile(Request(NS, "b1"))
    world.jobs.delete((NS, world.jobs_in_api()[0]["metadata"]["name"]))  # the watch has not caught up
    world.reconcile(Request(NS, "b1"))
    assert world.live("b1")["status"]["phase"] == "Running"


def test_a_job_deleted_by_someone_else_ends_unknown() -> None:
    world = World(build.capability())
    world.create(resource())
    world.reconcile(Request(NS, "b1"))
    (job,) = world.jobs_in_api()
    del world.api.objects[job_path(NS, job["metadata"]["name"])]
    world.jobs.delete((NS, job["metadata"]["name"]))
    world.reconcile(Request(NS, "b1"))
    assert world.live("b1")["status"]["phase"] == "Unknown"
    assert world.jobs_in_api() == []  # and it is not recreated
    world.reconcile(Request(NS, "b1"))
    assert world.jobs_in_api() == []


def test_cancel_deletes_the_job_in_the_background_with_a_uid_precondition() -> None:
    world = World(build.capability())
    world.create(resource())
    world.reconcile(Request(NS, "b1"))
    world.sync_job_cache()
    live = world.live("b1")
    live["spec"]["cancel"] = True
    live["metadata"]["generation"] = 2
    world.resources.put(copy.deepcopy(live))
    deletes: list[dict[str, Any]] = []
    original = world.api.request

    def spy(method: str, path: str, **kwargs: Any) -> Any:
        if method == "DELETE":
            deletes.append(kwargs["body"])
        return original(method, path, **kwargs)

    world.api.request = spy  # type: ignore[method-assign]
    world.reconcile(Request(NS, "b1"))
    assert world.jobs_in_api() == []
    assert deletes[0]["propagationPolicy"] == "Background" and deletes[0]["preconditions"]["uid"]
    status = world.live("b1")["status"]
    assert status["phase"] == "Failed" and status["observedGeneration"] == 2
    assert world.recorder.events[-1] == ("b1", "Normal", "Cancelled")


def test_a_job_already_deleted_when_cancelling_is_fine() -> None:
    world = World(build.capability())
    world.create(resource())
    world.reconcile(Request(NS, "b1"))
    world.sync_job_cache()
    (job,) = world.jobs_in_api()
    del world.api.objects[job_path(NS, job["metadata"]["name"])]  # gone, but still cached
    live = world.live("b1")
    live["spec"]["cancel"] = True
    world.resources.put(copy.deepcopy(live))
    world.reconcile(Request(NS, "b1"))
    assert world.live("b1")["status"]["phase"] == "Failed"


def test_a_foreign_job_with_our_name_is_an_error_not_adopted() -> None:
    world = World(build.capability())
    stored = world.create(resource())
    name = world.cap.job_name(stored)
    world.api.seed(job_path(NS), {"metadata": {"name": name, "namespace": NS}})
    with pytest.raises(JobNameTaken):
        world.reconcile(Request(NS, "b1"))


def test_test_results_are_read_from_the_jobs_pods() -> None:
    world = World(testrun.capability())
    world.create(resource("TestRun", "t1"))
    world.reconcile(Request(NS, "t1"))
    job = world.finish_job()
    pod = pod_with_message('{"passed": 5, "failed": 0, "skipped": 0}')
    pod["metadata"] = {
        "name": "t1-pod",
        "labels": {"batch.kubernetes.io/controller-uid": job["metadata"]["uid"]},
    }
    world.api.seed("/api/v1/namespaces/team-a/pods", pod)
    other = copy.deepcopy(pod)
    other["metadata"] = {"name": "unrelated", "labels": {"batch.kubernetes.io/controller-uid": "else"}}
    other["status"]["containerStatuses"][0]["state"]["terminated"]["message"] = '{"passed": 99}'
    world.api.seed("/api/v1/namespaces/team-a/pods", other)
    world.reconcile(Request(NS, "t1"))
    status = world.live("t1")["status"]
    assert status["phase"] == "Succeeded"
    assert status["result"] == {"passed": 5, "failed": 0, "skipped": 0}


def test_migrations_on_one_database_run_one_at_a_time() -> None:
    world = World(migrate.capability())
    world.create(resource("DatabaseMigration", "m1"))
    world.create(resource("DatabaseMigration", "m2"))
    other_db = resource("DatabaseMigration", "m3")
    other_db["spec"]["databaseSecretRef"] = {"name": "billing-db"}
    world.create(other_db)
    assert world.reconcile(Request(NS, "m1")) is None
    assert world.reconcile(Request(NS, "m2")) == Result(5.0)
    assert world.reconcile(Request(NS, "m3")) is None
    assert world.live("m1")["status"]["phase"] == "Running"
    assert world.live("m3")["status"]["phase"] == "Running"
    waiting = world.live("m2")["status"]
    assert waiting["phase"] == "Pending" and len(world.jobs_in_api()) == 2
    assert ("m2", "Normal", "Waiting") in world.recorder.events
    lease = world.api.objects["/apis/coordination.k8s.io/v1/namespaces/team-a/leases/remora-dbm-orders-db"]
    assert lease["spec"]["holderIdentity"].startswith("m1/")
    # m1 finishes: its lock goes, m2 starts on its next turn.
    for job in world.jobs_in_api():
        if job["metadata"]["ownerReferences"][0]["name"] == "m1":
            job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    world.sync_job_cache()
    world.reconcile(Request(NS, "m1"))
    assert world.live("m1")["status"]["phase"] == "Succeeded"
    assert world.reconcile(Request(NS, "m2")) is None
    assert world.live("m2")["status"]["phase"] == "Running"
    lease = world.api.objects["/apis/coordination.k8s.io/v1/namespaces/team-a/leases/remora-dbm-orders-db"]
    assert lease["spec"]["holderIdentity"].startswith("m2/")


def test_a_lock_left_by_a_finished_holder_is_broken() -> None:
    world = World(migrate.capability())
    world.create(resource("DatabaseMigration", "m1"))
    world.create(resource("DatabaseMigration", "m2"))
    world.reconcile(Request(NS, "m1"))
    live = world.live("m1")
    live["status"]["phase"] = "Failed"  # finished, but crashed before releasing
    assert world.reconcile(Request(NS, "m2")) == Result(0.2)
    world.reconcile(Request(NS, "m2"))
    assert world.live("m2")["status"]["phase"] == "Running"


def test_losing_the_race_for_the_lock_retries_soon() -> None:
    world = World(migrate.capability())
    world.create(resource("DatabaseMigration", "m1"))
    leases = "/apis/coordination.k8s.io/v1/namespaces/team-a/leases"
    world.api.fail_next[("POST", leases)] = ApiError(409, "AlreadyExists", "taken")
    assert world.reconcile(Request(NS, "m1")) == Result(0.5)
    assert world.jobs_in_api() == []
