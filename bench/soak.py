"""Soak: steady admissions and reconciles for minutes; memory, threads, tasks and files stay flat.

Against the real local control plane with Remora installed by its chart (bench/remora_install.py):
- admissions: agent pods created at a steady rate in an injection-enabled namespace that
  enforces `hardened` (both webhooks called for each), the oldest deleted as new ones come;
- reconciles: a `remora operator build` subprocess reconciles BuildRequests created at a
  steady rate into Jobs; a fake kubelet (localcluster.kubelet) runs and finishes the Jobs'
  pods; finished BuildRequests are deleted (garbage collection removes their Jobs).

Every few seconds: resident memory, threads and open file descriptors of the webhook
(`remora serve`) and of the operator (from /proc), and the tasks alive on the webhook's
event loop (its /metrics). After a warm-up, "start" is the first sample; a figure is flat
when its end is within a small margin of that start (the margin is printed). The floor: the
resident memory of a bare interpreter that imports the Kubernetes client, measured in the
same run, to which the webhook's and operator's memory is compared.

    .venv/bin/python bench/soak.py [--minutes 10] [--quick]

Prints the figures and writes them to bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from remora_install import (
    ROOT,
    Stack,
    agent_pod,
    proc_status,
    samples,
    total,
)

from common import kube
from common.names import AGENT_LABEL
from localcluster import wait_until
from localcluster.kubelet import FakeKubelet
from localcluster.remora_release import RemoraProcess, free_port

RESULTS = ROOT / "bench" / "results" / "soak.json"
NAMESPACE = "soak"
AGENT = "soak-agent"
LIVE_PODS = 40  # admitted pods kept before the oldest is deleted
# Flat: the end within this much of the post-warm-up start.
RSS_MARGIN_MIB, RSS_MARGIN_FRACTION = 4.0, 0.10
THREADS_MARGIN, FDS_MARGIN, TASKS_MARGIN = 2, 8, 16


class Driver:
    """Steady background work; counts what it did and what failed."""

    def __init__(self, stack: Stack, pods_per_second: float, resources_per_second: float) -> None:
        self.stack = stack
        self.api = stack.api
        self.pods_per_second = pods_per_second
        self.resources_per_second = resources_per_second
        self.stop = threading.Event()
        self.counts = dict.fromkeys(
            ("pods_admitted", "resources_created", "job_pods_finished", "resources_done"), 0
        )
        self.failures: list[str] = []
        self.threads = [
            threading.Thread(target=self._guard, args=(fn,), name=fn.__name__, daemon=True)
            for fn in (self._admissions, self._resources, self._kubelet, self._reaper)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def _guard(self, fn: Any) -> None:
        while not self.stop.is_set():
            try:
                fn()
                return
            except Exception as exc:  # a driver hiccup is recorded, and the driver goes on
                self.failures.append(f"{fn.__name__}: {type(exc).__name__}: {exc}"[:300])
                time.sleep(1)

    def _paced(self, per_second: float) -> Any:
        interval = 1.0 / per_second
        due = time.monotonic()
        while not self.stop.is_set():
            yield
            due += interval
            self.stop.wait(max(0.0, due - time.monotonic()))

    def _admissions(self) -> None:
        live: deque[str] = deque()
        path = f"/api/v1/namespaces/{NAMESPACE}/pods"
        for _ in self._paced(self.pods_per_second):
            name = f"agent-{self.counts['pods_admitted']}-{int(time.time() * 1000) % 100000}"
            try:
                created = kube.request(self.api, "POST", path, body=agent_pod(name))
            except kube.ApiError as exc:
                self.failures.append(f"admission of {name}: {exc}"[:300])
                continue
            if "remora.dev/status" not in (created["metadata"].get("annotations") or {}):
                self.failures.append(f"{name} was admitted without injection")
            self.counts["pods_admitted"] += 1
            live.append(name)
            while len(live) > LIVE_PODS:
                with contextlib.suppress(kube.ApiError):
                    kube.request(self.api, "DELETE", f"{path}/{live.popleft()}")

    def _resources(self) -> None:
        path = f"/apis/remora.dev/v1alpha1/namespaces/{NAMESPACE}/buildrequests"
        for _ in self._paced(self.resources_per_second):
            body = {
                "apiVersion": "remora.dev/v1alpha1",
                "kind": "BuildRequest",
                "metadata": {"generateName": "soak-", "labels": {AGENT_LABEL: AGENT}},
                "spec": {"image": "registry.example/builder:1", "command": ["make"]},
            }
            try:
                kube.request(self.api, "POST", path, body=body)
            except kube.ApiError as exc:
                self.failures.append(f"BuildRequest create: {exc}"[:300])
                continue
            self.counts["resources_created"] += 1

    def _kubelet(self) -> None:
        kubelet = FakeKubelet(self.api)
        while not self.stop.wait(0.5):
            for pod in kubelet.list_pods(NAMESPACE, "batch.kubernetes.io/job-name"):
                if (pod.get("status") or {}).get("phase", "Pending") != "Pending":
                    continue
                name = pod["metadata"]["name"]
                try:
                    kubelet.run_pod(NAMESPACE, name)
                    kubelet.finish_pod(NAMESPACE, name)
                except Exception as exc:  # the pod went away meanwhile (its Job was collected)
                    if "404" not in str(exc) and "Not Found" not in str(exc):
                        raise
                    continue
                self.counts["job_pods_finished"] += 1

    def _reaper(self) -> None:
        path = f"/apis/remora.dev/v1alpha1/namespaces/{NAMESPACE}/buildrequests"
        while not self.stop.wait(2.0):
            for item in kube.request(self.api, "GET", path).get("items") or []:
                if (item.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                    continue
                with contextlib.suppress(kube.ApiError):
                    kube.request(
                        self.api,
                        "DELETE",
                        f"{path}/{item['metadata']['name']}",
                        body={"propagationPolicy": "Background"},
                    )
                    self.counts["resources_done"] += 1


def webhook_tasks(stack: Stack) -> float | None:
    try:
        found = samples(stack.webhook_metrics(), "remora_event_loop_tasks")
    except httpx.HTTPError:
        return None
    return found[0][1] if found else None


def floor_rss_mib() -> float:
    code = "import common.kube, pathlib; print(pathlib.Path('/proc/self/status').read_text())"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def summarize(series: list[dict[str, Any]], key: str, warm: int, margin: float) -> dict[str, Any]:
    values = [s[key] for s in series[warm:] if s.get(key) is not None]
    if not values:
        return {"start": None, "peak": None, "end": None, "flat": None}
    start, end, peak = values[0], values[-1], max(values)
    return {
        "start": round(start, 1),
        "peak": round(peak, 1),
        "end": round(end, 1),
        "margin": round(margin, 1),
        "flat": end - start <= margin,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak (default 10)")
    parser.add_argument("--quick", action="store_true", help="one minute")
    parser.add_argument("--pods-per-second", type=float, default=4.0)
    parser.add_argument("--resources-per-second", type=float, default=1.0)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    args = parser.parse_args()
    minutes = 1.0 if args.quick else args.minutes
    if not 0.5 <= minutes <= 240:
        parser.error("--minutes must be between 0.5 and 240")
    warmup = min(60.0, minutes * 60 / 4)

    workdir = Path(tempfile.mkdtemp(prefix="remora-soak-"))
    stack = Stack(workdir)
    driver: Driver | None = None
    operator: RemoraProcess | None = None
    try:
        stack.start()
        stack.enforced_namespace(NAMESPACE)
        probe = free_port()
        operator = RemoraProcess(
            "operator",
            ["operator", "build", stack.kc, "--namespace", NAMESPACE, "--agent", AGENT,
             "--probe-host", "127.0.0.1", "--probe-port", str(probe), "--log-level", "warning"],
            workdir,
            stack.env,
        )  # fmt: skip

        def operator_ready() -> bool:
            assert operator is not None
            if not operator.alive():
                raise RuntimeError(f"the operator exited:\n{operator.tail()}")
            try:
                return httpx.get(f"http://127.0.0.1:{probe}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(operator_ready, timeout=60, interval=0.2, description="operator ready")
        driver = Driver(stack, args.pods_per_second, args.resources_per_second)
        driver.start()
        serve, oper = stack.procs["serve"], operator
        series: list[dict[str, Any]] = []
        started = time.monotonic()
        end = started + minutes * 60
        print(f"soak: {minutes:g} min, warm-up {warmup:.0f} s, sampling every {args.sample_seconds:g} s")
        while time.monotonic() < end:
            for proc in (serve, oper):
                if not proc.alive():
                    raise RuntimeError(f"{proc.name} exited during the soak:\n{proc.tail()}")
            w, o = proc_status(serve.pid), proc_status(oper.pid)
            sample = {
                "t": round(time.monotonic() - started, 1),
                **{f"webhook_{k}": v for k, v in w.items()},
                "webhook_tasks": webhook_tasks(stack),
                **{f"operator_{k}": v for k, v in o.items()},
                **driver.counts,
            }
            series.append(sample)
            if len(series) % 12 == 1:
                print(
                    f"  t={sample['t']:6.0f}s webhook {w['rss_mib']:.1f} MiB {w['threads']} threads "
                    f"{w['fds']} fds {sample['webhook_tasks']} tasks | operator {o['rss_mib']:.1f} MiB "
                    f"{o['threads']} threads {o['fds']} fds | {driver.counts}",
                    flush=True,
                )
            time.sleep(args.sample_seconds)
        driver.close()
        api_text = stack.apiserver_metrics()
        webhook_text = stack.webhook_metrics()
        warm = next((i for i, s in enumerate(series) if s["t"] >= warmup), len(series) - 1)
        floor = floor_rss_mib()

        def rss_margin(key: str) -> float:
            first = series[warm][key]
            return max(RSS_MARGIN_MIB, first * RSS_MARGIN_FRACTION)

        figures = {
            "webhook": {
                "rss_mib": summarize(series, "webhook_rss_mib", warm, rss_margin("webhook_rss_mib")),
                "threads": summarize(series, "webhook_threads", warm, THREADS_MARGIN),
                "fds": summarize(series, "webhook_fds", warm, FDS_MARGIN),
                "event_loop_tasks": summarize(series, "webhook_tasks", warm, TASKS_MARGIN),
            },
            "operator": {
                "rss_mib": summarize(series, "operator_rss_mib", warm, rss_margin("operator_rss_mib")),
                "threads": summarize(series, "operator_threads", warm, THREADS_MARGIN),
                "fds": summarize(series, "operator_fds", warm, FDS_MARGIN),
            },
        }
        admission_errors = {
            "apiserver_webhook_rejections": total(api_text, "apiserver_admission_webhook_rejection_count"),
            "apiserver_webhook_fail_open": total(api_text, "apiserver_admission_webhook_fail_open_count"),
            "webhook_errors": total(webhook_text, "remora_admission_errors_total"),
        }
        flat = all(f["flat"] is not False for proc in figures.values() for f in proc.values())
        ok = flat and not driver.failures and not any(admission_errors.values())
        ratios = {name: round(figures[name]["rss_mib"]["end"] / floor, 2) for name in ("webhook", "operator")}
        result = {
            "minutes": minutes,
            "warmup_seconds": warmup,
            "pods_per_second": args.pods_per_second,
            "resources_per_second": args.resources_per_second,
            "counts": driver.counts,
            "failures": driver.failures[:20],
            "failure_count": len(driver.failures),
            **admission_errors,
            "floor_rss_mib": round(floor, 1),
            "end_rss_ratio_to_floor": ratios,
            "figures": figures,
            "flat": flat,
            "ok": ok,
            "series": series,
            "cpus": os.cpu_count(),
            "note": "shared, noisy 2-core machine: client, control plane and Remora on the same cores",
        }
        print(f"\nsoak over {minutes:g} min after {warmup:.0f} s warm-up: {driver.counts}")
        print(f"failures {len(driver.failures)}; {admission_errors}")
        print(
            f"floor: bare interpreter + Kubernetes client {floor:.1f} MiB; end RSS / floor: "
            f"webhook {ratios['webhook']}x, operator {ratios['operator']}x"
        )
        for proc_name, figs in figures.items():
            for key, f in figs.items():
                print(
                    f"  {proc_name:8s} {key:17s} start {f['start']}  peak {f['peak']}  end {f['end']}  "
                    f"(margin {f.get('margin')})  {'flat' if f['flat'] else 'NOT FLAT'}"
                )
        for line in driver.failures[:5]:
            print(f"  failure: {line}")
        verdict = "flat" if flat else "not flat"
        print(f"{'OK' if ok else 'MISSED'}: memory, threads, tasks and files {verdict}")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")
        print(f"written to {RESULTS.relative_to(ROOT)}")
        return 0 if ok else 1
    finally:
        if driver is not None:
            driver.close()
        if operator is not None:
            operator.stop()
        stack.stop()
        if os.environ.get("REMORA_KEEP_BENCH") != "1":
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
