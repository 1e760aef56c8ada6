"""The capability operators against the real local control plane.

Each test runs `remora operator <capability>` as a subprocess (as the sidecar would run),
plays the kubelet through the API, and watches what lands in status. Cleanup is by garbage
collection only: the tests never delete a Job or a pod themselves (except where a test is
about someone deleting a Job).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from common import kube as k
from localcluster import wait_until
from localcluster.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "operators" / "crds"
REMORA = Path(sys.executable).parent / "remora"
AGENT = "agent-0"
GROUP_PATH = "/apis/remora.dev/v1alpha1/namespaces"
PLURAL = {"build": "buildrequests", "test": "testruns", "migrate": "databasemigrations"}
KIND = {"build": "BuildRequest", "test": "TestRun", "migrate": "DatabaseMigration"}
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def crds(cluster: Any, kubectl: Any) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRD_DIR))
    wait_for_gc_to_know_the_kinds(cluster)


def wait_for_gc_to_know_the_kinds(cluster: Any) -> None:
    """The garbage collector learns new kinds from discovery every 30 s; until it has, it cannot
    collect what they own. A real cluster has its CRDs long before; here, prove it knows them:
    a ConfigMap owned by a deleted resource of each kind must go away."""
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    ns = "default"
    try:
        for cap, plural in PLURAL.items():
            spec = {"databaseSecretRef": {"name": "db"}} if cap == "migrate" else {}
            owner = create(api, ns, cap, f"gc-probe-{cap}", **spec)
            ref = {k: owner[k] for k in ("apiVersion", "kind")}
            ref |= {"name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}
            probe = {"metadata": {"name": f"gc-probe-{cap}", "ownerReferences": [ref]}}
            k.request(api, "POST", f"/api/v1/namespaces/{ns}/configmaps", body=probe)
            k.request(api, "DELETE", f"{GROUP_PATH}/{ns}/{plural}/{owner['metadata']['name']}")

        def collected() -> bool:
            names = {c["metadata"]["name"] for c in items(api, f"/api/v1/namespaces/{ns}/configmaps")}
            return not any(n.startswith("gc-probe-") for n in names)

        wait_until(collected, timeout=120, interval=0.5, description="garbage collector to know remora kinds")
    finally:
        api.close()


class OperatorProcess:
    def __init__(self, cluster: Any, capability: str, namespace: str, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        env = {**cluster.env(), "PYTHONUNBUFFERED": "1"}
        argv = [str(REMORA), "operator", capability, "--namespace", namespace, "--agent", AGENT]
        argv += ["--probe-host", "127.0.0.1", "--probe-port", str(self.port)]
        self.log = log_path.open("wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(
            lambda: self.probe("/readyz") == 200, timeout=30, description=f"{capability} operator ready"
        )

    def probe(self, path: str) -> int:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"operator exited {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as resp:
                return int(resp.status)
        except OSError:
            return 0

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as resp:
            return resp.read().decode()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return int(self.proc.returncode)


@pytest.fixture
def run_operator(
    cluster: Any, crds: None, namespace: str, tmp_path: Path
) -> Iterator[Callable[[str], OperatorProcess]]:
    started: list[OperatorProcess] = []

    def start(capability: str) -> OperatorProcess:
        op = OperatorProcess(cluster, capability, namespace, tmp_path / f"{capability}-operator.log")
        started.append(op)
        return op

    yield start
    for op in started:
        code = op.stop()
        assert code == 0, f"operator exit {code} on SIGTERM:\n{op.log_path.read_text()[-3000:]}"


# -- API helpers (plain dicts) ------------------------------------------------------------------


def create(kube: Any, namespace: str, capability: str, name: str, **spec: Any) -> Obj:
    body = {
        "apiVersion": "remora.dev/v1alpha1",
        "kind": KIND[capability],
        "metadata": {"name": name, "labels": {"remora.dev/agent": AGENT}},
        "spec": {"image": "registry.example/work:1", **spec},
    }
    return k.request(kube, "POST", f"{GROUP_PATH}/{namespace}/{PLURAL[capability]}", body=body)


def get(kube: Any, namespace: str, capability: str, name: str) -> Obj | None:
    try:
        return k.request(kube, "GET", f"{GROUP_PATH}/{namespace}/{PLURAL[capability]}/{name}")
    except k.ApiError as exc:
        if exc.not_found:
            return None
        raise


def wait_phase(
    kube: Any, namespace: str, capability: str, name: str, phase: str, *, timeout: float = 30
) -> Obj:
    def reached() -> Obj | None:
        obj = get(kube, namespace, capability, name)
        return obj if obj and (obj.get("status") or {}).get("phase") == phase else None

    return wait_until(reached, timeout=timeout, description=f"{name} phase {phase}")


def condition(obj: Obj, kind: str) -> Obj:
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


def items(kube: Any, path: str, selector: str = "") -> list[Obj]:
    query = {"labelSelector": selector} if selector else None
    return list(k.request(kube, "GET", path, query=query).get("items") or [])


def jobs_in(kube: Any, namespace: str) -> list[Obj]:
    return items(kube, f"/apis/batch/v1/namespaces/{namespace}/jobs")


def pods_in(kube: Any, namespace: str) -> list[Obj]:
    return items(kube, f"/api/v1/namespaces/{namespace}/pods")


def wait_job(kube: Any, namespace: str, capability: str, name: str, *, timeout: float = 30) -> Obj:
    obj = wait_until(
        lambda: (
            (o := get(kube, namespace, capability, name)) and (o.get("status") or {}).get("jobName") and o
        ),
        timeout=timeout,
        description=f"{name} has a Job",
    )
    return k.request(kube, "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/{obj['status']['jobName']}")


# -- the tests ----------------------------------------------------------------------------------


def test_a_build_runs_as_one_owned_hardened_job_and_succeeds(
    kube: Any, namespace: str, run_operator: Callable[[str], OperatorProcess], fake_kubelet: Any
) -> None:
    op = run_operator("build")
    created = create(kube, namespace, "build", "b1", source={"git": {"url": "https://git.example/a.git"}})
    job = wait_job(kube, namespace, "build", "b1")
    assert job["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "remora", "remora.dev/agent": AGENT}
    (ref,) = job["metadata"]["ownerReferences"]
    assert ref == {
        "apiVersion": "remora.dev/v1alpha1",
        "kind": "BuildRequest",
        "name": "b1",
        "uid": created["metadata"]["uid"],
        "controller": True,
    }
    pod_spec = job["spec"]["template"]["spec"]
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert all(c["securityContext"]["readOnlyRootFilesystem"] for c in pod_spec["containers"])
    running = wait_phase(kube, namespace, "build", "b1", "Running")
    assert condition(running, "Accepted")["status"] == "True"
    fake_kubelet.run_and_finish_job_pod(namespace, job["metadata"]["name"], 0, "sha256:0123abcd")
    done = wait_phase(kube, namespace, "build", "b1", "Succeeded")
    assert done["status"]["result"] == {"summary": "sha256:0123abcd"}
    assert done["status"]["observedGeneration"] == 1
    assert condition(done, "Succeeded")["status"] == "True" and done["status"]["completionTime"]
    assert len(jobs_in(kube, namespace)) == 1

    def reasons() -> set[str]:
        events = items(kube, f"/apis/events.k8s.io/v1/namespaces/{namespace}/events")
        return {e["reason"] for e in events if e["regarding"]["name"] == "b1"}

    # The event for a transition is recorded after the status write that makes it.
    wait_until(
        lambda: {"Started", "Succeeded"} <= reasons(), timeout=10, description="Started and Succeeded events"
    )
    metrics = op.metrics()
    assert 'remora_operator_reconciles_total{controller="build",outcome="success"}' in metrics
    assert "remora_operator_api_writes_total" in metrics


def test_the_apiserver_enforces_the_crd_rules(kube: Any, crds: None, namespace: str) -> None:
    """The CEL rules compile and hold: spec is immutable except cancel, which cannot be undone."""
    create(kube, namespace, "build", "b1", source={"git": {"url": "https://git.example/a.git"}})
    path = f"{GROUP_PATH}/{namespace}/buildrequests/b1"

    def patch(spec: dict[str, Any]) -> k.ApiError:
        with pytest.raises(k.ApiError) as info:
            k.request(kube, "PATCH", path, body={"spec": spec}, content_type="application/merge-patch+json")
        assert info.value.status == 422
        return info.value

    assert "spec.image is immutable" in patch({"image": "other:2"}).message
    assert "only cancel may change" in patch({"args": ["added"]}).message
    assert "immutable" in patch({"source": {"git": {"url": "https://git.example/b.git"}}}).message
    k.request(
        kube, "PATCH", path, body={"spec": {"cancel": True}}, content_type="application/merge-patch+json"
    )
    assert "cannot be undone" in patch({"cancel": False}).message
    with pytest.raises(k.ApiError) as both:
        create(
            kube,
            namespace,
            "build",
            "b2",
            source={"git": {"url": "https://x/y.git"}, "configMap": {"name": "c"}},
        )
    assert "exactly one of git or configMap" in both.value.message
    body = {
        "apiVersion": "remora.dev/v1alpha1",
        "kind": "DatabaseMigration",
        "metadata": {"name": "m1"},
        "spec": {"image": "x:1", "databaseSecretRef": {"name": "db", "namespace": "elsewhere"}},
    }
    with pytest.raises(k.ApiError) as strict:
        k.request(
            kube,
            "POST",
            f"{GROUP_PATH}/{namespace}/databasemigrations",
            body=body,
            query={"fieldValidation": "Strict"},
        )
    assert 'unknown field "spec.databaseSecretRef.namespace"' in strict.value.message


def test_an_operator_only_touches_its_own_agents_resources(
    kube: Any, namespace: str, run_operator: Callable[[str], OperatorProcess]
) -> None:
    run_operator("build")
    theirs = {
        "apiVersion": "remora.dev/v1alpha1",
        "kind": "BuildRequest",
        "metadata": {"name": "theirs", "labels": {"remora.dev/agent": "another-agent"}},
        "spec": {"image": "registry.example/work:1"},
    }
    k.request(kube, "POST", f"{GROUP_PATH}/{namespace}/buildrequests", body=theirs)
    create(kube, namespace, "build", "ours")
    wait_job(kube, namespace, "build", "ours")
    time.sleep(1)
    untouched = get(kube, namespace, "build", "theirs")
    assert untouched is not None and "status" not in untouched
    assert len(jobs_in(kube, namespace)) == 1


def test_a_failed_test_run_reports_its_counts(
    kube: Any, namespace: str, run_operator: Callable[[str], OperatorProcess], fake_kubelet: Any
) -> None:
    run_operator("test")
    create(kube, namespace, "test", "t1", command=["pytest"])
    job = wait_job(kube, namespace, "test", "t1")
    message = '{"passed": 40, "failed": 2, "skipped": 1, "summary": "2 failures in test_login"}'
    fake_kubelet.run_and_finish_job_pod(namespace, job["metadata"]["name"], 1, message)
    done = wait_phase(kube, namespace, "test", "t1", "Failed")
    assert done["status"]["result"] == {
        "passed": 40,
        "failed": 2,
        "skipped": 1,
        "summary": "2 failures in test_login",
    }
    assert condition(done, "Failed")["reason"] == "BackoffLimitExceeded"


def test_cancel_deletes_the_job_and_ends_cancelled(
    kube: Any, namespace: str, run_operator: Callable[[str], OperatorProcess]
) -> None:
    run_operator("build")
    create(kube, namespace, "build", "b1")
    wait_job(kube, namespace, "build", "b1")
    k.request(
        kube,
        "PATCH",
        f"{GROUP_PATH}/{namespace}/buildrequests/b1",
        body={"spec": {"cancel": True}},
        content_type="application/merge-patch+json",
    )
    done = wait_phase(kube, namespace, "build", "b1", "Failed")
    assert condition(done, "Failed")["reason"] == "Cancelled"
    assert done["status"]["observedGeneration"] == 2
    wait_until(lambda: not jobs_in(kube, namespace), timeout=30, description="cancelled Job gone")


def test_a_job_deleted_by_someone_else_is_unknown(
    kube: Any, namespace: str, run_operator: Callable[[str], OperatorProcess]
) -> None:
    run_operator("build")
    create(kube, namespace, "build", "b1")
    job = wait_job(kube, namespace, "build", "b1")
    wait_phase(kube, namespace, "build", "b1", "Running")
    k.request(
        kube,
        "DELETE",
        f"/apis/batch/v1/namespaces/{namespace}/jobs/{job['metadata']['name']}",
        body={"propagationPolicy": "Background"},
    )
    done = wait_phase(kube, namespace, "build", "b1", "Unknown")
    assert condition(done, "Running")["reason"] == "JobDeleted"
    time.sleep(1)
    assert not jobs_in(kube, namespace)  # not recreated


def test_migrations_on_one_database_take_turns(
    kube: Any, namespace: str, run_operator: Callable[[str], OperatorProcess], fake_kubelet: Any
) -> None:
    run_operator("migrate")
    db = {"databaseSecretRef": {"name": "orders-db"}}
    create(kube, namespace, "migrate", "m1", **db)
    first = wait_job(kube, namespace, "migrate", "m1")
    create(kube, namespace, "migrate", "m2", **db)
    waiting = wait_phase(kube, namespace, "migrate", "m2", "Pending")
    assert condition(waiting, "Running")["reason"] == "WaitingForLock"
    assert "m1" in condition(waiting, "Running")["message"]
    assert len(jobs_in(kube, namespace)) == 1
    fake_kubelet.run_and_finish_job_pod(namespace, first["metadata"]["name"], 0, "applied 3 migrations")
    wait_phase(kube, namespace, "migrate", "m1", "Succeeded")
    wait_phase(kube, namespace, "migrate", "m2", "Running", timeout=30)
    second = wait_job(kube, namespace, "migrate", "m2")
    assert second["spec"]["template"]["spec"]["containers"][0]["envFrom"] == [
        {"secretRef": {"name": "orders-db"}}
    ]


def test_deleting_a_resource_removes_its_job_and_pods_by_garbage_collection(
    kube: Any, namespace: str, run_operator: Callable[[str], OperatorProcess], fake_kubelet: Any
) -> None:
    run_operator("build")
    create(kube, namespace, "build", "b1")
    job = wait_job(kube, namespace, "build", "b1")
    fake_kubelet.wait_for_pods_of_job(namespace, job["metadata"]["name"])
    (pod,) = pods_in(kube, namespace)
    fake_kubelet.run_pod(namespace, pod["metadata"]["name"])
    k.request(kube, "DELETE", f"{GROUP_PATH}/{namespace}/buildrequests/b1")
    started = time.monotonic()
    wait_until(
        lambda: not jobs_in(kube, namespace) and not pods_in(kube, namespace),
        timeout=30,
        description="Job and pods garbage-collected",
    )
    print(f"\n[operators] Job and pod collected {time.monotonic() - started:.1f}s after the resource")


def test_watches_come_back_after_an_apiserver_restart(
    cluster: Any, kube: Any, namespace: str, run_operator: Callable[[str], OperatorProcess]
) -> None:
    ops = {cap: run_operator(cap) for cap in ("build", "test", "migrate")}
    cluster.restart_apiserver()
    back = time.monotonic()
    create(kube, namespace, "build", "after-b")
    create(kube, namespace, "test", "after-t")
    create(kube, namespace, "migrate", "after-m", databaseSecretRef={"name": "db"})
    for cap, name in (("build", "after-b"), ("test", "after-t"), ("migrate", "after-m")):
        wait_job(kube, namespace, cap, name, timeout=10)
    elapsed = time.monotonic() - back
    print(f"\n[operators] all three reconciled {elapsed:.1f}s after kube-apiserver was ready again")
    assert elapsed <= 10
    for op in ops.values():
        assert op.probe("/readyz") == 200


@pytest.mark.slow
def test_create_then_delete_cycles_leave_no_orphans(
    kube: Any, namespace: str, run_operator: Callable[[str], OperatorProcess]
) -> None:
    cycles = int(os.environ.get("REMORA_E2E_CYCLES", "200"))
    run_operator("build")
    base = f"{GROUP_PATH}/{namespace}/buildrequests"
    for i in range(cycles):
        name = f"c{i % 7}"  # names come back while their predecessors are still being collected
        create(kube, namespace, "build", name)
        if i % 2:
            wait_job(kube, namespace, "build", name)  # delete once its Job exists ...
        k.request(kube, "DELETE", f"{base}/{name}")  # ... or at once, racing the operator
        wait_until(lambda n=name: get(kube, namespace, "build", n) is None, timeout=30, description="deleted")

    def clean() -> bool:
        return not jobs_in(kube, namespace) and not pods_in(kube, namespace)

    wait_until(clean, timeout=60, interval=0.5, description="no orphaned Jobs or pods")
    time.sleep(2)  # and nothing shows up late
    assert clean()
