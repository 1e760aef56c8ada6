"""The reference broker's claim-and-report throughput, and the agent's added latency.

Figures:
- broker: items per second through claim (batches of 10) + report, `remora broker` as one real
  process (SQLite, WAL, synchronous=FULL) driven over HTTP by client threads; against the floor:
  the same transactions (claim a batch, then one commit per outcome) run on raw SQLite with the
  same durability in this process, no HTTP, no validation; and against a second floor: the same
  client threads making the same number of requests to a trivial endpoint (GET /healthz), which
  is what the HTTP client and server cost before any queue work. The broker's own store without
  HTTP is printed in between, to show where the time goes.
- agent: time from a claim's answer to the capability resource existing in the real local
  apiserver (build the resource, POST it), per item; against the floor: the same POST made
  directly. Also enqueue -> resource created, which adds the agent's poll interval.
  Not measured (and said so) when the local control plane cannot be started.

    .venv/bin/python bench/bench_broker.py [--quick] [--items N] [--no-cluster]

Prints the figures and writes them to bench/results/bench_broker.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.agent import Agent, AgentConfig  # noqa: E402
from agent.broker.store import Store  # noqa: E402
from agent.client import BrokerClient, ClaimResult  # noqa: E402
from agent.cluster import KubeCluster  # noqa: E402
from agent.podinfo import PodIdentity  # noqa: E402
from agent.resources import desired_resource, resource_name  # noqa: E402
from common import kube  # noqa: E402
from common.names import KIND_BY_CAPABILITY  # noqa: E402
from localcluster.ports import free_port  # noqa: E402

REMORA = Path(sys.executable).parent / "remora"
TOKEN = "bench-token"
BATCH = 10
CLIENT_THREADS = 4
BUILD = KIND_BY_CAPABILITY["build"]


# -- broker throughput ----------------------------------------------------------------------------


def start_broker(db: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "REMORA_BROKER_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [str(REMORA), "broker", "--db", str(db), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("broker did not start")


def in_threads(count: int, work: Callable[[int], None]) -> float:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def broker_http(url: str, n: int) -> tuple[float, float]:
    """(enqueue items/s, claim+report items/s) through the real broker process."""

    def enqueue(worker: int) -> None:
        with BrokerClient(url, TOKEN) as client:
            for i in range(worker, n, CLIENT_THREADS):
                client.enqueue(f"item-{i}", "build", {"image": "registry.example/app:1", "n": i})

    def drain(worker: int) -> None:
        with BrokerClient(url, TOKEN) as client:
            while True:
                result = client.claim(f"agent-{worker}", ["build"], BATCH, 300)
                if not result.items:
                    return
                for item in result.items:
                    assert item.lease and item.lease.token
                    client.report(item.id, item.lease.token, "succeeded", {"phase": "Succeeded"})

    enqueue_s = in_threads(CLIENT_THREADS, enqueue)
    drain_s = in_threads(CLIENT_THREADS, drain)
    with BrokerClient(url, TOKEN) as client:
        counts = client.stats()
    if counts["done"] != n:
        raise RuntimeError(f"expected {n} done items, broker says {counts}")
    return n / enqueue_s, n / drain_s


def http_floor(url: str, n: int) -> float:
    """Round trips/s of the same client threads to a trivial endpoint (GET /healthz, no storage)."""

    def ping(worker: int) -> None:
        with httpx.Client(base_url=url) as client:
            for _ in range(worker, n, CLIENT_THREADS):
                client.get("/healthz")

    return n / in_threads(CLIENT_THREADS, ping)


def store_direct(db: Path, n: int) -> float:
    """claim+report items/s through the broker's Store without HTTP (one thread, like the broker's)."""
    store = Store(db)
    for i in range(n):
        store.enqueue(f"item-{i}", "build", {"image": "registry.example/app:1", "n": i})
    started = time.perf_counter()
    while True:
        claimed, _ = store.claim("agent", ["build"], BATCH, 300)
        if not claimed:
            break
        for item in claimed:
            store.report(item.id, item.lease_token or "", "succeeded", {"phase": "Succeeded"})
    elapsed = time.perf_counter() - started
    store.close()
    return n / elapsed


def raw_sqlite_floor(db: Path, n: int) -> float:
    """The same transactions, bare: claim 10 rows in one commit, then one commit per outcome."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE q (id TEXT PRIMARY KEY, state TEXT, token TEXT, outcome TEXT, details TEXT)")
    conn.execute("CREATE INDEX q_state ON q (state)")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO q VALUES (?, 'queued', NULL, NULL, NULL)", [(f"item-{i}",) for i in range(n)]
    )
    conn.execute("COMMIT")
    started = time.perf_counter()
    while True:
        conn.execute("BEGIN IMMEDIATE")
        rows = [r[0] for r in conn.execute("SELECT id FROM q WHERE state = 'queued' LIMIT ?", (BATCH,))]
        conn.executemany("UPDATE q SET state = 'claimed', token = 'tok' WHERE id = ?", [(r,) for r in rows])
        conn.execute("COMMIT")
        if not rows:
            break
        for row in rows:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "UPDATE q SET state = 'done', outcome = 'succeeded', details = '{}' WHERE id = ?", (row,)
            )
            conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return n / elapsed


