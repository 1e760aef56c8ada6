"""Remora installed on a local control plane the way a user runs it in URL mode.

The chart goes in with Helm, its webhooks calling https://127.0.0.1:PORT (127.0.0.1 in
``certs.extraSANs``, as the chart requires); ``remora certs bootstrap`` writes the first
certificates, the release's Secret and the caBundle; ``remora certs run`` (optional) keeps them
valid; ``remora serve`` answers on that port, following the chart's catalog ConfigMap. The
``remora`` commands run as local subprocesses with the credentials of ``kubeconfig`` (the
admin's, or a token of the chart's ServiceAccount that the caller writes there before
bootstrapping), each logging into ``<workdir>/<name>.log``.

    release = RemoraRelease(cluster, api, workdir)
    release.install()
    release.bootstrap_certs()
    release.start_serve()
    release.wait_injecting(namespace_with_injection_label)
    ...
    release.close()

Shared by the end-to-end tests (tests/e2e) and the benchmarks (bench/); nothing here talks to
the webhook behind the apiserver's back except the ``/readyz`` probe.
"""

from __future__ import annotations

import contextlib
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from common.kube import ApiError, request
from common.names import CAPABILITIES_ANNOTATION, CATALOG_CONFIGMAP, STATUS_ANNOTATION

from .cluster import PRCTL, SETPRIV, LocalCluster, signal_group
from .ports import LOCALHOST, free_port
from .waiting import wait_until

# The chart of the source checkout this package runs from.
REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "remora"
HELM_TIMEOUT = 120.0
LOG_TAIL_LINES = 40

Helm = Callable[..., object]  # helm(*args): runs `helm args...`, raises when it fails


class ReleaseError(RuntimeError):
    """A step of the installation failed; the message says which, with the tool's output."""


def chart_fullname(release: str) -> str:
    """The chart's fullname (the prefix of its objects): the release name when it contains "remora"."""
    return release if "remora" in release else f"{release}-remora"


def url_mode_values(url: str) -> list[str]:
    """The chart's values for webhooks served at ``url`` outside the cluster, one replica."""
    return [
        "--set", f"webhook.url={url}",
        "--set", "certs.extraSANs={" + LOCALHOST + "}",
        "--set", "replicaCount=1",
    ]  # fmt: skip


def hardened_pod(name: str, capabilities: str | None = "build", **labels: str) -> dict[str, Any]:
    """An agent pod that meets every policy level, so only the webhook's injection decides."""
    annotations = {CAPABILITIES_ANNOTATION: capabilities} if capabilities is not None else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
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
                    "name": "agent",
                    "image": "registry.k8s.io/pause:3.10",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "runAsNonRoot": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {"limits": {"memory": "16Mi"}},
                }
            ],
        },
    }


def generated_hardened_pod(namespace: str, capabilities: str | None = "build") -> dict[str, Any]:
    """`hardened_pod` in `namespace`, named by the apiserver (generateName "agent-")."""
    pod = hardened_pod("", capabilities or None)
    pod["metadata"] = {
        "generateName": "agent-",
        "namespace": namespace,
        "annotations": pod["metadata"]["annotations"],
    }
    return pod


def wait_for_default_serviceaccount(api: Any, namespace: str, timeout: float = 30.0) -> None:
    """Pods are refused until the serviceaccount controller has made "default"."""

    def exists() -> bool:
        try:
            request(api, "GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/default")
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True

    wait_until(exists, timeout=timeout, interval=0.3, description=f"serviceaccount {namespace}/default")


def create_namespace(api: Any, name: str, labels: Mapping[str, str] | None = None) -> str:
    """A new namespace, returned once pods can be created in it."""
    request(
        api, "POST", "/api/v1/namespaces", body={"metadata": {"name": name, "labels": dict(labels or {})}}
    )
    wait_for_default_serviceaccount(api, name)
    return name


