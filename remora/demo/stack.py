"""`remora demo`: the whole system on a local control plane, step by step.

1. the control plane (etcd, kube-apiserver, kube-controller-manager), reused if running;
2. Remora: `helm upgrade --install` of the chart in URL mode, `remora certs bootstrap`,
   and `remora serve` on 127.0.0.1 with those certificates;
3. the namespace and the agent Deployment from examples/, the namespace enabled with
   `remora enable-namespace`; the ReplicaSet controller creates the pod and the real
   API server sends it through the webhook, which injects the sidecars;
4. the reference broker, then the agent pod's containers (as injected) as local processes;
5. one work item per capability, followed until each outcome is reported, while the demo
   plays the kubelet for the Jobs the sidecar operators create.

Everything lives in the state directory; without ``keep`` it is all stopped at the end
(or on Ctrl-C, or on an error). With ``keep`` it stays up for kubectl until ``down``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

import yaml

from common.kube import ApiError, request
from common.names import CAPABILITIES, CAPABILITIES_ANNOTATION, STATUS_ANNOTATION
from localcluster.ports import free_port
from remora.demo.down import STOP_GRACE
from remora.demo.errors import DemoError
from remora.demo.local import http_ok, remora_executable, resolve_remora, signals_interrupt
from remora.demo.podrun import ContainerRun, PodRunner
from remora.demo.processes import Processes
from remora.demo.progress import Progress

T = TypeVar("T")
# The chart and the examples come from a source checkout: the one this package runs from
# (an editable install), else the current directory.
_HERE = Path(__file__).resolve().parents[2]
ROOT = _HERE if (_HERE / "charts" / "remora").is_dir() else Path.cwd()
CHART = ROOT / "charts" / "remora"
NAMESPACE_YAML = ROOT / "examples" / "namespace.yaml"
DEPLOYMENT_YAML = ROOT / "examples" / "agent-deployment.yaml"
NAMESPACE = "remora-demo"
RELEASE = "remora"
RELEASE_NAMESPACE = "remora-system"
AGENT_SELECTOR = "app.kubernetes.io/name=remora-agent"
AGENT_SERVICE_ACCOUNT = "remora-agent"
TOKEN_SECRET = "remora-broker-token"  # noqa: S105 - a Secret's name
COLD_BUILD_MINUTES = 15


@dataclass
class Options:
    state_dir: Path
    timeout: float
    keep: bool
    out: TextIO = field(default_factory=lambda: sys.stdout)


class Demo:
    def __init__(self, options: Options) -> None:
        self.opt = options
        self.state = options.state_dir.resolve()
        self.log_dir = self.state / "logs"
        self.procs = Processes(self.log_dir, self.state / "processes.json", detach=options.keep)
        self.t0 = time.monotonic()
        self.deadline = self.t0 + options.timeout
        self.cluster: Any = None
        self.api: Any = None
        self.broker_url = ""
        self.token = ""
        self.pod_name = ""
        self.kubelet: Any = None  # localcluster.kubelet.FakeKubelet, once the agent pod runs

    # ------------------------------------------------------------------ running it

    def run(self) -> int:
        self.state.mkdir(parents=True, exist_ok=True)
        with signals_interrupt():
            try:
                self._stop_leftovers()
                self.control_plane()
                self.install_remora()
                self.prepare_namespace()
                self.start_broker()
                pod = self.create_agent_deployment()
                self.run_agent_pod(pod)
                progress = self.run_work()
                self._finish(progress)
            except BaseException:
                self._teardown(failed=True)
                raise
        return 0 if all(i.stage == "succeeded" for i in progress.items.values()) else 1

    def write(self, text: str) -> None:
        """Output that cannot stop the demo: a closed pipe (`| head`) must not skip the cleanup."""
        with contextlib.suppress(OSError, ValueError):
            self.opt.out.write(text)
            self.opt.out.flush()

    def say(self, text: str) -> None:
        self.write(f"[{time.monotonic() - self.t0:5.1f}s] {text}\n")

    def detail(self, text: str) -> None:
        self.write("".join(f"         {line}\n" for line in text.rstrip().splitlines()))

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def wait_for(
        self,
        what: str,
        probe: Callable[[], T | None],
        hint: str | Callable[[], str] = "",
        interval: float = 0.25,
    ) -> T:
        """Poll ``probe`` until it returns something truthy, the local processes being checked."""
        while True:
            self.procs.check()
            value = probe()
            if value:
                return value
            if self.remaining() <= 0:
                hint = hint() if callable(hint) else hint
                raise DemoError(
                    f"{what} did not happen within --timeout {self.opt.timeout:.0f}s"
                    + (f"; {hint}" if hint else "")
                )
            time.sleep(interval)

    # ------------------------------------------------------------------ steps

    def _stop_leftovers(self) -> None:
        """Processes a previous `--keep` run left (its serve, broker, agent pod) make way."""
        self.procs.adopt_recorded()
        stopped = self.procs.stop(STOP_GRACE)
        if stopped:
            self.say(f"stopped the previous run's {', '.join(stopped)}")

    def control_plane(self) -> None:
        from localcluster import ClusterError, LocalCluster, ensure_binaries  # noqa: PLC0415
        from localcluster.binaries import BinariesError, bin_dir, is_built  # noqa: PLC0415

        if not is_built():
            self.say(
                f"building pinned Kubernetes binaries (etcd, kube-apiserver, kube-controller-manager) and "
                f"fetching kubectl and helm: first run only, ~{COLD_BUILD_MINUTES} min on 2 cores; "
                f"cached in {bin_dir()}; --timeout starts counting after this"
            )
            try:
                ensure_binaries()
            except BinariesError as exc:
                raise DemoError(f"{exc} (retry with: scripts/controlplane ensure)") from None
            self.deadline = time.monotonic() + self.opt.timeout
        self.say("control plane: etcd, kube-apiserver, kube-controller-manager on 127.0.0.1")
        try:
            self.cluster = LocalCluster.reuse_or_start(
                self.state / "cluster",
                detach=self.opt.keep,
                startup_timeout=max(10.0, min(120.0, self.remaining())),
            )
        except ClusterError as exc:
            raise DemoError(f"the control plane did not start: {exc}") from None
        verb = "reused the running" if self.cluster.reused else "started a"
        self.detail(f"{verb} control plane at {self.cluster.server} (Kubernetes {self._k8s_version()})")
        from common.kube import load_api_client  # noqa: PLC0415

        self.api = load_api_client(str(self.cluster.kubeconfig))
        if self.cluster.reused:
            self._delete_namespace()

    def _k8s_version(self) -> str:
        with contextlib.suppress(Exception):
            return str(self.cluster.server_version().get("gitVersion"))
        return "?"

    def install_remora(self) -> None:
        port = free_port()
        url = f"https://127.0.0.1:{port}"
        self.say(
            f"installing Remora: helm chart {CHART.relative_to(ROOT)} in URL mode -> remora serve at {url}"
        )
        self.helm(
            "upgrade", "--install", RELEASE, str(CHART), "-n", RELEASE_NAMESPACE, "--create-namespace",
            "--set", f"webhook.url={url}", "--set", "certs.extraSANs={127.0.0.1}", "--set", "replicaCount=1",
            "--set", "podDisruptionBudget.enabled=false",
        )  # fmt: skip
        cert_dir = self.state / "certs"
        self.remora(
            "certs", "bootstrap", f"--kubeconfig={self.cluster.kubeconfig}",
            f"--namespace={RELEASE_NAMESPACE}", "--service=remora-webhook", "--extra-san=127.0.0.1",
            f"--webhook-config={RELEASE}", f"--cert-dir={cert_dir}",
        )  # fmt: skip
        self.detail(
            f"certificates bootstrapped (Secret {RELEASE_NAMESPACE}/remora-webhook-certs, caBundle set)"
        )
        self.procs.start(
            "remora-serve",
            [*remora_executable(), "serve", f"--kubeconfig={self.cluster.kubeconfig}", "--host=127.0.0.1",
             f"--port={port}", f"--tls-cert={cert_dir / 'tls.crt'}", f"--tls-key={cert_dir / 'tls.key'}",
             f"--catalog-configmap={RELEASE_NAMESPACE}/remora-capabilities"],
            self._env(),
        )  # fmt: skip
        ca = str(cert_dir / "ca.crt")
        self.wait_for("remora serve answering /readyz", lambda: http_ok(f"{url}/readyz", verify=ca),
                      f"see {self.log_dir / 'remora-serve.log'}")  # fmt: skip
        self.detail("remora serve is ready: the API server now sends pods to /mutate and /validate")

    def prepare_namespace(self) -> None:
        self.say(
            f"namespace {NAMESPACE} from {NAMESPACE_YAML.relative_to(ROOT)}, enabled for build, test, migrate"
        )
        self.detail(self.kubectl("apply", "-f", str(NAMESPACE_YAML)))
        from remora.commands.enable_namespace import ROLE_PREFIX, enable  # noqa: PLC0415

        self.detail(
            "\n".join(enable(self.api, NAMESPACE, list(CAPABILITIES), AGENT_SERVICE_ACCOUNT, ROLE_PREFIX))
        )
        self.token = secrets.token_urlsafe(24)
        self._apply_secret(TOKEN_SECRET, {"token": self.token})
        # The database the migration item names; the Job gets it as environment.
        self._apply_secret("orders-db", {"DATABASE_URL": "postgres://shop@db.example:5432/orders"})
        self.detail(f"secrets {TOKEN_SECRET} (the broker's bearer token) and orders-db created")

    def start_broker(self) -> None:
        port = free_port()
        self.broker_url = f"http://127.0.0.1:{port}"
        db = self.state / "broker.db"
        for path in (db, db.with_name("broker.db-wal"), db.with_name("broker.db-shm")):
            path.unlink(missing_ok=True)
        self.say(f"reference broker at {self.broker_url} (queue in {db})")
        self.procs.start(
            "remora-broker",
            [*remora_executable(), "broker", f"--db={db}", "--host=127.0.0.1", f"--port={port}"],
            {**self._env(), "REMORA_BROKER_TOKEN": self.token},
        )
        self.wait_for("the broker answering /healthz", lambda: http_ok(f"{self.broker_url}/healthz"),
                      f"see {self.log_dir / 'remora-broker.log'}")  # fmt: skip

    def create_agent_deployment(self) -> dict[str, Any]:
        self.say(
            f"agent Deployment from {DEPLOYMENT_YAML.relative_to(ROOT)} "
            f"(1 replica, --broker={self.broker_url})"
        )
        docs = [d for d in yaml.safe_load_all(DEPLOYMENT_YAML.read_text()) if d]
        for doc in docs:
            if doc.get("kind") == "Deployment":
                _point_at_broker(doc, self.broker_url)
        self.detail(self.kubectl("apply", "-f", "-", input_text=yaml.safe_dump_all(docs)))
        pod = self.wait_for(
            "the ReplicaSet creating the agent pod", self._agent_pod, self._replicaset_trouble
        )
        self.pod_name = pod["metadata"]["name"]
        annotations = pod["metadata"].get("annotations") or {}
        if STATUS_ANNOTATION not in annotations:
            raise DemoError(f"pod {self.pod_name} was created without injection (no {STATUS_ANNOTATION})")
        sidecars = [
            c["name"] for c in pod["spec"].get("initContainers") or [] if c.get("restartPolicy") == "Always"
        ]
        main = [c["name"] for c in pod["spec"]["containers"]]
        self.detail(
            f"pod {self.pod_name}: the API server returned it injected, asking for "
            f"{annotations.get(CAPABILITIES_ANNOTATION)}\n"
            f"  native sidecars: {', '.join(sidecars) or '-'}; containers: {', '.join(main)}\n"
            f"  {STATUS_ANNOTATION}: {annotations[STATUS_ANNOTATION]}"
        )
        return pod

    def run_agent_pod(self, pod: dict[str, Any]) -> None:
        self.say(f"playing the kubelet for {self.pod_name}: its containers as local processes")
        base_env = {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "HOME": str(self.state / "pod"),
        }
        runner = PodRunner(
            self.api, pod, pod_dir=self.state / "pod", server=self.cluster.server,
            ca_pem=self.cluster.ca_file.read_bytes(), resolve_command=resolve_remora, base_env=base_env,
        )  # fmt: skip
        runs = runner.prepare()
        for run in runs:
            self.procs.start(f"pod-{run.name}", run.argv, run.env, cwd=self.state / "pod")
            self.detail(_describe_run(run, self.state))
        time.sleep(1.0)  # a container that cannot start at all says so at once
        self.procs.check()
        from localcluster.kubelet import FakeKubelet  # noqa: PLC0415

        self.kubelet = FakeKubelet(self.api)
        self.kubelet.run_pod(NAMESPACE, self.pod_name)
        self.detail(
            f"pod {self.pod_name} marked Running and Ready (as the service account {AGENT_SERVICE_ACCOUNT})"
        )

    def run_work(self) -> Progress:
        from agent.client import BrokerClient, BrokerError  # noqa: PLC0415
        from remora.demo.work import WorkWatcher  # noqa: PLC0415

        progress = Progress(self.write)
        run_id = uuid.uuid4().hex[:5]
        with BrokerClient(self.broker_url, self.token) as broker:
            watcher = WorkWatcher(self.api, self.kubelet, broker, NAMESPACE, progress)
            self.say("one work item per capability, enqueued at the broker; the agent claims them:")
            watcher.enqueue(list(CAPABILITIES), run_id)

            def all_reported() -> bool:
                try:
                    watcher.tick()
                except (BrokerError, ApiError) as exc:
                    self.detail(f"(retrying: {exc})")
                return progress.all_done()

            self.wait_for(
                "every item's outcome being reported",
                all_reported,
                lambda: "still waiting: " + ", ".join(progress.pending()) + f"; logs in {self.log_dir}",
                interval=0.3,
            )
        return progress

    # ------------------------------------------------------------------ the end

    def _finish(self, progress: Progress) -> None:
        self.say("summary")
        self.write(progress.summary() + "\n\n")
        self.write(
            "Each outcome went broker <- agent <- resource status <- sidecar operator <- Job. The agent\n"
            "deletes a resource once its outcome is reported; garbage collection then removes its Job.\n\n"
        )
        kc = f"kubectl --kubeconfig {self.cluster.kubeconfig}"
        lines = [
            f"export PATH={self.cluster.binary('kubectl').parent}:$PATH",
            f"{kc} get buildrequests,testruns,databasemigrations,jobs -n {NAMESPACE}",
            f"{kc} get pods -n {NAMESPACE} -o wide",
            f"{kc} get events -n {NAMESPACE} --sort-by=.lastTimestamp",
            f"{kc} get pod {self.pod_name} -n {NAMESPACE} -o yaml   # the injected sidecars",
            f"{kc} get mutatingwebhookconfigurations,validatingwebhookconfigurations",
            f"REMORA_BROKER_TOKEN={self.token} remora broker list --url {self.broker_url}",
        ]
        if self.opt.keep:
            self.procs.save()
            self.write(
                f"Left running (state in {self.state}); look around with:\n"
                + "".join(f"  {line}\n" for line in lines)
                + f"Stop it all with: remora demo --down{_state_flag(self.state)}\n"
            )
            return
        self.write(
            "To look around afterwards, run `remora demo --keep`, then:\n"
            + "".join(f"  {line}\n" for line in lines[:4])
        )
        self._teardown(failed=False)

    def _teardown(self, *, failed: bool) -> None:
        """Stop what this run started (all of it unless --keep succeeded); Ctrl-C cannot cut it short."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if failed:
                self.write(f"stopping everything (logs stay in {self.log_dir})\n")
            try:
                self.procs.stop(STOP_GRACE)
            finally:
                if self.cluster is not None:
                    self.cluster.stop()
            if not failed:
                self.say("stopped everything: the agent pod's processes, broker, webhook and control plane")
        finally:
            signal.signal(signal.SIGINT, previous)

    # ------------------------------------------------------------------ helpers

    def _env(self) -> dict[str, str]:
        env = dict(self.cluster.env())
        for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            env[var] = str(self.state / "helm" / var.split("_")[1].lower())
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _tool(self, argv: Sequence[str], what: str, input_text: str | None = None) -> str:
        timeout = max(5.0, self.remaining())
        try:
            proc = subprocess.run(
                list(argv), input=input_text, capture_output=True, text=True, env=self._env(),
                timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise DemoError(f"{what} did not finish within --timeout {self.opt.timeout:.0f}s") from None
        if proc.returncode != 0:
            raise DemoError(
                f"{what} failed (exit {proc.returncode}):\n{(proc.stderr or proc.stdout).strip()[-2000:]}"
            )
        return proc.stdout

    def helm(self, *args: str) -> str:
        argv = [str(self.cluster.binary("helm")), f"--kubeconfig={self.cluster.kubeconfig}", *args]
        return self._tool(argv, f"helm {args[0]}")

    def kubectl(self, *args: str, input_text: str | None = None) -> str:
        argv = [str(self.cluster.binary("kubectl")), f"--kubeconfig={self.cluster.kubeconfig}", *args]
        return self._tool(argv, f"kubectl {args[0]}", input_text)

    def remora(self, *args: str) -> str:
        return self._tool([*remora_executable(), *args], f"remora {' '.join(args[:2])}")

    def _apply_secret(self, name: str, data: dict[str, str]) -> None:
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE},
                "type": "Opaque", "stringData": data}  # fmt: skip
        path = f"/api/v1/namespaces/{NAMESPACE}/secrets"
        try:
            request(self.api, "POST", path, body=body)
        except ApiError as exc:
            if not exc.conflict and exc.status != 409:
                raise DemoError(f"cannot create Secret {NAMESPACE}/{name}: {exc}") from None
            request(self.api, "PUT", f"{path}/{name}", body=body)

    def _agent_pod(self) -> dict[str, Any] | None:
        pods = request(self.api, "GET", f"/api/v1/namespaces/{NAMESPACE}/pods",
                       query={"labelSelector": AGENT_SELECTOR}).get("items") or []  # fmt: skip
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        return dict(live[0]) if live else None

    def _replicaset_trouble(self) -> str:
        """Why the ReplicaSet has no pod yet: its ReplicaFailure condition (a webhook denial, say)."""
        with contextlib.suppress(ApiError):
            sets = (
                request(self.api, "GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets").get("items")
                or []
            )
            for rs in sets:
                for cond in (rs.get("status") or {}).get("conditions") or []:
                    if cond.get("type") == "ReplicaFailure":
                        return f"ReplicaSet {rs['metadata']['name']}: {cond.get('message')}"
        return (
            f"see {self.log_dir / 'remora-serve.log'} and {self.cluster.log_paths['kube-controller-manager']}"
        )

    def _delete_namespace(self) -> None:
        """A reused control plane still has the previous run's namespace: start from a clean one."""
        path = f"/api/v1/namespaces/{NAMESPACE}"
        try:
            request(self.api, "DELETE", path)
        except ApiError as exc:
            if exc.not_found:
                return
            raise
        self.detail(f"deleting the previous run's namespace {NAMESPACE}")

        def gone() -> bool:
            try:
                request(self.api, "GET", path)
            except ApiError as exc:
                return exc.not_found
            return False

        self.wait_for(f"namespace {NAMESPACE} going away", gone, "the namespace controller may be stuck")


def _point_at_broker(deployment: dict[str, Any], broker_url: str) -> None:
    """One replica, its agent container's --broker pointed at the local broker (as the example says)."""
    deployment["spec"]["replicas"] = 1
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        for key in ("command", "args"):
            parts = container.get(key) or []
            container[key] = [f"--broker={broker_url}" if p.startswith("--broker=") else p for p in parts]
            if not container[key]:
                del container[key]


def _describe_run(run: ContainerRun, state: Path) -> str:
    kind = "sidecar  " if run.sidecar else "container"
    args = " ".join(a.replace(str(state), "$STATE") for a in run.argv[1:])
    return f"{kind} {run.name:<15} remora {args.removeprefix('-m remora ')}"


def _state_flag(state: Path) -> str:
    from remora.demo import default_state_dir  # noqa: PLC0415

    return "" if state == default_state_dir().resolve() else f" --state-dir {state}"
