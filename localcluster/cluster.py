"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

No scheduler and no kubelet: pods stay Pending unless a test plays the kubelet
(see :mod:`localcluster.kubelet`). Every component listens on 127.0.0.1 only, on
ports picked at start, and logs into ``<workdir>/logs/<component>.log``.

    with LocalCluster() as cluster:
        subprocess.run(["kubectl", "--kubeconfig", str(cluster.kubeconfig), "get", "ns"])

Processes run in their own process groups; :meth:`LocalCluster.stop` sends
SIGTERM to each group, then SIGKILL. An atexit hook stops every cluster that is
still running, and (unless ``detach=True``) the processes get SIGKILL from the
kernel if the Python process that started them dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import http.client
import ipaddress
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from . import pki
from .binaries import K8S_VERSION, bin_dir, ensure_binaries
from .ports import free_ports

ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
COMPONENTS = (ETCD, APISERVER, CONTROLLER_MANAGER)

# Names as kube-controller-manager 1.34 prints them in --help (the old short
# aliases such as "garbagecollector" or "job" are accepted too).
DEFAULT_CONTROLLERS: tuple[str, ...] = (
    "garbage-collector-controller",
    "job-controller",
    "cronjob-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "deployment-controller",
    "replicaset-controller",
)

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
STATE_FILE = "cluster.json"
TEMP_PREFIX = "remora-kube-"
PORT_ATTEMPTS = 3
# Opt-in audit log: request metadata (with webhooks' audit annotations) for pods only.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    resources: [{group: "", resources: [pods]}]
  - level: None
"""
USER_NAME = "remora-admin"
CONTEXT_NAME = "remora-local"


class ClusterError(RuntimeError):
    """The local control plane failed to start or answer."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _pid_runs(pid: int, binary_name: str) -> bool:
    """True when ``pid`` is alive and runs ``binary_name`` (guards against pid reuse)."""
    if not _pid_alive(pid):
        return False
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
    except OSError:
        return False
    return os.path.basename(argv0) == binary_name


def signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # each component is a session (and group) leader
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _libc_prctl() -> Callable[[], None] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def set_pdeathsig() -> None:
        prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG

    return set_pdeathsig


SETPRIV = shutil.which("setpriv")
PRCTL = None if SETPRIV else _libc_prctl()

_LIVE: set[LocalCluster] = set()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _stop_all_at_exit() -> None:
    with _LIVE_LOCK:
        clusters = list(_LIVE)
    for cluster in clusters:
        if not cluster.detach:
            with contextlib.suppress(Exception):  # best effort at interpreter exit
                cluster.stop(timeout=5.0)


