"""Prometheus metrics of the admission server, in a registry of its own (one per app).

The per-request figures are plain counters bumped on the event loop and turned into
metric families only when scraped: about 0.3 µs per request, where prometheus-client's
locked children cost several. Label values are bounded sets (endpoint names, outcomes,
error kinds), never request data.
"""

from __future__ import annotations

import asyncio
import ssl
from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
# Admission should answer in milliseconds; the apiserver gives up at the webhook timeout (seconds).
LATENCY_BUCKETS: Final = (0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0)


class _Latency:
    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.count = 0
        self.total = 0.0


class AdmissionCollector(Collector):
    """Requests, latency, decisions and errors per admission endpoint."""

    def __init__(self) -> None:
        self.requests: Tally[str] = Tally()
        self.decisions: Tally[tuple[str, str]] = Tally()
        self.errors: Tally[tuple[str, str]] = Tally()
        self.latency: dict[str, _Latency] = {}

    def observe(self, endpoint: str, seconds: float, decision: str, error_kind: str | None) -> None:
        self.requests[endpoint] += 1
        self.decisions[endpoint, decision] += 1
        if error_kind is not None:
            self.errors[endpoint, error_kind] += 1
        latency = self.latency.get(endpoint)
        if latency is None:
            latency = self.latency[endpoint] = _Latency()
        latency.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        latency.count += 1
        latency.total += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "remora_admission_requests", "Admission requests received.", labels=["endpoint"]
        )
        for endpoint, count in sorted(self.requests.items()):
            requests.add_metric([endpoint], count)
        yield requests
        latency = HistogramMetricFamily(
            "remora_admission_duration_seconds",
            "Time from request received to response sent.",
            labels=["endpoint"],
        )
        for endpoint, figures in sorted(self.latency.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*map(str, LATENCY_BUCKETS), "+Inf"), figures.buckets, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            latency.add_metric([endpoint], buckets, figures.total)
        yield latency
        decisions = CounterMetricFamily(
            "remora_admission_decisions",
            "Answered admission requests by outcome (allowed, patched, denied, bad_request).",
            labels=["endpoint", "decision"],
        )
        for (endpoint, decision), count in sorted(self.decisions.items()):
            decisions.add_metric([endpoint, decision], count)
        yield decisions
        errors = CounterMetricFamily(
            "remora_admission_errors",
            "Requests that could not be handled normally, by kind of error.",
            labels=["endpoint", "kind"],
        )
        for (endpoint, kind), count in sorted(self.errors.items()):
            errors.add_metric([endpoint, kind], count)
        yield errors


class LoopCollector(Collector):
    """Tasks alive on the serving event loop (a soak watches it for leaks); absent off the loop."""

    def collect(self) -> Iterator[Metric]:
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:  # scraped from outside a running loop
            return
        yield GaugeMetricFamily("remora_event_loop_tasks", "Tasks alive on the event loop.", value=tasks)


class TLSCollector(Collector):
    """Handshakes the serving TLS context completed (OpenSSL's own counters, read when scraped).

    Each is a new connection: a rate close to the request rate means clients are not keeping
    connections alive, which costs both sides far more CPU than the requests themselves."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context

    def collect(self) -> Iterator[Metric]:
        stats = self.context.session_stats()
        handshakes = CounterMetricFamily(
            "remora_tls_handshakes",
            "TLS handshakes completed by the server, full or resumed.",
            labels=["kind"],
        )
        resumed = stats.get("hits", 0)
        handshakes.add_metric(["full"], max(stats.get("accept_good", 0) - resumed, 0))
        handshakes.add_metric(["resumed"], resumed)
        yield handshakes


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.admission = AdmissionCollector()
        self.registry.register(self.admission)
        self.registry.register(LoopCollector())
        self.reloads = Counter(
            "remora_reloads",
            "Reloads of the catalog and of the serving certificate, by what and result.",
            ["what", "result"],
            registry=self.registry,
        )
        self.observe = self.admission.observe

    def watch_tls(self, context: ssl.SSLContext) -> None:
        self.registry.register(TLSCollector(context))

    def reloaded(self, what: str, *, ok: bool) -> None:
        self.reloads.labels(what, "success" if ok else "refused").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