class RemoraProcess:
    """``remora ARGS`` as a subprocess logging into ``<log_dir>/<name>.log``.

    It leads its own process group, so stopping it reaches its children too (the workers of
    ``serve --workers``), and it gets SIGKILL from the kernel when its parent dies, so not
    even a killed test or benchmark leaves it behind.
    """

    def __init__(self, name: str, args: Sequence[str], log_dir: Path, env: Mapping[str, str]) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        argv = [sys.executable, "-m", "remora", *args]
        if SETPRIV:  # setpriv execs the command: the pid stays the command's
            argv = [SETPRIV, "--pdeathsig", "KILL", "--", *argv]
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=REPO,
                start_new_session=True,
                preexec_fn=None if SETPRIV else PRCTL,  # noqa: PLW1509 - only sets PR_SET_PDEATHSIG
            )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to the group, SIGKILL after ``grace`` seconds, then to whatever is left of it."""
        if self.alive():
            signal_group(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                signal_group(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        signal_group(self.pid, signal.SIGKILL)

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return log_tail(self.log, lines)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "<no log>"


class RemoraRelease:
    """The chart installed by Helm in URL mode, and the `remora` processes its Deployment would run.

    ``kubeconfig`` holds the credentials the `remora` commands use (default: the cluster's
    admin); ``values`` are more Helm arguments for install and upgrade; ``secret`` is the
    Secret the certificates go into (default: the command's); ``helm`` runs Helm (default:
    the cluster's helm binary as the admin, its state under ``<workdir>/helm``).
    """

    def __init__(
        self,
        cluster: LocalCluster,
        api: Any,
        workdir: Path,
        *,
        release: str = "remora",
        namespace: str = "remora-system",
        values: Sequence[str] = (),
        kubeconfig: Path | None = None,
        secret: str | None = None,
        helm: Helm | None = None,
        chart: Path = CHART,
    ) -> None:
        self.cluster = cluster
        self.api = api
        self.workdir = workdir
        self.release = release
        self.namespace = namespace
        self.values = list(values)
        self.kubeconfig = kubeconfig or cluster.kubeconfig
        self.secret = secret
        self.helm = helm or self._run_helm
        self.chart = chart
        self.port = free_port()
        self.url = f"https://{LOCALHOST}:{self.port}"
        self.cert_dir = workdir / "certs"
        self.procs: dict[str, RemoraProcess] = {}
        self.installed = False

    @property
    def fullname(self) -> str:
        return chart_fullname(self.release)

    @property
    def env(self) -> dict[str, str]:
        """Environment of the `remora` commands: the cluster's, with ``kubeconfig``."""
        return {**self.cluster.env(), "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"}

    # -- the chart

    def install(self) -> None:
        """Create the release namespace and `helm install` the chart into it."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        create_namespace(self.api, self.namespace)
        self.helm("install", self.release, str(self.chart), "-n", self.namespace, *self._values())
        self.installed = True

    def upgrade(self, *values: str) -> None:
        """`helm upgrade` with the release's values and these more."""
        self.helm("upgrade", self.release, str(self.chart), "-n", self.namespace, *self._values(), *values)

    def uninstall(self) -> None:
        self.helm("uninstall", self.release, "-n", self.namespace, "--wait", "--timeout=60s")
        self.installed = False

    def _values(self) -> list[str]:
        return [*url_mode_values(self.url), *self.values]

    # -- certificates

    def bootstrap_certs(self, *lifetimes: str) -> None:
        """`remora certs bootstrap`: CA, serving certificate, Secret, caBundle, files in cert_dir."""
        self.run("certs", "bootstrap", *self._certs_args(), *lifetimes)

    def start_certs(self, *lifetimes: str, identity: str) -> RemoraProcess:
        """`remora certs run`, the rotation, in place of one already running."""
        args = ["certs", "run", *self._certs_args(), "--poll=1s", f"--identity={identity}", *lifetimes]
        return self.start("certs", args)

    def _certs_args(self) -> list[str]:
        secret = [f"--secret={self.secret}"] if self.secret else []
        return [
            f"--kubeconfig={self.kubeconfig}",
            f"--namespace={self.namespace}",
            *secret,
            f"--service={self.fullname}-webhook",
            f"--extra-san={LOCALHOST}",
            f"--webhook-config={self.fullname}",
            f"--cert-dir={self.cert_dir}",
        ]

    # -- the webhook server

    def start_serve(self, *more: str, reload_seconds: float = 0.5, timeout: float = 60.0) -> RemoraProcess:
        """`remora serve` on the release's port (in place of one already running), once /readyz answers."""
        args = [
            "serve", f"--kubeconfig={self.kubeconfig}", f"--host={LOCALHOST}", f"--port={self.port}",
            f"--tls-cert={self.cert_dir / 'tls.crt'}", f"--tls-key={self.cert_dir / 'tls.key'}",
            f"--catalog-configmap={self.namespace}/{CATALOG_CONFIGMAP}", f"--reload-seconds={reload_seconds}",
            *more,
        ]  # fmt: skip
        proc = self.start("serve", args)
        try:
            wait_until(self.serve_ready, timeout=timeout, interval=0.2, description="remora serve ready")
        except TimeoutError as exc:
            raise ReleaseError(f"{exc}\n--- {proc.log}\n{proc.tail()}") from None
        return proc

    def serve_ready(self) -> bool:
        """True once `remora serve` answers /readyz over TLS with the release's CA."""
        proc = self.procs["serve"]
        if not proc.alive():
            raise ReleaseError(f"remora serve exited with {proc.popen.returncode}\n{proc.tail()}")
        context = ssl.create_default_context(cafile=str(self.cert_dir / "ca.crt"))
        try:
            return httpx.get(f"{self.url}/readyz", verify=context, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_injecting(self, namespace: str, timeout: float = 30.0) -> None:
        """Until the apiserver sends a (dry-run) pod of ``namespace`` to the webhook and gets it injected.

        ``namespace`` must carry the injection label.
        """
        path = f"/api/v1/namespaces/{namespace}/pods"

        def injected() -> bool:
            try:
                pod = request(self.api, "POST", path, body=hardened_pod("probe"), query={"dryRun": "All"})
            except ApiError:
                return False
            return STATUS_ANNOTATION in (pod["metadata"].get("annotations") or {})

        try:
            wait_until(
                injected,
                timeout=timeout,
                interval=0.3,
                description="the apiserver to inject through the webhook",
            )
        except TimeoutError as exc:
            raise ReleaseError(f"{exc}\n--- remora serve log\n{self.log_tail('serve')}") from None

    # -- processes

    def start(self, name: str, args: Sequence[str]) -> RemoraProcess:
        """`remora ARGS` as the process ``name``, stopping the one of that name first."""
        self.stop(name)
        self.procs[name] = RemoraProcess(name, args, self.workdir, self.env)
        return self.procs[name]

    def running(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.alive()

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            proc.stop()

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)

    def log_tail(self, name: str, lines: int = LOG_TAIL_LINES) -> str:
        return log_tail(self.workdir / f"{name}.log", lines)

    def run(self, *args: str, timeout: float = 120.0) -> str:
        """`remora ARGS` to its end, with the release's credentials; its output, or ReleaseError."""
        what = f"remora {' '.join(args[:2])}"
        return _run([sys.executable, "-m", "remora", *args], self.env, what, timeout)

    def close(self) -> None:
        """Stop the processes, uninstall the chart and delete the release namespace (best effort)."""
        self.stop_all()
        if self.installed:
            with contextlib.suppress(Exception):  # cleanup: the caller's error matters more
                self.uninstall()
            self.installed = False
        with contextlib.suppress(ApiError):
            request(self.api, "DELETE", f"/api/v1/namespaces/{self.namespace}")

    def _run_helm(self, *args: str) -> str:
        env = self.cluster.env()
        for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            env[var] = str(self.workdir / "helm" / var.split("_")[1].lower())
        argv = [str(self.cluster.binary("helm")), f"--kubeconfig={self.cluster.kubeconfig}", *args]
        return _run(argv, env, f"helm {args[0]}", HELM_TIMEOUT)


def _run(argv: list[str], env: Mapping[str, str], what: str, timeout: float) -> str:
    proc = subprocess.run(
        argv, capture_output=True, text=True, env=dict(env), cwd=REPO, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise ReleaseError(f"{what} exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    return proc.stdout
