"""Prometheus metrics of one operator process, in a registry of its own (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self, controller: str) -> None:
        self.controller = controller
        self.registry = CollectorRegistry(auto_describe=True)
        self.reconciles = Counter(
            "remora_operator_reconciles",
            "Reconciles finished, by outcome (success, requeue, error).",
            ["controller", "outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            "remora_operator_reconcile_errors",
            "Reconciles that raised (including timeouts and recovered exceptions).",
            ["controller"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "remora_operator_reconcile_seconds",
            "Time spent in one reconcile.",
            ["controller"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "remora_operator_queue_depth",
            "Keys ready to be reconciled.",
            ["controller"],
            registry=self.registry,
        )
        self.api_writes = Counter(
            "remora_operator_api_writes",
            "Write requests sent to the apiserver, by verb and resource.",
            ["controller", "verb", "resource"],
            registry=self.registry,
        )
        self.watch_restarts = Counter(
            "remora_operator_watch_restarts",
            "Watches started again, by reason (expired, error, timeout, closed).",
            ["controller", "resource", "reason"],
            registry=self.registry,
        )
        self.events_dropped = Counter(
            "remora_operator_events_dropped",
            "Kubernetes Events not recorded (queue full or write failed).",
            ["controller"],
            registry=self.registry,
        )

    def count_write(self, verb: str, resource: str) -> None:
        self.api_writes.labels(self.controller, verb, resource).inc()

    def writes_total(self) -> float:
        total = 0.0
        for metric in self.api_writes.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    total += sample.value
        return total

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
