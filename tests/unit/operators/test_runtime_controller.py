"""The controller loop: the outcome switch, recovery, the per-reconcile deadline, owner mapping."""

from __future__ import annotations

import threading
import time

import pytest

from common import kube
from operators.runtime.client import Client, ReconcileTimeout
from operators.runtime.controller import Controller, PermanentError, Request, Result
from operators.runtime.informer import Informer
from operators.runtime.metrics import Metrics
from operators.runtime.queue import WorkQueue

REQ = Request("ns", "a")


def make(reconcile: object, **kwargs: object) -> Controller:
    return Controller("test", reconcile, client=Client(None), metrics=Metrics("test"), **kwargs)  # type: ignore[arg-type]


def sample(controller: Controller, name: str, **labels: str) -> float:
    value = controller.metrics.registry.get_sample_value(name, {"controller": "test", **labels})
    return value or 0.0


def test_success_forgets_the_key() -> None:
    controller = make(lambda r: None)
    controller.queue.rate_limiter.when(REQ)
    controller.enqueue(REQ)
    assert controller.process_next(timeout=0)
    assert controller.queue.rate_limiter.retries(REQ) == 0
    assert len(controller.queue) == 0 and controller.queue.waiting() == 0
    assert sample(controller, "remora_operator_reconciles_total", outcome="success") == 1


def test_requeue_after_schedules_the_key_without_counting_a_failure() -> None:
    controller = make(lambda r: Result(requeue_after=30))
    controller.enqueue(REQ)
    controller.process_next(timeout=0)
    assert controller.queue.waiting() == 1
    assert controller.queue.rate_limiter.retries(REQ) == 0
    assert sample(controller, "remora_operator_reconciles_total", outcome="requeue") == 1


def test_an_exception_is_recovered_and_retried_with_backoff() -> None:
    def boom(request: Request) -> Result:
        raise KeyError("no such field")

    controller = make(boom)
    controller.enqueue(REQ)
    controller.process_next(timeout=0)
    controller.enqueue(Request("ns", "b"))
    assert controller.process_next(timeout=0)  # the worker lives on
    assert controller.queue.rate_limiter.retries(REQ) == 1
    assert controller.queue.waiting() == 2
    assert sample(controller, "remora_operator_reconcile_errors_total") == 2


def test_a_permanent_error_is_not_retried() -> None:
    def invalid(request: Request) -> Result:
        raise PermanentError("spec cannot be run")

    controller = make(invalid)
    controller.enqueue(REQ)
    controller.process_next(timeout=0)
    assert controller.queue.waiting() == 0 and len(controller.queue) == 0


def test_the_deadline_stops_a_reconcile_at_its_next_api_call() -> None:
    calls = []

    def slow(request: Request) -> Result:
        time.sleep(0.15)
        calls.append("before")
        controller.client.request("GET", "/api/v1/namespaces/ns/pods")
        calls.append("after")
        return Result()

    controller = make(slow, reconcile_timeout=0.1)
    outcome = controller.run_one(REQ)
    assert isinstance(outcome, ReconcileTimeout)
    assert calls == ["before"]


def test_client_counts_writes_by_verb_and_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube, "request", lambda *a, **k: {})
    seen: list[tuple[str, str]] = []
    client = Client(None, on_write=lambda verb, resource: seen.append((verb, resource)))
    client.get("/apis/batch/v1/namespaces/ns/jobs/j")
    client.create("/apis/batch/v1/namespaces/ns/jobs", {})
    client.replace("/apis/remora.dev/v1alpha1/namespaces/ns/buildrequests/b/status", {})
    client.delete("/apis/batch/v1/namespaces/ns/jobs/j", uid="u")
    assert seen == [("POST", "jobs"), ("PUT", "buildrequests/status"), ("DELETE", "jobs")]


def test_owned_objects_enqueue_their_controller_owner_of_the_right_kind() -> None:
    controller = make(lambda r: None)
    informer = Informer(None, "/apis/batch/v1/namespaces/ns/jobs")
    controller.watch_owned(informer, "remora.dev", "BuildRequest")
    assert informer.handler is not None

    def job(*refs: dict[str, object]) -> dict[str, object]:
        return {"metadata": {"namespace": "ns", "name": "j", "ownerReferences": list(refs)}}

    ours = {"apiVersion": "remora.dev/v1alpha1", "kind": "BuildRequest", "name": "b1", "controller": True}
    informer.handler("ADDED", job({**ours, "controller": False}))  # not the controller
    informer.handler("ADDED", job({**ours, "kind": "TestRun"}))  # another capability's
    informer.handler("ADDED", job({**ours, "apiVersion": "other.dev/v1"}))  # another group's
    informer.handler("MODIFIED", job(ours))
    informer.handler("DELETED", job(ours))
    assert controller.queue.get(timeout=0) == Request("ns", "b1")
    assert controller.queue.get(timeout=0) is None


def test_workers_run_reconciles_and_stop_drains_them() -> None:
    done = threading.Event()
    seen: list[Request] = []

    def reconcile(request: Request) -> None:
        seen.append(request)
        time.sleep(0.05)
        done.set()

    controller = make(reconcile, workers=2, queue=WorkQueue())
    controller.start()
    controller.enqueue(REQ)
    assert done.wait(2)
    assert controller.stop(drain_timeout=2)
    assert seen == [REQ]


def test_metrics_exposition_names_the_counters() -> None:
    controller = make(lambda r: None)
    controller.enqueue(REQ)
    controller.process_next(timeout=0)
    text = controller.metrics.exposition().decode()
    for name in (
        "remora_operator_reconciles_total",
        "remora_operator_reconcile_errors_total",
        "remora_operator_reconcile_seconds_bucket",
        "remora_operator_queue_depth",
    ):
        assert name in text
