"""Remora installed on the local control plane, the way a user runs it: shared by the admission
benchmark and the soak (bench_admission.py, soak.py).

:class:`Stack` starts its own control plane and installs Remora with
:class:`localcluster.remora_release.RemoraRelease` as the admin: the chart by Helm in URL mode
(the webhooks call https://127.0.0.1:PORT), `remora certs bootstrap` for the first certificates
and the caBundle, `remora certs run` to keep them valid, and `remora serve` (with a number of
workers) answering the webhooks, following the catalog ConfigMap and the namespaces through the
API. Every process is a subprocess logging into the work directory; :meth:`Stack.stop` ends them
all and the control plane. Also here: the pods the benchmarks create, creating them fast, and
reading Prometheus text.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import re
import ssl
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import kube  # noqa: E402
from common.names import CATALOG_CONFIGMAP, ENFORCE_LABEL  # noqa: E402
from localcluster import LocalCluster, ensure_binaries, wait_until  # noqa: E402
from localcluster.remora_release import (  # noqa: E402
    RemoraProcess,
    RemoraRelease,
    create_namespace,
    hardened_pod,
)

RELEASE = "remora"
RELEASE_NS = "remora-system"
REG = "/apis/admissionregistration.k8s.io/v1"
SECRET_PATH = f"/api/v1/namespaces/{RELEASE_NS}/secrets/remora-webhook-certs"
CATALOG_PATH = f"/api/v1/namespaces/{RELEASE_NS}/configmaps/{CATALOG_CONFIGMAP}"
# Certificates that never rotate during a run, and ones that rotate within seconds.
STEADY_CERTS = ("--ca-lifetime=365d", "--serving-lifetime=24h", "--propagation=2s")
SHORT_CERTS = ("--ca-lifetime=30s", "--serving-lifetime=15s", "--propagation=2s")


class Stack:
    """The control plane plus Remora (chart, certificates, webhook server), all as the admin."""

    def __init__(self, workdir: Path, bootstrap_certs: Sequence[str] = STEADY_CERTS) -> None:
        self.workdir = workdir
        self.bootstrap_certs = bootstrap_certs
        self.cluster: LocalCluster | None = None
        self.api: Any = None
        self._release: RemoraRelease | None = None

    @property
    def release(self) -> RemoraRelease:
        assert self._release is not None, "Stack.start() first"
        return self._release

    @property
    def procs(self) -> dict[str, RemoraProcess]:
        return self.release.procs

    @property
    def env(self) -> dict[str, str]:
        return self.release.env

    @property
    def kc(self) -> str:
        return f"--kubeconfig={self.release.kubeconfig}"

    @property
    def cert_dir(self) -> Path:
        return self.release.cert_dir

    @property
    def url(self) -> str:
        return self.release.url

    def start(self, *, certs_run: Sequence[str] = STEADY_CERTS, workers: int = 1) -> None:
        ensure_binaries()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cluster = LocalCluster(self.workdir / "cluster")
        self.cluster.start()
        self.api = kube.load_api_client(str(self.cluster.kubeconfig))
        self._release = RemoraRelease(
            self.cluster, self.api, self.workdir, release=RELEASE, namespace=RELEASE_NS
        )
        self.release.install()
        self.release.bootstrap_certs(*self.bootstrap_certs)
        self.start_certs(certs_run)
        self.start_serve(workers)

    def start_certs(self, lifetimes: Sequence[str]) -> None:
        self.release.start_certs(*lifetimes, identity="bench")

    def start_serve(self, workers: int = 1) -> None:
        self.release.start_serve(f"--workers={workers}", "--log-level=warning")

    def webhook_metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", verify=False, timeout=5).text

    def stop(self) -> None:
        if self._release is not None:
            with contextlib.suppress(Exception):
                self._release.stop_all()
        if self.api is not None:
            with contextlib.suppress(Exception):
                self.api.close()
        if self.cluster is not None:
            self.cluster.stop()

    def apiserver_metrics(self) -> str:
        assert self.cluster is not None
        status, body = self.cluster.get("/metrics", timeout=10)
        if status != 200:
            raise RuntimeError(f"apiserver /metrics answered {status}")
        return body.decode()

    # -- namespaces -------------------------------------------------------------------------

    def enforced_namespace(self, name: str, level: str = "hardened") -> str:
        """Injection on (build, test allowed) and the policy enforced at `level`."""
        create_namespace(self.api, name, {ENFORCE_LABEL: level})
        self.release.run("enable-namespace", name, "--capabilities=build,test", self.kc)
        return name

    def plain_namespace(self, name: str) -> str:
        return create_namespace(self.api, name)

    def delete_pods(self, namespace: str) -> None:
        """Unscheduled pods go at once (no kubelet to wait for)."""
        kube.request(self.api, "DELETE", f"/api/v1/namespaces/{namespace}/pods")
        wait_until(
            lambda: not kube.request(self.api, "GET", f"/api/v1/namespaces/{namespace}/pods").get("items"),
            timeout=120,
            interval=0.5,
            description=f"pods of {namespace} deleted",
        )

    def ssl_context(self) -> ssl.SSLContext:
        assert self.cluster is not None
        ctx = ssl.create_default_context(cafile=str(self.cluster.ca_file))
        ctx.load_cert_chain(str(self.cluster.admin_cert_file), str(self.cluster.admin_key_file))
        return ctx


# -- pods -------------------------------------------------------------------------------------


def agent_pod(name: str, *, containers: int = 1, annotation_bytes: int = 0) -> dict[str, Any]:
    """An agent pod asking for build and test that meets the hardened level.

    `containers` > 1 and `annotation_bytes` make the large variant of the benchmark.
    """
    pod = hardened_pod(name, "build,test", app="agent")
    chunk = 4096
    for i in range(annotation_bytes // chunk):
        pod["metadata"]["annotations"][f"bench.example/blob-{i}"] = "x" * chunk
    (agent,) = pod["spec"]["containers"]
    agent["resources"]["requests"] = {"cpu": "10m"}
    pod["spec"]["containers"] = [
        {**copy.deepcopy(agent), "name": "agent" if i == 0 else f"helper-{i}"} for i in range(containers)
    ]
    return pod


@dataclass
class CreateResult:
    latencies: list[float]  # seconds, of the creates that succeeded
    failures: list[str]
    seconds: float
    pods: list[dict[str, Any]]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


async def _create_all(
    base: str, ctx: ssl.SSLContext, items: list[tuple[str, bytes]], *, concurrency: int, keep: bool
) -> dict[str, CreateResult]:
    results: dict[str, CreateResult] = {ns: CreateResult([], [], 0.0, []) for ns, _ in items}
    queue = iter(items)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"content-type": "application/json", "accept": "application/json"}
    async with httpx.AsyncClient(verify=ctx, limits=limits, timeout=30) as client:

        async def worker() -> None:
            for namespace, body in queue:
                mine = results[namespace]
                started = time.perf_counter()
                try:
                    reply = await client.post(
                        f"{base}/api/v1/namespaces/{namespace}/pods", content=body, headers=headers
                    )
                except httpx.HTTPError as exc:
                    mine.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - started
                if reply.status_code == 201:
                    mine.latencies.append(elapsed)
                    if keep:
                        mine.pods.append(orjson.loads(reply.content))
                else:
                    mine.failures.append(f"{reply.status_code}: {reply.text[:300]}")

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.monotonic() - started
    for result in results.values():
        result.seconds = seconds
    return results


def create_mixed(
    stack: Stack, items: list[tuple[str, dict[str, Any]]], *, concurrency: int = 32, keep: bool = False
) -> dict[str, CreateResult]:
    """POST every (namespace, pod) in order through the apiserver, `concurrency` in flight over
    pooled keep-alive connections; the latency of each create is measured around its request.
    Results per namespace (``seconds`` is the whole run's)."""
    assert stack.cluster is not None
    bodies = [(namespace, orjson.dumps(pod)) for namespace, pod in items]
    return asyncio.run(
        _create_all(stack.cluster.server, stack.ssl_context(), bodies, concurrency=concurrency, keep=keep)
    )


def create_pods(
    stack: Stack, namespace: str, pods: list[dict[str, Any]], *, concurrency: int = 32, keep: bool = False
) -> CreateResult:
    """`create_mixed` for one namespace."""
    items = [(namespace, pod) for pod in pods]
    return create_mixed(stack, items, concurrency=concurrency, keep=keep)[namespace]


# -- Prometheus text --------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        match = _SAMPLE.match(line)
        if match and match.group(1) == name:
            out.append((dict(_LABEL.findall(match.group(2) or "")), float(match.group(3))))
    return out


def total(text: str, name: str, **labels: str) -> float:
    return sum(v for lab, v in samples(text, name) if all(lab.get(k) == x for k, x in labels.items()))


def histograms(text: str, name: str, by: str) -> dict[str, dict[float, float]]:
    """Cumulative bucket counts of histogram `name`, summed over every label but `by`."""
    out: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for lab, value in samples(text, f"{name}_bucket"):
        out[lab.get(by, "")][float(lab["le"])] += value
    return {k: dict(v) for k, v in out.items()}


def delta(after: dict[float, float], before: dict[float, float] | None) -> dict[float, float]:
    before = before or {}
    return {le: count - before.get(le, 0.0) for le, count in after.items()}


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Like PromQL's histogram_quantile: linear inside the bucket that holds the rank."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- processes --------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, float]:
    """Resident memory (MiB), threads and open file descriptors of a process, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "Threads"):
            fields[key] = int(value.split()[0])
    return {
        "rss_mib": fields["VmRSS"] / 1024,
        "threads": fields["Threads"],
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }
