"""Remora installed on the local control plane, the way a user runs it: shared by the admission
benchmark and the soak (bench_admission.py, soak.py).

The chart is installed with Helm in URL mode (the webhooks call https://127.0.0.1:PORT),
`remora certs bootstrap` writes the first certificates and the caBundle, `remora certs run`
keeps them valid, and `remora serve` answers the webhooks, following the catalog ConfigMap
and the namespaces through the API. Every process is a subprocess logging into the work
directory; :meth:`Stack.stop` ends them all and the control plane.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import kube  # noqa: E402
from common.names import (  # noqa: E402
    CAPABILITIES_ANNOTATION,
    CATALOG_CONFIGMAP,
    ENFORCE_LABEL,
)
from localcluster import LocalCluster, ensure_binaries, wait_until  # noqa: E402

CHART = ROOT / "charts" / "remora"
RELEASE = "remora"
RELEASE_NS = "remora-system"
REG = "/apis/admissionregistration.k8s.io/v1"
SECRET_PATH = f"/api/v1/namespaces/{RELEASE_NS}/secrets/remora-webhook-certs"
CATALOG_PATH = f"/api/v1/namespaces/{RELEASE_NS}/configmaps/{CATALOG_CONFIGMAP}"
# Certificates that never rotate during a run, and ones that rotate within seconds.
STEADY_CERTS = ("--ca-lifetime=365d", "--serving-lifetime=24h", "--propagation=2s")
SHORT_CERTS = ("--ca-lifetime=30s", "--serving-lifetime=15s", "--propagation=2s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proc:
    """A `remora` subprocess whose output goes to a log file."""

    def __init__(self, name: str, args: Sequence[str], log_dir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        self.handle = self.log.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "remora", *args], stdout=self.handle, stderr=subprocess.STDOUT, env=env
        )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.handle.close()

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Stack:
    """The control plane plus Remora (chart, certificates, webhook server)."""

    workdir: Path
    bootstrap_certs: Sequence[str] = STEADY_CERTS
    cluster: LocalCluster | None = None
    api: Any = None
    port: int = 0
    procs: dict[str, Proc] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        assert self.cluster is not None
        return {
            **os.environ,
            **self.cluster.env(),
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "PYTHONUNBUFFERED": "1",
        }

    @property
    def kc(self) -> str:
        assert self.cluster is not None
        return f"--kubeconfig={self.cluster.kubeconfig}"

    @property
    def cert_dir(self) -> Path:
        return self.workdir / "certs"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, *, certs_run: Sequence[str] = STEADY_CERTS, workers: int = 1) -> None:
        ensure_binaries()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cluster = LocalCluster(self.workdir / "cluster")
        self.cluster.start()
        self.api = kube.load_api_client(str(self.cluster.kubeconfig))
        self.port = free_port()
        kube.request(self.api, "POST", "/api/v1/namespaces", body={"metadata": {"name": RELEASE_NS}})
        self.helm(
            "install", RELEASE, str(CHART), "-n", RELEASE_NS, "--set", f"webhook.url={self.url}",
            "--set", "certs.extraSANs={127.0.0.1}", "--set", "replicaCount=1",
        )  # fmt: skip
        self.remora("certs", "bootstrap", *self._certs_args(), *self.bootstrap_certs)
        self.start_certs(certs_run)
        self.start_serve(workers)

    def _certs_args(self) -> list[str]:
        return [
            self.kc,
            f"--namespace={RELEASE_NS}",
            "--service=remora-webhook",
            "--extra-san=127.0.0.1",
            f"--webhook-config={RELEASE}",
            f"--cert-dir={self.cert_dir}",
        ]

    def start_certs(self, lifetimes: Sequence[str]) -> None:
        self.stop_proc("certs")
        self.procs["certs"] = Proc(
            "certs",
            ["certs", "run", *self._certs_args(), "--poll=1s", "--identity=bench", *lifetimes],
            self.workdir,
            self.env,
        )

    def start_serve(self, workers: int = 1) -> None:
        self.stop_proc("serve")
        self.procs["serve"] = Proc(
            "serve",
            [
                "serve", self.kc, f"--port={self.port}", "--host=127.0.0.1",
                f"--tls-cert={self.cert_dir / 'tls.crt'}", f"--tls-key={self.cert_dir / 'tls.key'}",
                f"--catalog-configmap={RELEASE_NS}/{CATALOG_CONFIGMAP}", "--reload-seconds=0.5",
                f"--workers={workers}", "--log-level=warning",
            ],
            self.workdir,
            self.env,
        )  # fmt: skip
        wait_until(self.serve_ready, timeout=60, interval=0.2, description="remora serve ready")

    def serve_ready(self) -> bool:
        proc = self.procs["serve"]
        if not proc.alive():
            raise RuntimeError(f"remora serve exited:\n{proc.tail()}")
        try:
            return httpx.get(f"{self.url}/readyz", verify=False, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def webhook_metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", verify=False, timeout=5).text

    def stop_proc(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            proc.stop()

    def stop(self) -> None:
        for name in list(self.procs):
            with contextlib.suppress(Exception):
                self.stop_proc(name)
        if self.api is not None:
            with contextlib.suppress(Exception):
                self.api.close()
        if self.cluster is not None:
            self.cluster.stop()

    # -- tools ------------------------------------------------------------------------------

    def helm(self, *args: str) -> str:
        assert self.cluster is not None
        env = self.env
        for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            env[var] = str(self.workdir / "helm" / var.split("_")[1].lower())
        return _run([str(self.cluster.binary("helm")), self.kc, *args], env)

    def remora(self, *args: str) -> str:
        return _run([sys.executable, "-m", "remora", *args], self.env)

    def apiserver_metrics(self) -> str:
        assert self.cluster is not None
        status, body = self.cluster.get("/metrics", timeout=10)
        if status != 200:
            raise RuntimeError(f"apiserver /metrics answered {status}")
        return body.decode()

    # -- namespaces -------------------------------------------------------------------------

    def enforced_namespace(self, name: str, level: str = "hardened") -> str:
        """Injection on (build, test allowed) and the policy enforced at `level`."""
        body = {"metadata": {"name": name, "labels": {ENFORCE_LABEL: level}}}
        kube.request(self.api, "POST", "/api/v1/namespaces", body=body)
        self.remora("enable-namespace", name, "--capabilities=build,test", self.kc)
        self._wait_default_sa(name)
        return name

    def plain_namespace(self, name: str) -> str:
        kube.request(self.api, "POST", "/api/v1/namespaces", body={"metadata": {"name": name}})
        self._wait_default_sa(name)
        return name

    def _wait_default_sa(self, name: str) -> None:
        def has_default_sa() -> bool:
            try:
                kube.request(self.api, "GET", f"/api/v1/namespaces/{name}/serviceaccounts/default")
            except kube.ApiError:
                return False
            return True

        wait_until(has_default_sa, timeout=30, description=f"serviceaccount {name}/default")

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


def _run(argv: list[str], env: dict[str, str], timeout: float = 120) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    return proc.stdout


# -- pods -------------------------------------------------------------------------------------

HARDENED_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}


def agent_pod(name: str, *, containers: int = 1, annotation_bytes: int = 0) -> dict[str, Any]:
    """An agent pod asking for build and test that meets the hardened level.

    `containers` > 1 and `annotation_bytes` make the large variant of the benchmark.
    """
    annotations = {CAPABILITIES_ANNOTATION: "build,test"}
    chunk = 4096
    for i in range(annotation_bytes // chunk):
        annotations[f"bench.example/blob-{i}"] = "x" * chunk
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "agent"}, "annotations": annotations},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "agent" if i == 0 else f"helper-{i}",
                    "image": "registry.k8s.io/pause:3.10",
                    "securityContext": HARDENED_CONTAINER_SECURITY,
                    "resources": {"limits": {"memory": "16Mi"}, "requests": {"cpu": "10m"}},
                }
                for i in range(containers)
            ],
        },
    }


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