def _sweep_stale_workdirs(max_age: float = 60.0) -> None:
    """Remove temp workdirs of clusters that died without stop() (a SIGKILLed test run).

    Only ``remora-kube-*`` dirs in the temp dir that still hold a state file (stop()
    removes it) whose processes are all gone, and that were not touched for ``max_age``.
    """
    for workdir in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        state_file = workdir / STATE_FILE
        try:
            age = time.time() - state_file.stat().st_mtime
            pids = json.loads(state_file.read_text())["pids"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if age >= max_age and pids and not any(_pid_runs(int(p), n) for n, p in pids.items()):
            shutil.rmtree(workdir, ignore_errors=True)


class _Proc:
    """One component: a child we spawned (``popen``) or a pid adopted from a state file."""

    def __init__(self, name: str, pid: int, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.name = name
        self.pid = pid
        self.popen = popen

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return _pid_runs(self.pid, self.name)

    def exit_code(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    def terminate(self, timeout: float) -> None:
        if not self.alive():
            self._reap()
            return
        if timeout > 0:
            signal_group(self.pid, signal.SIGTERM)
        if timeout <= 0 or not self._wait(timeout):
            signal_group(self.pid, signal.SIGKILL)
            self._wait(5.0)
        # leftovers of the group (none expected: the components don't fork)
        signal_group(self.pid, signal.SIGKILL)
        self._reap()

    def _wait(self, timeout: float) -> bool:
        if self.popen is not None:
            try:
                self.popen.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(self.pid):
                return True
            time.sleep(0.05)
        return not _pid_alive(self.pid)

    def _reap(self) -> None:
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(1.0)


class LocalCluster:
    """etcd + kube-apiserver + kube-controller-manager on 127.0.0.1.

    Attributes available after :meth:`start`: ``server`` (``https://127.0.0.1:PORT``),
    ``kubeconfig`` (admin kubeconfig, user in ``system:masters``), ``ca_file``,
    ``audit_log_path`` (with ``audit_log=True`` or after :meth:`enable_audit_log`),
    ``admin_cert_file``/``admin_key_file``, ``workdir``, ``log_paths``
    (component → log file), ``ports``, ``pids``, ``startup_seconds``.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str] | None = None,
        *,
        bin_path: str | os.PathLike[str] | None = None,
        controllers: Sequence[str] = DEFAULT_CONTROLLERS,
        extra_etcd_args: Sequence[str] = (),
        extra_apiserver_args: Sequence[str] = (),
        extra_controller_manager_args: Sequence[str] = (),
        service_cluster_ip_range: str = SERVICE_CLUSTER_IP_RANGE,
        wait_for_controllers: bool = True,
        startup_timeout: float = 120.0,
        detach: bool = False,
        keep_workdir: bool | None = None,
        audit_log: bool = False,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
        self.workdir = self.workdir.resolve()
        self.bin_path = Path(bin_path) if bin_path is not None else None
        self.controllers = tuple(controllers)
        self.extra_etcd_args = tuple(extra_etcd_args)
        self.extra_apiserver_args = tuple(extra_apiserver_args)
        self.extra_controller_manager_args = tuple(extra_controller_manager_args)
        self.service_cluster_ip_range = service_cluster_ip_range
        self.wait_for_controllers = wait_for_controllers
        self.startup_timeout = startup_timeout
        self.detach = detach
        if keep_workdir is None:
            keep_workdir = bool(os.environ.get("REMORA_KEEP_CLUSTER_DIR")) or not self._own_workdir
        self.keep_workdir = keep_workdir
        self.reused = False

        self.pki_dir = self.workdir / "pki"
        self.log_dir = self.workdir / "logs"
        self.etcd_data_dir = self.workdir / "etcd-data"
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        self.ca_file = self.pki_dir / "ca.crt"
        self.admin_cert_file = self.pki_dir / "admin.crt"
        self.admin_key_file = self.pki_dir / "admin.key"
        self.log_paths: dict[str, Path] = {c: self.log_dir / f"{c}.log" for c in COMPONENTS}
        self.audit_policy_file = self.workdir / "audit-policy.yaml"
        # The apiserver's audit log (JSON lines, one event per line), or None when off.
        self.audit_log_path: Path | None = self.log_dir / "audit.log" if audit_log else None
        self.ports: dict[str, int] = {}
        self.argv: dict[str, list[str]] = {}
        self.server = ""
        self.startup_seconds: float | None = None
        self.timings: dict[str, float] = {}
        self._procs: dict[str, _Proc] = {}
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ public API

    def __enter__(self) -> LocalCluster:
        if not self._procs:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pids(self) -> dict[str, int]:
        """Component → pid of the processes this cluster manages (running or not)."""
        return {name: proc.pid for name, proc in self._procs.items()}

    @property
    def api_port(self) -> int:
        return self.ports[APISERVER]

    def binary(self, name: str) -> Path:
        return (self.bin_path or bin_dir()) / name

    def start(self) -> LocalCluster:
        """Generate certs, start the three components, wait until the API is ready."""
        with self._lock:
            if self._procs:
                raise ClusterError("cluster already started")
            t0 = time.monotonic()
            if self.bin_path is None:
                self.bin_path = ensure_binaries()
            t_bin = time.monotonic()
            if self._own_workdir:
                _sweep_stale_workdirs()
            for d in (self.workdir, self.pki_dir, self.log_dir):
                d.mkdir(parents=True, exist_ok=True)
            self._write_pki()
            t_pki = time.monotonic()
            with _LIVE_LOCK:
                _LIVE.add(self)
            for attempt in range(1, PORT_ATTEMPTS + 1):
                try:
                    t_api = self._start_components()
                    break
                except ClusterError as exc:
                    # ports are picked free but could be taken before a component binds them
                    if attempt < PORT_ATTEMPTS and "address already in use" in str(exc):
                        self._terminate_all(0.0)  # a failed start: SIGKILL
                        shutil.rmtree(self.etcd_data_dir, ignore_errors=True)
                        continue
                    self.stop()
                    raise
                except BaseException:
                    self.stop()
                    raise
            t_end = time.monotonic()
            self.timings = {
                "binaries": t_bin - t0,
                "pki": t_pki - t_bin,
                "apiserver_ready": t_api - t_pki,
                "controllers_ready": t_end - t_api,
            }
            self.startup_seconds = t_end - t_bin
            self._write_state()
            return self

    def _start_components(self) -> float:
        """Pick ports, start etcd and kube-apiserver, wait; start kube-controller-manager.

        Returns the monotonic time at which the API became ready.
        """
        etcd_client, etcd_peer, api = free_ports(3)
        self.ports = {ETCD: etcd_client, "etcd-peer": etcd_peer, APISERVER: api}
        self.server = f"https://127.0.0.1:{api}"
        self._write_kubeconfigs()
        self.argv = {
            ETCD: self._etcd_argv(),
            APISERVER: self._apiserver_argv(),
            CONTROLLER_MANAGER: self._controller_manager_argv(),
        }
        self._spawn(ETCD)
        self._spawn(APISERVER)  # retries etcd on its own while etcd comes up
        self._wait_apiserver_ready(time.monotonic() + self.startup_timeout)
        t_api = time.monotonic()
        # kube-controller-manager gives up if the API is not healthy within ~10 s
        # of its start, so it starts once the API is ready.
        self._spawn(CONTROLLER_MANAGER)
        if self.wait_for_controllers:
            self._wait_controllers_ready(time.monotonic() + self.startup_timeout)
        return t_api

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every component (SIGTERM to the process group, then SIGKILL) and clean up."""
        with self._lock:
            self._terminate_all(timeout)
            with _LIVE_LOCK:
                _LIVE.discard(self)
            state = self.workdir / STATE_FILE
            state.unlink(missing_ok=True)
            if not self.keep_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def _terminate_all(self, timeout: float) -> None:
        with self._lock:
            order = [CONTROLLER_MANAGER, APISERVER, ETCD]
            procs = [self._procs[n] for n in order if n in self._procs]
            threads = [
                threading.Thread(target=p.terminate, args=(timeout,), daemon=True)
                for p in procs
                if p.name != ETCD
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if ETCD in self._procs:
                self._procs[ETCD].terminate(timeout)
            self._procs.clear()

    def alive(self) -> dict[str, bool]:
        """Component → whether its process is running."""
        return {name: proc.alive() for name, proc in self._procs.items()}

    def stop_apiserver(self, *, graceful: bool = True, timeout: float = 3.0) -> None:
        """Stop kube-apiserver only (etcd and the controller manager keep running).

        Graceful: SIGTERM, then SIGKILL after ``timeout`` seconds. kube-apiserver stops
        listening at once but waits up to --request-timeout (60 s) for open watches to
        end, so with watchers connected the SIGKILL is what ends it; clients see their
        connections reset either way. ``graceful=False`` sends SIGKILL straight away
        (a crash).
        """
        with self._lock:
            proc = self._procs.pop(APISERVER, None)
            if proc is not None:
                proc.terminate(timeout if graceful else 0.0)

    def start_apiserver(self, timeout: float = 60.0) -> None:
        """Start kube-apiserver again with the same flags and port; wait until ready."""
        with self._lock:
            if APISERVER in self._procs and self._procs[APISERVER].alive():
                raise ClusterError("kube-apiserver is already running")
            self._spawn(APISERVER)
            self._wait_apiserver_ready(time.monotonic() + timeout)
            self._write_state()

    def restart_apiserver(self, *, graceful: bool = True, timeout: float = 60.0) -> None:
        """Stop and start kube-apiserver (same flags, same port); wait until ready.

        Objects in etcd survive; resourceVersions go on. See :meth:`stop_apiserver`.
        """
        self.stop_apiserver(graceful=graceful)
        self.start_apiserver(timeout)

    def enable_audit_log(self, timeout: float = 60.0) -> Path:
        """Turn the audit log on (pods, Metadata level) and return its path.

        On a running cluster this restarts kube-apiserver with the audit flags (see
        :meth:`restart_apiserver`); a no-op when the log is already on.
        """
        with self._lock:
            if self.audit_log_path is not None:
                return self.audit_log_path
            self.audit_log_path = self.log_dir / "audit.log"
            if APISERVER in self._procs:
                self.argv[APISERVER] = self._apiserver_argv()
                self.restart_apiserver(timeout=timeout)
            return self.audit_log_path

    def restart_controller_manager(self, timeout: float = 15.0) -> None:
        with self._lock:
            proc = self._procs.pop(CONTROLLER_MANAGER, None)
            if proc is not None:
                proc.terminate(timeout)
            self._spawn(CONTROLLER_MANAGER)
            self._write_state()

    def readyz(self, timeout: float = 2.0) -> bool:
        """True when ``GET /readyz`` answers 200."""
        try:
            status, _ = self.get("/readyz", timeout=timeout)
        except (OSError, http.client.HTTPException, ssl.SSLError):
            return False
        return status == 200

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        """``GET path`` as the admin user; returns (status, body)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(str(self.admin_cert_file), str(self.admin_key_file))
        conn = http.client.HTTPSConnection("127.0.0.1", self.api_port, context=ctx, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def server_version(self) -> dict[str, Any]:
        status, body = self.get("/version")
        if status != 200:
            raise ClusterError(f"/version answered {status}: {body[:200]!r}")
        result: dict[str, Any] = json.loads(body)
        return result

    def tail_logs(self, lines: int = 40, components: Sequence[str] = COMPONENTS) -> str:
        """The last ``lines`` lines of each component's log, for failure reports."""
        out = []
        for name in components:
            path = self.log_paths[name]
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                text = ["<no log>"]
            out.append(f"----- {name} ({path}) -----")
            out.extend(text)
        return "\n".join(out)

    def env(self) -> dict[str, str]:
        """Environment for tools run against this cluster (KUBECONFIG, PATH with the binaries)."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = f"{self.bin_path or bin_dir()}{os.pathsep}{env.get('PATH', '')}"
        return env

    @classmethod
    def attach(cls, state_dir: str | os.PathLike[str]) -> LocalCluster | None:
        """The detached cluster recorded in ``state_dir``, to inspect or :meth:`stop`; None if none is."""
        state_file = Path(state_dir).resolve() / STATE_FILE
        return cls._from_state(state_file, detach=True) if state_file.exists() else None

    @classmethod
    def reuse_or_start(cls, state_dir: str | os.PathLike[str], **kwargs: Any) -> LocalCluster:
        """Reuse the cluster whose state is in ``state_dir`` if it still runs, else start one there.

        The cluster is detached (it outlives this process) and keeps its files in
        ``state_dir``; call :meth:`stop` to end it. ``reused`` tells which case happened.
        """
        state_dir = Path(state_dir).resolve()
        kwargs.setdefault("detach", True)
        state_file = state_dir / STATE_FILE
        if state_file.exists():
            cluster = cls._from_state(state_file, **kwargs)
            if cluster is not None:
                if all(cluster.alive().values()) and cluster.readyz():
                    cluster.reused = True
                    return cluster
                cluster.stop()  # kills whatever is left of it, removes the state file
        for name in ("pki", "logs", "etcd-data", "admin.kubeconfig", "controller-manager.kubeconfig"):
            path = state_dir / name
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        return cls(state_dir, **kwargs).start()

    # ------------------------------------------------------------------ internals

    def _write_pki(self) -> None:
        ca = pki.CertificateAuthority()
        ca.pair.write(self.ca_file, self.pki_dir / "ca.key")
        first_service_ip = _first_service_ip(self.service_cluster_ip_range)
        ca.issue(
            "kube-apiserver",
            dns_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            ip_addresses=("127.0.0.1", "::1", first_service_ip),
            server=True,
        ).write(self.pki_dir / "apiserver.crt", self.pki_dir / "apiserver.key")
        ca.issue(USER_NAME, organizations=("system:masters",), client=True).write(
            self.admin_cert_file, self.admin_key_file
        )
        ca.issue("system:kube-controller-manager", client=True).write(
            self.pki_dir / "controller-manager.crt", self.pki_dir / "controller-manager.key"
        )
        pki.signing_key_pair().write(self.pki_dir / "sa.pub", self.pki_dir / "sa.key")

    def _kubeconfig(self, user: str, cert: Path, key: Path) -> dict[str, Any]:
        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": CONTEXT_NAME,
                    "cluster": {"server": self.server, "certificate-authority-data": b64(self.ca_file)},
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)},
                }
            ],
            "contexts": [{"name": CONTEXT_NAME, "context": {"cluster": CONTEXT_NAME, "user": user}}],
            "current-context": CONTEXT_NAME,
            "preferences": {},
        }

    def _write_kubeconfigs(self) -> None:
        for path, conf in (
            (self.kubeconfig, self._kubeconfig(USER_NAME, self.admin_cert_file, self.admin_key_file)),
            (
                self.workdir / "controller-manager.kubeconfig",
                self._kubeconfig(
                    "system:kube-controller-manager",
                    self.pki_dir / "controller-manager.crt",
                    self.pki_dir / "controller-manager.key",
                ),
            ),
        ):
            path.touch(mode=0o600)
            path.write_text(json.dumps(conf, indent=2) + "\n")  # JSON is YAML

    def _etcd_argv(self) -> list[str]:
        client = f"http://127.0.0.1:{self.ports[ETCD]}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        return [
            str(self.binary(ETCD)),
            "--name=remora",
            f"--data-dir={self.etcd_data_dir}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=remora={peer}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync",
            "--log-level=warn",
            *self.extra_etcd_args,
        ]

    def _apiserver_argv(self) -> list[str]:
        p = self.pki_dir
        return [
            str(self.binary(APISERVER)),
            f"--etcd-servers=http://127.0.0.1:{self.ports[ETCD]}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.ports[APISERVER]}",
            f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={self.ca_file}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            f"--service-cluster-ip-range={self.service_cluster_ip_range}",
            "--authorization-mode=RBAC",
            # on by default; named so that a changed default cannot silently drop them
            "--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
            "--allow-privileged=true",  # let privileged pods reach the validating webhooks
            "--endpoint-reconciler-type=none",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            "--event-ttl=15m",
            *self._audit_args(),
            *self.extra_apiserver_args,
        ]

    def _audit_args(self) -> list[str]:
        if self.audit_log_path is None:
            return []
        self.audit_policy_file.write_text(AUDIT_POLICY)
        return [
            f"--audit-policy-file={self.audit_policy_file}",
            f"--audit-log-path={self.audit_log_path}",
            "--audit-log-format=json",
            "--audit-log-maxsize=50",  # MB, then one rotated file is kept
            "--audit-log-maxbackup=1",
        ]

    def _controller_manager_argv(self) -> list[str]:
        p = self.pki_dir
        return [
            str(self.binary(CONTROLLER_MANAGER)),
            f"--kubeconfig={self.workdir / 'controller-manager.kubeconfig'}",
            f"--controllers={','.join(self.controllers)}",
            "--leader-elect=false",
            # Each controller acts as its own kube-system ServiceAccount (tokens from the
            # TokenRequest API) with the RBAC roles the API server bootstraps for it, as
            # kubeadm clusters do; the manager's own user has almost no rights.
            "--use-service-account-credentials=true",
            "--secure-port=0",  # no serving: nothing scrapes it
            f"--service-account-private-key-file={p / 'sa.key'}",
            f"--root-ca-file={self.ca_file}",
            f"--service-cluster-ip-range={self.service_cluster_ip_range}",
            "--profiling=false",
            *self.extra_controller_manager_args,
        ]

    def _spawn(self, name: str) -> None:
        argv = list(self.argv[name])
        preexec: Callable[[], None] | None = None
        if not self.detach:
            if SETPRIV:
                argv = [SETPRIV, "--pdeathsig", "KILL", "--", *argv]
            else:
                preexec = PRCTL
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_paths[name], "ab") as log:
            log.write(f"\n===== {time.strftime('%H:%M:%S')} starting {name}\n".encode())
            log.flush()
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
                preexec_fn=preexec,  # noqa: PLW1509 - only without setpriv; sets PR_SET_PDEATHSIG
                close_fds=True,
            )
        self._procs[name] = _Proc(name, popen.pid, popen)

    def _check_alive(self, names: Sequence[str]) -> None:
        for name in names:
            proc = self._procs.get(name)
            if proc is None or not proc.alive():
                code = proc.exit_code() if proc else None
                raise ClusterError(
                    f"{name} exited (code {code}) during startup\n{self.tail_logs(30, [name])}"
                )

    def _wait_apiserver_ready(self, deadline: float) -> None:
        while True:
            self._check_alive([ETCD, APISERVER])
            if self.readyz(timeout=2.0):
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"kube-apiserver not ready in time\n{self.tail_logs(30)}")
            time.sleep(0.1)

    def _wait_controllers_ready(self, deadline: float) -> None:
        # The serviceaccount controller creates "default" in every namespace: once it
        # exists in "default", kube-controller-manager is up and its informers synced.
        while True:
            self._check_alive(COMPONENTS)
            try:
                status, _ = self.get("/api/v1/namespaces/default/serviceaccounts/default", timeout=2.0)
            except (OSError, http.client.HTTPException, ssl.SSLError):
                status = 0
            if status == 200:
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"kube-controller-manager not ready in time\n{self.tail_logs(30)}")
            time.sleep(0.1)

    def _write_state(self) -> None:
        state = {
            "k8s_version": K8S_VERSION,
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "ca_file": str(self.ca_file),
            "bin_path": str(self.bin_path),
            "ports": self.ports,
            "pids": self.pids,
            "argv": self.argv,
            "controllers": list(self.controllers),
            "service_cluster_ip_range": self.service_cluster_ip_range,
        }
        tmp = self.workdir / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.workdir / STATE_FILE)

    @classmethod
    def _from_state(cls, state_file: Path, **kwargs: Any) -> LocalCluster | None:
        try:
            state = json.loads(state_file.read_text())
            cluster = cls(
                state_file.parent,
                bin_path=state["bin_path"],
                controllers=state["controllers"],
                service_cluster_ip_range=state["service_cluster_ip_range"],
                **{
                    k: v
                    for k, v in kwargs.items()
                    if k not in ("bin_path", "controllers", "service_cluster_ip_range")
                },
            )
            cluster.ports = {k: int(v) for k, v in state["ports"].items()}
            cluster.server = state["server"]
            cluster.argv = {k: list(v) for k, v in state["argv"].items()}
            for arg in cluster.argv.get(APISERVER, []):
                if arg.startswith("--audit-log-path="):
                    cluster.audit_log_path = Path(arg.partition("=")[2])
            cluster._procs = {name: _Proc(name, int(pid)) for name, pid in state["pids"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            state_file.unlink(missing_ok=True)
            return None
        return cluster


def _first_service_ip(cidr: str) -> str:
    net = ipaddress.ip_network(cidr, strict=False)
    return str(net.network_address + 1)
