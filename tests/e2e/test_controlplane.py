"""The local control plane itself: versions, real controllers, restarts, clean shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

import localcluster
from localcluster import HELM_VERSION, K8S_VERSION, KUBECTL_VERSION, LocalCluster, wait_until
from localcluster.cluster import _pid_alive
from localcluster.kubelet import FakeKubelet

REPO = Path(__file__).resolve().parents[2]


def _job(name: str, *, backoff_limit: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36", "command": ["true"]}],
                }
            },
        },
    }


def _job_condition(batch: Any, ns: str, name: str, kind: str) -> dict[str, Any] | None:
    job = json.loads(batch.read_namespaced_job_status(name, ns, _preload_content=False).data)
    for cond in job.get("status", {}).get("conditions") or []:
        if cond["type"] == kind and cond["status"] == "True":
            result: dict[str, Any] = job
            return result
    return None


def _gone(fn: Any, *args: Any) -> bool:
    try:
        fn(*args)
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def test_versions(cluster: LocalCluster, kubectl: Any, helm: Any) -> None:
    out = json.loads(kubectl("version", "-o", "json").stdout)
    assert out["serverVersion"]["gitVersion"] == K8S_VERSION
    assert out["serverVersion"]["major"] == "1"
    assert out["serverVersion"]["minor"] == K8S_VERSION.split(".")[1]
    assert out["clientVersion"]["gitVersion"] == KUBECTL_VERSION
    assert cluster.server_version()["gitVersion"] == K8S_VERSION
    assert helm("version", "--short").stdout.startswith(HELM_VERSION)
    # helm reaches the cluster too
    assert helm("list", "-A").returncode == 0


def test_admin_is_cluster_admin_and_webhooks_are_served(kubectl: Any) -> None:
    assert kubectl("auth", "can-i", "*", "*").stdout.strip() == "yes"
    resources = kubectl("api-resources", "-o", "name").stdout.split()
    assert "mutatingwebhookconfigurations.admissionregistration.k8s.io" in resources
    assert "validatingwebhookconfigurations.admissionregistration.k8s.io" in resources
    assert "customresourcedefinitions.apiextensions.k8s.io" in resources


def test_job_completes_when_its_pod_succeeds(kube: Any, namespace: str, fake_kubelet: FakeKubelet) -> None:
    batch: Any = client.BatchV1Api(kube)
    batch.create_namespaced_job(namespace, _job("ok"))
    pods = fake_kubelet.wait_for_pods_of_job(namespace, "ok", count=1)
    assert len(pods) == 1 and "nodeName" not in pods[0]["spec"]  # no scheduler here
    name = pods[0]["metadata"]["name"]

    running = fake_kubelet.run_pod(namespace, name)
    assert running["status"]["phase"] == "Running"
    wait_until(
        lambda: (batch.read_namespaced_job_status("ok", namespace).status.ready or 0) == 1,
        description="job ok: status.ready == 1",
    )

    done = fake_kubelet.finish_pod(namespace, name, exit_code=0, message="all good")
    assert done["status"]["phase"] == "Succeeded"
    job = wait_until(
        lambda: _job_condition(batch, namespace, "ok", "Complete"), description="job ok Complete"
    )
    assert job["status"]["succeeded"] == 1
    assert fake_kubelet.pods_of_job(namespace, "ok")[0]["metadata"]["name"] == name
    status = fake_kubelet.get_pod(namespace, name)["status"]
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0 and terminated["message"] == "all good"


def test_job_fails_when_its_pod_fails(kube: Any, namespace: str, fake_kubelet: FakeKubelet) -> None:
    batch: Any = client.BatchV1Api(kube)
    created = batch.create_namespaced_job(namespace, _job("bad", backoff_limit=0))
    pod = fake_kubelet.run_and_finish_job_pod(namespace, "bad", exit_code=3, message="boom: exit 3")
    assert pod["status"]["phase"] == "Failed"
    job = wait_until(lambda: _job_condition(batch, namespace, "bad", "Failed"), description="job bad Failed")
    assert job["status"]["failed"] == 1
    by_uid = fake_kubelet.pods_of_job(namespace, "bad", job_uid=created.metadata.uid)
    assert [p["metadata"]["name"] for p in by_uid] == [pod["metadata"]["name"]]
    state = by_uid[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert state == {**state, "exitCode": 3, "reason": "Error", "message": "boom: exit 3"}


def test_deployment_rolls_out_with_fake_kubelet(kube: Any, namespace: str, fake_kubelet: FakeKubelet) -> None:
    apps: Any = client.AppsV1Api(kube)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                },
            },
        },
    )

    def two_pods() -> list[dict[str, Any]] | None:
        pods = fake_kubelet.list_pods(namespace, "app=web")
        return pods if len(pods) == 2 else None

    pods = wait_until(two_pods, description="2 pods of deployment web")
    for pod in pods:
        fake_kubelet.run_pod(namespace, pod["metadata"]["name"])

    def available() -> bool:
        return (apps.read_namespaced_deployment_status("web", namespace).status.available_replicas or 0) == 2

    wait_until(available, description="deployment web available")


def test_ownerreference_garbage_collection(kube: Any, namespace: str) -> None:
    core: Any = client.CoreV1Api(kube)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}, "data": {"a": "1"}})
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {
                "name": "dependent",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
                ],
            },
            "data": {"b": "2"},
        },
    )
    core.delete_namespaced_config_map("owner", namespace)
    wait_until(
        lambda: _gone(core.read_namespaced_config_map, "dependent", namespace),
        timeout=30,
        description="garbage collection of the dependent ConfigMap",
    )


def test_restart_apiserver(cluster: LocalCluster, kube: Any, namespace: str) -> None:
    core: Any = client.CoreV1Api(kube)
    cm = core.create_namespaced_config_map(namespace, {"metadata": {"name": "survivor"}})
    old_pid = cluster.pids["kube-apiserver"]
    started = time.monotonic()
    cluster.restart_apiserver()
    elapsed = time.monotonic() - started
    print(f"restart_apiserver took {elapsed:.1f}s")
    assert cluster.pids["kube-apiserver"] != old_pid
    assert not _pid_alive(old_pid)
    assert cluster.readyz()
    # the same client (with pooled, now dead, connections) works again
    again = wait_until(
        lambda: core.read_namespaced_config_map("survivor", namespace),
        timeout=10,
        description="configmap readable after restart",
    )
    assert again.metadata.uid == cm.metadata.uid
    # a watch started after the restart sees new events; the controllers reconnected
    w = watch.Watch()
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "after-restart"}})
    seen = []
    for ev in w.stream(core.list_namespaced_config_map, namespace, timeout_seconds=5):
        seen.append(ev["object"].metadata.name)
        if ev["object"].metadata.name == "after-restart":
            w.stop()
    assert "after-restart" in seen
    # crash-style restart too
    cluster.restart_apiserver(graceful=False)
    assert core.read_namespaced_config_map("after-restart", namespace).metadata.name == "after-restart"


def test_stop_leaves_no_process_and_no_files() -> None:
    started = time.monotonic()
    with LocalCluster(wait_for_controllers=True) as cl:
        startup = time.monotonic() - started
        pids = dict(cl.pids)
        workdir = cl.workdir
        assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager"}
        assert all(cl.alive().values())
        assert cl.readyz()
        for path in cl.log_paths.values():
            assert path.is_file()
    print(f"fresh cluster startup {startup:.1f}s")
    for name, pid in pids.items():
        assert not _pid_alive(pid), f"{name} (pid {pid}) survived stop()"
    assert not workdir.exists()


def test_processes_die_with_the_python_process_that_started_them(tmp_path: Path) -> None:
    """Even a SIGKILLed test runner leaves nothing behind (PR_SET_PDEATHSIG)."""
    pid_file = tmp_path / "pids.json"
    script = (
        "import json, sys, time\n"
        "from localcluster import LocalCluster\n"
        f"cl = LocalCluster({str(tmp_path / 'cluster')!r}, wait_for_controllers=False).start()\n"
        f"open({str(pid_file)!r}, 'w').write(json.dumps(cl.pids))\n"
        "time.sleep(300)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        wait_until(pid_file.exists, timeout=90, description="child cluster started")
        pids = json.loads(pid_file.read_text())
        assert all(_pid_alive(p) for p in pids.values())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    wait_until(
        lambda: not any(_pid_alive(p) for p in pids.values()),
        timeout=10,
        description="components of a killed parent to exit",
    )


def test_reuse_or_start(tmp_path: Path) -> None:
    state_dir = tmp_path / "demo"
    first = LocalCluster.reuse_or_start(state_dir)
    try:
        assert not first.reused and first.readyz()
        second = LocalCluster.reuse_or_start(state_dir)
        assert second.reused
        assert second.pids == first.pids and second.server == first.server
        assert second.kubeconfig == first.kubeconfig
    finally:
        first.stop()
    assert not any(_pid_alive(p) for p in first.pids.values())
    assert not (state_dir / "cluster.json").exists()


def test_scripts_controlplane_ensure_is_fast_when_cached() -> None:
    started = time.monotonic()
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "controlplane"), "ensure"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    elapsed = time.monotonic() - started
    bin_dir = Path(out.stdout.strip().splitlines()[-1])
    assert bin_dir == localcluster.bin_dir()
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "helm"):
        assert os.access(bin_dir / name, os.X_OK)
    assert elapsed < 10, f"cached ensure took {elapsed:.1f}s"


def test_start_retries_when_a_picked_port_is_taken(monkeypatch: Any) -> None:
    import socket

    from localcluster import cluster as cluster_mod

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    real = cluster_mod.free_ports
    calls: list[list[int]] = []

    def first_one_busy(count: int) -> list[int]:
        ports = real(count)
        if not calls:
            ports[0] = busy.getsockname()[1]  # etcd's client port
        calls.append(ports)
        return ports

    monkeypatch.setattr(cluster_mod, "free_ports", first_one_busy)
    try:
        with LocalCluster(wait_for_controllers=False) as cl:
            assert cl.readyz()
            assert len(calls) == 2
            assert "address already in use" in cl.log_paths["etcd"].read_text()
    finally:
        busy.close()


def test_stale_workdirs_of_killed_runs_are_swept() -> None:
    import tempfile

    from localcluster import cluster as cluster_mod

    dead = Path(tempfile.mkdtemp(prefix=cluster_mod.TEMP_PREFIX))
    (dead / "etcd-data").mkdir()
    state = dead / cluster_mod.STATE_FILE
    state.write_text(json.dumps({"pids": {"etcd": 2**22 + 1}}))  # above pid_max: never alive
    os.utime(state, (time.time() - 3600, time.time() - 3600))
    fresh = Path(tempfile.mkdtemp(prefix=cluster_mod.TEMP_PREFIX))  # no state file: kept
    try:
        cluster_mod._sweep_stale_workdirs()
        assert not dead.exists()
        assert fresh.exists()
    finally:
        fresh.rmdir()
