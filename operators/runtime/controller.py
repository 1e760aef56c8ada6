"""The controller loop: informers feed keys into a work queue, workers reconcile them.

The reconcile contract is controller-runtime's: a `Request` is (namespace, name); the
reconciler returns a `Result` (requeue after N seconds, or nothing) or raises. Reconcilers
never touch the queue: `Controller.handle_outcome` is the one switch that turns an outcome
into a queue action. Every reconcile runs with exception recovery, a deadline enforced on
its API calls, a log id and metrics.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from operators.runtime.client import Client
from operators.runtime.informer import Informer
from operators.runtime.metrics import Metrics
from operators.runtime.queue import WorkQueue
from operators.runtime.store import Obj, key_of

log = logging.getLogger("remora.operators.controller")


@dataclass(frozen=True, order=True)
class Request:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Result:
    requeue_after: float = 0.0


class PermanentError(Exception):
    """A failure that retrying cannot fix (the resource is invalid): logged, not retried."""


Outcome = Result | Exception
Reconciler = Callable[[Request], Result | None]


class Controller:
    def __init__(
        self,
        name: str,
        reconcile: Reconciler,
        *,
        client: Client,
        metrics: Metrics,
        workers: int = 2,
        reconcile_timeout: float = 30.0,
        queue: WorkQueue[Request] | None = None,
    ) -> None:
        self.name = name
        self.reconcile = reconcile
        self.client = client
        self.metrics = metrics
        self.workers = workers
        self.reconcile_timeout = reconcile_timeout
        self.queue: WorkQueue[Request] = queue or WorkQueue()
        self._ids = itertools.count(1)
        self._threads: list[threading.Thread] = []

    # -- what feeds the queue ---------------------------------------------------------------

    def enqueue(self, request: Request) -> None:
        self.queue.add(request)
        self.metrics.queue_depth.labels(self.name).set(len(self.queue))

    def watch_primary(self, informer: Informer) -> None:
        """Every change to a watched resource enqueues that resource."""

        def on_event(_type: str, obj: Obj) -> None:
            self.enqueue(Request(*key_of(obj)))

        informer.handler = on_event

    def watch_owned(self, informer: Informer, owner_api_group: str, owner_kind: str) -> None:
        """Every change to an owned object enqueues its controller owner, if of `owner_kind`."""

        def on_event(_type: str, obj: Obj) -> None:
            owner = controller_owner(obj)
            if owner is None or owner.get("kind") != owner_kind:
                return
            if str(owner.get("apiVersion", "")).split("/")[0] != owner_api_group:
                return
            namespace = str((obj.get("metadata") or {}).get("namespace") or "")
            self.enqueue(Request(namespace, str(owner.get("name"))))

        informer.handler = on_event

    # -- workers ----------------------------------------------------------------------------

    def start(self) -> None:
        for index in range(self.workers):
            thread = threading.Thread(target=self._worker, name=f"{self.name}-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, drain_timeout: float = 20.0) -> bool:
        """Stop taking keys, let reconciles in progress finish; True when all finished in time."""
        drained = self.queue.shutdown(drain=True, timeout=drain_timeout)
        for thread in self._threads:
            thread.join(timeout=1.0)
        return drained

    def _worker(self) -> None:
        while self.process_next():
            pass

    def process_next(self, timeout: float | None = None) -> bool:
        """Reconcile one key; False once the queue shuts down (or `timeout` passed with nothing to do)."""
        request = self.queue.get(timeout=timeout)
        if request is None:
            return False
        try:
            self.handle_outcome(request, self.run_one(request))
        finally:
            self.queue.done(request)
            self.metrics.queue_depth.labels(self.name).set(len(self.queue))
        return True

    def run_one(self, request: Request) -> Outcome:
        """One reconcile with exception recovery, a deadline on its API calls, a log id and timing."""
        reconcile_id = next(self._ids)
        started = time.monotonic()
        try:
            with self.client.deadline(self.reconcile_timeout):
                result = self.reconcile(request)
            outcome: Outcome = result or Result()
        except Exception as exc:
            log.warning("reconcile #%d %s %s failed: %s", reconcile_id, self.name, request, _describe(exc))
            self.metrics.errors.labels(self.name).inc()
            outcome = exc
        elapsed = time.monotonic() - started
        self.metrics.latency.labels(self.name).observe(elapsed)
        log.debug("reconcile #%d %s %s took %.3fs", reconcile_id, self.name, request, elapsed)
        return outcome

    def handle_outcome(self, request: Request, outcome: Outcome) -> None:
        """The one place where an outcome becomes a queue action."""
        match outcome:
            case PermanentError():
                self.queue.forget(request)
                self.metrics.reconciles.labels(self.name, "error").inc()
            case Exception():
                self.queue.add_rate_limited(request)
                self.metrics.reconciles.labels(self.name, "error").inc()
            case Result(requeue_after=delay) if delay > 0:
                self.queue.forget(request)
                self.queue.add_after(request, delay)
                self.metrics.reconciles.labels(self.name, "requeue").inc()
            case _:
                self.queue.forget(request)
                self.metrics.reconciles.labels(self.name, "success").inc()


def controller_owner(obj: Obj) -> dict[str, object] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