# -- agent latency --------------------------------------------------------------------------------


class TimedBroker(BrokerClient):
    """The real client, noting when each claimed item's answer arrived."""

    def __init__(self, url: str, claimed_at: dict[str, float]) -> None:
        super().__init__(url, TOKEN)
        self._claimed_at = claimed_at

    def claim(self, agent: str, capabilities: list[str], max_items: int, lease_seconds: int) -> ClaimResult:
        result = super().claim(agent, capabilities, max_items, lease_seconds)
        now = time.perf_counter()
        for item in result.items:
            self._claimed_at[item.id] = now
        return result


class TimedCluster(KubeCluster):
    """The real cluster access, noting when each create returned."""

    def __init__(self, *args: Any, created_at: dict[str, float]) -> None:
        super().__init__(*args)
        self._created_at = created_at
        self.post_seconds: list[float] = []

    def create(self, kind: Any, body: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        obj = super().create(kind, body)
        self._created_at[body["metadata"]["name"]] = done = time.perf_counter()
        self.post_seconds.append(done - started)
        return obj


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def agent_latency(url: str, m: int) -> dict[str, Any]:
    from localcluster import LocalCluster, ensure_binaries, wait_until

    ensure_binaries()
    cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="remora-bench-broker-")))
    cluster.start()
    try:
        api = kube.load_api_client(str(cluster.kubeconfig))
        kubectl = [str(cluster.binary("kubectl")), f"--kubeconfig={cluster.kubeconfig}"]
        crds = str(ROOT / "operators" / "crds")
        subprocess.run([*kubectl, "apply", "--server-side", "-f", crds], check=True, capture_output=True)
        subprocess.run(
            [*kubectl, "wait", "--for=condition=Established", "-f", crds], check=True, capture_output=True
        )
        for ns in ("bench", "bench-floor"):
            kube.request(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
        pod = kube.request(
            api,
            "POST",
            "/api/v1/namespaces/bench/pods",
            body={"metadata": {"name": "bench-agent"}, "spec": {"containers": [{"name": "a", "image": "x"}]}},
        )
        identity = PodIdentity("bench-agent", "bench", pod["metadata"]["uid"])

        # Floor: the same create, made directly.
        floor: list[float] = []
        floor_identity = PodIdentity("bench-agent", "bench-floor", pod["metadata"]["uid"])
        for i in range(m):
            body = desired_resource(
                BUILD, f"floor-{i}", {"image": "registry.example/app:1"}, floor_identity, "t"
            )
            started = time.perf_counter()
            kube.request(
                api,
                "POST",
                f"/apis/remora.dev/v1alpha1/namespaces/bench-floor/{BUILD.plural}",
                body=body,
                query={"fieldValidation": "Strict"},
            )
            floor.append(time.perf_counter() - started)

        claimed_at: dict[str, float] = {}
        created_at: dict[str, float] = {}
        enqueued_at: dict[str, float] = {}
        config = AgentConfig(
            identity, ("build",), max_items=m, lease_seconds=60, poll_min=0.05, poll_max=0.05
        )
        client = TimedBroker(url, claimed_at)
        timed_cluster = TimedCluster(api, "bench", created_at=created_at)
        agent = Agent(config, client, timed_cluster)
        thread = threading.Thread(target=agent.run, daemon=True)
        thread.start()
        with BrokerClient(url, TOKEN) as submitter:
            for i in range(m):
                item_id = f"lat-{i}"
                enqueued_at[item_id] = time.perf_counter()
                submitter.enqueue(item_id, "build", {"image": "registry.example/app:1"})
                name = resource_name(item_id)
                wait_until(
                    partial(created_at.__contains__, name), timeout=30, description=f"{item_id} created"
                )
        agent.request_stop()
        thread.join(30)
        client.close()
        added = [created_at[resource_name(i)] - claimed_at[i] for i in enqueued_at]
        end_to_end = [created_at[resource_name(i)] - t for i, t in enqueued_at.items()]
        return {
            "measured": True,
            "items": m,
            "claim_to_created_ms_p50": statistics.median(added) * 1000,
            "claim_to_created_ms_p95": percentile(added, 0.95) * 1000,
            "floor_direct_create_ms_p50": statistics.median(floor) * 1000,
            "floor_direct_create_ms_p95": percentile(floor, 0.95) * 1000,
            "ratio_to_floor_p50": statistics.median(added) / statistics.median(floor),
            "of_which_the_post_ms_p50": statistics.median(timed_cluster.post_seconds) * 1000,
            "enqueue_to_created_ms_p50": statistics.median(end_to_end) * 1000,
            "enqueue_to_created_ms_p95": percentile(end_to_end, 0.95) * 1000,
            "poll_interval_ms": config.poll_min * 1000,
        }
    finally:
        cluster.stop()


def report_agent(a: dict[str, Any], m: int) -> None:
    if not a["measured"]:
        print(f"agent: not measured ({a['why']})")
        return
    print(f"agent: {m} items, claim answer -> resource created in the local apiserver")
    print(f"  p50 {a['claim_to_created_ms_p50']:6.1f} ms   p95 {a['claim_to_created_ms_p95']:6.1f} ms")
    print(f"  of which the POST itself:        p50 {a['of_which_the_post_ms_p50']:6.1f} ms")
    print(f"  floor (the same POST made directly): p50 {a['floor_direct_create_ms_p50']:6.1f} ms")
    print(f"  ratio agent / floor (p50)        {a['ratio_to_floor_p50']:8.2f}")
    print(
        f"  enqueue -> created (polls every {a['poll_interval_ms']:.0f} ms): "
        f"p50 {a['enqueue_to_created_ms_p50']:6.1f} ms   p95 {a['enqueue_to_created_ms_p95']:6.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 items and 20 latency samples")
    parser.add_argument("--items", type=int, default=None, help="items through the broker (default 3000)")
    parser.add_argument(
        "--no-cluster", action="store_true", help="skip the agent latency (needs the apiserver)"
    )
    args = parser.parse_args()
    n = args.items or (500 if args.quick else 3000)
    m = 20 if args.quick else 100

    workdir = Path(tempfile.mkdtemp(prefix="remora-bench-broker-"))
    proc, url = start_broker(workdir / "broker.db")
    try:
        enqueue_rate, broker_rate = broker_http(url, n)
        requests_per_item = 1 + 1 / BATCH  # one report each, one claim per batch
        round_trip_rate = http_floor(url, n) / requests_per_item
        store_rate = store_direct(workdir / "store.db", n)
        floor_rate = raw_sqlite_floor(workdir / "floor.db", n)
        results: dict[str, Any] = {
            "broker": {
                "items": n,
                "batch": BATCH,
                "client_threads": CLIENT_THREADS,
                "durability": "WAL, synchronous=FULL",
                "enqueue_items_per_s": enqueue_rate,
                "claim_and_report_items_per_s": broker_rate,
                "store_without_http_items_per_s": store_rate,
                "floor_raw_sqlite_items_per_s": floor_rate,
                "ratio_to_floor": broker_rate / floor_rate,
                "floor_http_round_trips_items_per_s": round_trip_rate,
                "ratio_to_http_floor": broker_rate / round_trip_rate,
            }
        }
        print(
            f"broker: {n} items, claims of {BATCH}, {CLIENT_THREADS} client threads, WAL + synchronous=FULL"
        )
        print(f"  enqueue                          {enqueue_rate:8.0f} items/s")
        print(f"  claim + report over HTTP         {broker_rate:8.0f} items/s")
        print(f"  same through the Store, no HTTP  {store_rate:8.0f} items/s")
        print(f"  floor: raw SQLite, same commits  {floor_rate:8.0f} items/s")
        print(f"  ratio broker / SQLite floor      {broker_rate / floor_rate:8.2f}")
        print(f"  floor: same client, trivial GETs {round_trip_rate:8.0f} items/s")
        print(f"  ratio broker / HTTP floor        {broker_rate / round_trip_rate:8.2f}")

        if args.no_cluster:
            results["agent"] = {"measured": False, "why": "--no-cluster"}
        else:
            try:
                results["agent"] = agent_latency(url, m)
            except Exception as exc:
                results["agent"] = {"measured": False, "why": f"{type(exc).__name__}: {exc}"}
        report_agent(results["agent"], m)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    out = ROOT / "bench" / "results" / "bench_broker.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
