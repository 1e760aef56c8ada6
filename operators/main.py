"""One capability operator process: caches, controller, events and probes, wired and run.

Scope: only resources labelled remora.dev/agent=<this agent pod> in the pod's namespace,
and only Jobs that carry the same label and app.kubernetes.io/managed-by=remora.
Ready once both caches have synced; SIGTERM (the caller sets `stop`) drains the workers
and returns.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from common import names
from operators import build, migrate, testrun
from operators.capability import Capability
from operators.reconciler import CapabilityReconciler, job_path, resource_path, trim_job
from operators.runtime.client import Client
from operators.runtime.controller import Controller
from operators.runtime.events import EventRecorder
from operators.runtime.informer import Informer, strip_managed_fields
from operators.runtime.memory import limit_malloc_arenas
from operators.runtime.metrics import Metrics
from operators.runtime.probes import ProbeServer

log = logging.getLogger("remora.operators")


@dataclass(frozen=True)
class Options:
    capability: str
    namespace: str
    agent: str
    probe_host: str = "0.0.0.0"  # noqa: S104 - the kubelet probes the pod IP
    probe_port: int = 8481
    workers: int = 4
    reconcile_timeout: float = 30.0
    watch_silent_timeout: float = 90.0
    git_image: str = build.DEFAULT_GIT_IMAGE


def make_capability(options: Options) -> Capability:
    if options.capability == "build":
        return build.capability(git_image=options.git_image)
    if options.capability == "test":
        return testrun.capability()
    if options.capability == "migrate":
        return migrate.capability()
    raise ValueError(
        f"unknown capability {options.capability!r}; expected one of {', '.join(names.CAPABILITIES)}"
    )


class Operator:
    """Everything one operator process runs; `run(stop)` blocks until `stop` is set."""

    def __init__(self, api: Any, options: Options) -> None:
        self.options = options
        self.cap = make_capability(options)
        self.metrics = Metrics(options.capability)
        self.client = Client(api, on_write=self.metrics.count_write)
        selector = f"{names.AGENT_LABEL}={options.agent}"
        restart = self.metrics.watch_restarts
        self.resources = Informer(
            api,
            resource_path(self.cap.kind, options.namespace),
            label_selector=selector,
            transform=strip_managed_fields,
            silent_timeout=options.watch_silent_timeout,
            on_restart=lambda why: restart.labels(options.capability, self.cap.kind.plural, why).inc(),
        )
        self.jobs = Informer(
            api,
            job_path(options.namespace),
            label_selector=f"{names.MANAGED_BY_LABEL}={names.MANAGED_BY_VALUE},{selector}",
            transform=trim_job,
            silent_timeout=options.watch_silent_timeout,
            on_restart=lambda why: restart.labels(options.capability, "jobs", why).inc(),
        )
        self.recorder = EventRecorder(
            self.client,
            controller=f"{names.GROUP}/{options.capability}-operator",
            instance=options.agent,
            on_drop=lambda: self.metrics.events_dropped.labels(options.capability).inc(),
        )
        reconciler = CapabilityReconciler(
            self.cap,
            self.client,
            resources=self.resources.store,
            jobs_cache=self.jobs.store,
            recorder=self.recorder,
        )
        self.controller = Controller(
            options.capability,
            reconciler,
            client=self.client,
            metrics=self.metrics,
            workers=options.workers,
            reconcile_timeout=options.reconcile_timeout,
        )
        self.controller.watch_primary(self.resources)
        self.controller.watch_owned(self.jobs, names.GROUP, self.cap.kind.kind)
        self._stopping = threading.Event()
        self._started = threading.Event()

    def ready(self) -> bool:
        return (
            self._started.is_set()
            and not self._stopping.is_set()
            and self.resources.synced.is_set()
            and self.jobs.synced.is_set()
        )

    def healthy(self) -> bool:
        return not self._stopping.is_set()

    def probe_server(self) -> ProbeServer:
        return ProbeServer(
            self.options.probe_host,
            self.options.probe_port,
            healthy=self.healthy,
            ready=self.ready,
            metrics=self.metrics.exposition,
        )

    def run(self, stop: threading.Event, *, probes: ProbeServer | None = None) -> None:
        limit_malloc_arenas()
        if probes is not None:
            probes.start()
        self.recorder.start()
        for informer, label in ((self.jobs, "jobs"), (self.resources, self.cap.kind.plural)):
            threading.Thread(target=informer.run, args=(stop,), name=f"watch-{label}", daemon=True).start()
        # Reconcile only against a full picture: wait for both caches (or for the stop).
        while not stop.is_set() and not (self.resources.synced.is_set() and self.jobs.synced.is_set()):
            stop.wait(0.05)
        if not stop.is_set():
            self.controller.start()
            self._started.set()
            log.info(
                "%s operator ready: namespace %s, agent %s",
                self.options.capability,
                self.options.namespace,
                self.options.agent,
            )
        stop.wait()
        self._stopping.set()
        drained = self.controller.stop()
        self.recorder.stop()
        if probes is not None:
            probes.stop()
        log.info(
            "%s operator stopped (%s)", self.options.capability, "drained" if drained else "drain timed out"
        )
