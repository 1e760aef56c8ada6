"""Fixtures for end-to-end tests against a real local control plane.

Every test collected under tests/e2e gets the ``e2e`` marker (deselect with
``-m "not e2e"``). The first test that asks for ``cluster`` builds or fetches the
pinned binaries if they are not cached (``scripts/controlplane ensure``; slow when
cold) and starts etcd, kube-apiserver and kube-controller-manager on 127.0.0.1;
they are shared by the whole session and stopped at its end.

Fixtures:
    cluster       session  localcluster.LocalCluster (kubeconfig, server, ca_file, ...)
    kube          function kubernetes.client.ApiClient logged in as the admin user
    kubectl       session  kubectl("get", "pods", "-n", ns, check=True, input=None) -> CompletedProcess
    helm          session  helm("install", ...) likewise, with HELM_*_HOME in a temp dir
    namespace     function a fresh namespace (name) whose default ServiceAccount exists; deleted after
    fake_kubelet  function localcluster.kubelet.FakeKubelet(kube)
    admin         module   an admin ApiClient kept for the whole module
    chart_stack   module   security_stack.Stack: the chart installed for this module, Remora's
                           processes run as its ServiceAccounts (test_security, test_tenancy)

When a test fails, the tails of the component logs are added to its report.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from localcluster import BinariesError, ClusterError, LocalCluster, ensure_binaries, wait_until

E2E_DIR = Path(__file__).resolve().parent

_clusters: list[LocalCluster] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: needs the real local control plane (etcd, kube-apiserver, kube-controller-manager)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Hooks of a conftest see every collected item: mark only those under tests/e2e.
    for item in items:
        if item.path.parent == E2E_DIR or E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _clusters and (item.path.parent == E2E_DIR or E2E_DIR in item.path.parents):
        for cl in _clusters:
            report.sections.append(("local control plane logs", cl.tail_logs(40)))
    return report


class Tool:
    """Runs one CLI binary against the cluster; returns ``subprocess.CompletedProcess[str]``."""

    def __init__(self, argv0: Sequence[str], env: dict[str, str]) -> None:
        self.argv0 = list(argv0)
        self.env = env

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        argv = [*self.argv0, *args]
        proc = subprocess.run(
            argv, input=input, capture_output=True, text=True, env=self.env, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {proc.returncode}\n"
                f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        return proc


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    try:
        ensure_binaries()
    except BinariesError as exc:
        pytest.fail(f"cannot build the local control plane: {exc} (try: scripts/controlplane ensure)")
    # The audit log is on from the start: audit-mode policy is checked in it.
    cl = LocalCluster(audit_log=True)
    try:
        cl.start()
    except ClusterError as exc:
        pytest.fail(f"local control plane did not start: {exc}")
    print(
        f"\n[localcluster] {cl.server} ready in {cl.startup_seconds:.1f}s "
        f"({', '.join(f'{k} {v:.1f}s' for k, v in cl.timings.items())}); workdir {cl.workdir}",
        file=sys.stderr,
    )
    _clusters.append(cl)
    try:
        yield cl
    finally:
        _clusters.remove(cl)
        cl.stop()


@contextlib.contextmanager
def _admin_client(cluster: LocalCluster) -> Iterator[Any]:
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def kube(cluster: LocalCluster) -> Iterator[Any]:
    with _admin_client(cluster) as api:
        yield api


@pytest.fixture(scope="session")
def kubectl(cluster: LocalCluster) -> Tool:
    return Tool([str(cluster.binary("kubectl")), f"--kubeconfig={cluster.kubeconfig}"], cluster.env())


@pytest.fixture(scope="session")
def helm(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Tool:
    home = tmp_path_factory.mktemp("helm")
    env = cluster.env()
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        env[var] = str(home / var.split("_")[1].lower())
    return Tool([str(cluster.binary("helm")), f"--kubeconfig={cluster.kubeconfig}"], env)


@pytest.fixture
def namespace(kube: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core: Any = client.CoreV1Api(kube)
    base = "".join(ch if ch.isalnum() else "-" for ch in request.node.name.lower()).strip("-")
    name = f"e2e-{base[:40].strip('-')}-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def default_sa() -> bool:
        try:
            core.read_namespaced_service_account("default", name)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # pods are refused until the serviceaccount controller made "default"
    wait_until(default_sa, timeout=30, description=f"serviceaccount {name}/default")
    try:
        yield name
    finally:
        if os.environ.get("REMORA_KEEP_E2E_NAMESPACES") != "1":
            try:
                core.delete_namespace(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise


@pytest.fixture
def fake_kubelet(kube: Any) -> Any:
    from localcluster.kubelet import FakeKubelet

    return FakeKubelet(kube)


@pytest.fixture(scope="module")
def admin(cluster: LocalCluster) -> Iterator[Any]:
    with _admin_client(cluster) as api:
        yield api


@pytest.fixture(scope="module")
def chart_stack(
    *,
    cluster: LocalCluster,
    admin: Any,
    helm: Tool,
    kubectl: Tool,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Any]:
    import security_stack

    security_stack.ensure_crds(kubectl)
    workdir = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    with security_stack.chart_stack(cluster, admin, helm, workdir) as running:
        yield running
