"""The build operator against the real local apiserver: N BuildRequests reconciled into Jobs.

Figures:
- time from the first create until every resource's Job exists, against the floor: the time
  the same client takes to create N BuildRequests and their Jobs itself (the API work no
  operator can avoid);
- API writes per resource, counted by the operator itself (its remora_operator_api_writes_total
  metric: Job creates, status writes and Events), against the floor of 1 (the Job); target <= 3;
- the operator process's peak resident memory (VmHWM), against the floor of a bare Python
  process that imports the Kubernetes client; target <= 64 MiB.

    .venv/bin/python bench/bench_operators.py [--quick] [--count N]

Prints the figures and writes them to bench/results/bench_operators.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import kube  # noqa: E402
from localcluster import LocalCluster, ensure_binaries, wait_until  # noqa: E402
from localcluster.ports import free_port  # noqa: E402
from operators import build  # noqa: E402

REMORA = Path(sys.executable).parent / "remora"
AGENT = "bench-agent"
WRITES_TARGET = 3.0
RSS_TARGET_MIB = 64.0
CLIENT_THREADS = 8


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def floor_rss_mib() -> float:
    """Peak RSS of a bare interpreter that imports what any Python operator needs: the client."""
    # VmHWM, not ru_maxrss: the latter survives exec and would report this (larger) parent.
    code = "import common.kube, pathlib; print(pathlib.Path('/proc/self/status').read_text())"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def create_namespace(api: Any, name: str) -> None:
    kube.request(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": name}})

    def has_default_sa() -> bool:
        try:
            kube.request(api, "GET", f"/api/v1/namespaces/{name}/serviceaccounts/default")
        except kube.ApiError:
            return False
        return True

    wait_until(has_default_sa, timeout=30, description="default service account")


def count(api: Any, path: str) -> int:
    """How many objects a collection holds, without transferring them (limit 1, remainingItemCount)."""
    page = kube.request(api, "GET", path, query={"limit": 1})
    return len(page.get("items") or []) + int((page.get("metadata") or {}).get("remainingItemCount") or 0)


def parallel_create(api: Any, path: str, bodies: list[dict[str, Any]]) -> None:
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        for _ in pool.map(lambda b: kube.request(api, "POST", path, body=b), bodies):
            pass


def build_request(i: int, agent: str) -> dict[str, Any]:
    return {
        "apiVersion": "remora.dev/v1alpha1",
        "kind": "BuildRequest",
        "metadata": {"name": f"b{i}", "labels": {"remora.dev/agent": agent}},
        "spec": {"image": "registry.example/builder:1", "command": ["make"]},
    }


def floor_pipeline(api: Any, namespace: str, n: int) -> float:
    """Seconds for the same client to create n BuildRequests and, for each, the very Job the
    operator would create: the API work no operator can avoid, without status or events."""
    base = f"/apis/remora.dev/v1alpha1/namespaces/{namespace}"

    def one(i: int) -> None:
        created = kube.request(api, "POST", f"{base}/buildrequests", body=build_request(i, "nobody"))
        job = build.desired_job(created)
        kube.request(api, "POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", body=job)

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        for _ in pool.map(one, range(n)):
            pass
    return time.monotonic() - started


def metric_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 resources instead of 1,000")
    parser.add_argument("--count", type=int, default=None)
    args = parser.parse_args()
    n = args.count or (100 if args.quick else 1000)

    ensure_binaries()
    workdir = Path(tempfile.mkdtemp(prefix="remora-bench-operators-"))
    cluster = LocalCluster(workdir)
    cluster.start()
    operator: subprocess.Popen[bytes] | None = None
    try:
        api = kube.load_api_client(str(cluster.kubeconfig))
        kubectl = [str(cluster.binary("kubectl")), f"--kubeconfig={cluster.kubeconfig}"]
        crds = str(ROOT / "operators" / "crds")
        subprocess.run([*kubectl, "apply", "--server-side", "-f", crds], check=True, capture_output=True)
        subprocess.run(
            [*kubectl, "wait", "--for=condition=Established", "-f", crds], check=True, capture_output=True
        )
        create_namespace(api, "bench-floor")
        create_namespace(api, "bench")

        floor_seconds = floor_pipeline(api, "bench-floor", n)
        # The Job controller makes a pod per floor Job: let it finish before the measured run.
        wait_until(
            lambda: count(api, "/api/v1/namespaces/bench-floor/pods") >= n,
            timeout=600,
            interval=0.5,
            description="floor pods",
        )

        port = free_port()
        log = (workdir / "operator.log").open("wb")
        env = {**cluster.env(), "PYTHONUNBUFFERED": "1"}
        argv = [str(REMORA), "operator", "build", "--namespace", "bench", "--agent", AGENT]
        operator = subprocess.Popen(
            [*argv, "--probe-host", "127.0.0.1", "--probe-port", str(port)], env=env, stdout=log, stderr=log
        )

        def get(path: str) -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
                return str(resp.read().decode())

        def ready() -> bool:
            try:
                return get("/readyz").startswith("ok")
            except OSError:
                return False

        wait_until(ready, timeout=60, description="operator ready")
        bodies = [build_request(i, AGENT) for i in range(n)]
        started = time.monotonic()
        parallel_create(api, "/apis/remora.dev/v1alpha1/namespaces/bench/buildrequests", bodies)
        created = time.monotonic() - started
        jobs_path = "/apis/batch/v1/namespaces/bench/jobs"
        wait_until(lambda: count(api, jobs_path) >= n, timeout=600, interval=0.2, description="Jobs")
        all_jobs = time.monotonic() - started

        # Let the operator settle (Job status updates from the Job controller come back as events).
        def settled() -> bool:
            text = get("/metrics")
            return metric_sum(text, "remora_operator_queue_depth") == 0

        time.sleep(3)
        wait_until(settled, timeout=120, interval=0.5, description="queue drained")
        time.sleep(2)
        metrics = get("/metrics")
        writes = metric_sum(metrics, "remora_operator_api_writes_total")
        events = metric_sum(metrics, "remora_operator_api_writes_total", resource="events")
        errors = metric_sum(metrics, "remora_operator_reconcile_errors_total")
        reconciles = metric_sum(metrics, "remora_operator_reconciles_total")
        rss = peak_rss_mib(operator.pid)
        rss_floor = floor_rss_mib()
        jobs_total = count(api, jobs_path)

        results = {
            "resources": n,
            "jobs": jobs_total,
            "create_seconds": round(created, 3),
            "all_jobs_seconds": round(all_jobs, 3),
            "floor_resources_and_jobs_seconds": round(floor_seconds, 3),
            "time_ratio_to_floor": round(all_jobs / floor_seconds, 2),
            "api_writes_per_resource": round(writes / n, 3),
            "events_per_resource": round(events / n, 3),
            "writes_target": WRITES_TARGET,
            "reconciles": int(reconciles),
            "reconcile_errors": int(errors),
            "peak_rss_mib": round(rss, 1),
            "floor_rss_mib": round(rss_floor, 1),
            "rss_ratio_to_floor": round(rss / rss_floor, 2),
            "rss_target_mib": RSS_TARGET_MIB,
        }
        print(f"build operator, {n} BuildRequests against the local kube-apiserver")
        print(f"  all {jobs_total} Jobs exist after   {all_jobs:7.2f} s (creates took {created:.2f} s)")
        print(
            f"  floor: {n} resources + their Jobs created directly {floor_seconds:7.2f} s"
            f"   ratio {all_jobs / floor_seconds:.2f}x"
        )
        print(
            f"  API writes per resource        {writes / n:7.2f}   (events {events / n:.2f}; floor 1; "
            f"target <= {WRITES_TARGET:g})"
        )
        print(f"  reconciles {int(reconciles)}, errors {int(errors)}")
        print(
            f"  operator peak RSS              {rss:7.1f} MiB (floor {rss_floor:.1f} MiB, ratio "
            f"{rss / rss_floor:.2f}x; target <= {RSS_TARGET_MIB:g} MiB)"
        )
        out = ROOT / "bench" / "results" / "bench_operators.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"  wrote {out.relative_to(ROOT)}")
        return 0
    finally:
        if operator is not None and operator.poll() is None:
            operator.send_signal(signal.SIGTERM)
            try:
                operator.wait(timeout=20)
            except subprocess.TimeoutExpired:
                operator.kill()
        cluster.stop()
        if os.environ.get("REMORA_KEEP_BENCH") != "1":
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
