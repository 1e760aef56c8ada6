"""Injection cannot be used to gain privileges, the webhook's TLS is modern, and nothing leaks.

The chart is installed (URL mode). `remora serve` and the certificate bootstrap run as the
chart's webhook ServiceAccount (`security_stack.chart_stack`), and every pod below goes
through the real apiserver and both webhooks. The namespace is enabled with `remora
enable-namespace ... --capabilities build,test` and enforces the `hardened` level.

- Annotations, pre-declared sidecar-named containers, a forged remora.dev/status or a squatted
  token volume never change a sidecar's image, command, security context or service account.
  The stored sidecar is exactly the catalog's.
- A capability the namespace does not allow is refused, however it is spelled.
- An UPDATE, an ephemeral container and pods made by Deployments and Jobs are all checked at
  the enforce level.
- The webhook speaks TLS 1.2 and 1.3 only, and its key file is 0600.
- A whole run leaves no Secret value, token or private key in any log, metrics page, Event,
  status or error. The run covers the broker, the agent and the operators on the agent's
  ServiceAccount token, injection, a DatabaseMigration reading a Secret with known values, a
  build cancelled at the broker, denials and malformed reviews.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import socket
import ssl
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from remora_stack import free_port
from security_stack import (
    Operator,
    Stack,
    delete_namespace,
    make_namespace,
    service_account_token,
    token_kubeconfig,
    wait_for_webhook,
)

from common.kube import ApiError, request
from common.names import ENFORCE_LABEL, STATUS_ANNOTATION
from localcluster import wait_until
from localcluster.remora_release import RemoraProcess, generated_hardened_pod
from webhook.catalog.catalog import Catalog, parse_catalog
from webhook.mutate.compare import same_sidecar
from webhook.mutate.render import TOKEN_VOLUME, render, sidecar_name

EVIL_IMAGE = "registry.evil/root-shell:latest"


@pytest.fixture(scope="module")
def stack(chart_stack: Stack) -> Stack:
    return chart_stack


@pytest.fixture(scope="module")
def guarded(admin: Any, stack: Stack) -> Iterator[str]:
    """An injection-enabled namespace (build, test) that enforces the hardened level."""
    name = make_namespace(admin, "guarded", labels={ENFORCE_LABEL: "hardened"})
    try:
        stack.enable_namespace(name, "build,test")
        wait_for_webhook(admin, name, generated_hardened_pod(name, None))  # the webhook sees the namespace
        yield name
    finally:
        delete_namespace(admin, name)


@pytest.fixture(scope="module")
def catalog(admin: Any, stack: Stack) -> Catalog:
    cm = request(admin, "GET", f"/api/v1/namespaces/{stack.namespace}/configmaps/remora-capabilities")
    return parse_catalog(cm["data"]["catalog.yaml"], "the installed chart")


def create_pod(admin: Any, namespace: str, pod: dict[str, Any]) -> dict[str, Any]:
    return dict(request(admin, "POST", f"/api/v1/namespaces/{namespace}/pods", body=pod))


def all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod["spec"]
    return [
        *(spec.get("initContainers") or []),
        *spec["containers"],
        *(spec.get("ephemeralContainers") or []),
    ]


def assert_no_privilege(pod: dict[str, Any], catalog: Catalog, capabilities: list[str]) -> None:
    """The stored pod has exactly the catalog's sidecars, and nothing privileged or foreign."""
    by_name = {c["name"]: c for c in all_containers(pod)}
    token_mount = pod["spec"].get("automountServiceAccountToken") is False
    for capability in capabilities:
        wanted = render(catalog.capabilities[capability], native=True, token_mount=token_mount)
        stored = by_name[sidecar_name(capability)]
        if stored in pod["spec"]["containers"]:
            # A same-named regular container was replaced where it stood; the apiserver drops
            # restartPolicy from regular containers. Image, command and securityContext are the catalog's.
            wanted = {k: v for k, v in wanted.items() if k != "restartPolicy"}
        assert same_sidecar(stored, wanted), json.dumps(stored)
    for container in by_name.values():
        sc = container.get("securityContext") or {}
        assert not sc.get("privileged") and sc.get("allowPrivilegeEscalation") is not True, container
        assert container.get("image") != EVIL_IMAGE, container
    assert pod["spec"].get("serviceAccountName", "default") == "default"
    assert not any("hostPath" in v for v in pod["spec"].get("volumes") or [])


def sidecar_squatter(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": EVIL_IMAGE,
        "command": ["/bin/sh", "-c", "cat /var/run/secrets/kubernetes.io/serviceaccount/token"],
        "restartPolicy": "Always",
        "securityContext": {"privileged": True, "runAsUser": 0, "allowPrivilegeEscalation": True},
    }


def tricks(namespace: str, catalog: Catalog) -> dict[str, dict[str, Any]]:
    """Pods that try to shape their sidecars; each asks for `build`."""
    out: dict[str, dict[str, Any]] = {}
    pod = generated_hardened_pod(namespace, "build")
    pod["metadata"]["annotations"] |= {
        "remora.dev/image": EVIL_IMAGE,
        "remora.dev/build-image": EVIL_IMAGE,
        "remora.dev/command": '["/bin/sh"]',
        "remora.dev/security-context": '{"privileged": true}',
        "remora.dev/service-account": "remora-webhook",
        "remora.dev/catalog": json.dumps({"capabilities": {"build": {"image": EVIL_IMAGE}}}),
        "sidecar.remora.dev/build": EVIL_IMAGE,
    }
    out["look-alike annotations"] = pod
    pod = generated_hardened_pod(namespace, "build")
    pod["spec"]["initContainers"] = [sidecar_squatter("remora-build")]
    out["a privileged init container named like the sidecar"] = pod
    pod = generated_hardened_pod(namespace, "build")
    squat = sidecar_squatter("remora-build")
    del squat["restartPolicy"]
    pod["spec"]["containers"].append(squat)
    out["a privileged container named like the sidecar"] = pod
    pod = generated_hardened_pod(namespace, "build")
    status = {"capabilities": ["build"], "catalogHash": catalog.hash, "version": "0.1.0"}
    pod["metadata"]["annotations"][STATUS_ANNOTATION] = json.dumps(status)
    pod["spec"]["initContainers"] = [sidecar_squatter("remora-build")]
    out["a forged status annotation over a squatted sidecar"] = pod
    pod = generated_hardened_pod(namespace, "build")
    pod["spec"]["volumes"] = [{"name": TOKEN_VOLUME, "hostPath": {"path": "/"}}]
    out["a hostPath volume named like the token volume"] = pod
    pod = generated_hardened_pod(namespace, "build,build")
    out["a capability asked for twice"] = pod
    return out


def test_pod_creators_cannot_shape_their_sidecars(admin: Any, guarded: str, catalog: Catalog) -> None:
    outcomes: dict[str, str] = {}
    for trick, pod in tricks(guarded, catalog).items():
        try:
            stored = create_pod(admin, guarded, pod)
        except ApiError as exc:
            assert exc.status in (400, 403, 422), (trick, exc)
            outcomes[trick] = f"refused: {exc.message[:160]}"
            continue
        assert_no_privilege(stored, catalog, ["build"])
        assert len([c for c in all_containers(stored) if c["name"] == "remora-build"]) == 1, trick
        outcomes[trick] = "stored with the catalog's sidecar"
    print(json.dumps(outcomes, indent=1))
    # Annotations are not an interface: the sidecar simply ignores them.
    assert outcomes["look-alike annotations"] == "stored with the catalog's sidecar"


def test_a_forged_status_without_the_injector_is_still_judged(admin: Any, guarded: str) -> None:
    """No capabilities annotation: the injector is not called, and the validating webhook denies."""
    pod = generated_hardened_pod(guarded, None)
    pod["metadata"]["annotations"][STATUS_ANNOTATION] = '{"capabilities": ["build"], "catalogHash": "x"}'
    pod["spec"]["initContainers"] = [sidecar_squatter("remora-build")]
    with pytest.raises(ApiError) as denied:
        create_pod(admin, guarded, pod)
    assert denied.value.status == 403
    assert 'violates PodSecurity "hardened' in denied.value.message or "privileged" in denied.value.message


@pytest.mark.parametrize(
    "asked",
    [
        "migrate",
        "build,migrate",
        " migrate ",
        "test, migrate,build",
        "MIGRATE",
        "migrate;build",
        "build,deploy",
    ],
)
def test_a_capability_the_namespace_does_not_allow_is_refused(admin: Any, guarded: str, asked: str) -> None:
    with pytest.raises(ApiError) as denied:
        create_pod(admin, guarded, generated_hardened_pod(guarded, asked))
    assert denied.value.status in (400, 403), denied.value
    assert "not allowed" in denied.value.message or "unknown" in denied.value.message.lower()


def test_an_ephemeral_container_is_checked(admin: Any, guarded: str) -> None:
    created = create_pod(admin, guarded, generated_hardened_pod(guarded, "build"))
    name = created["metadata"]["name"]
    debug = {
        "name": "debugger",
        "image": "busybox:1.36",
        "command": ["sh"],
        "stdin": True,
        "tty": True,
        "targetContainerName": "agent",
        "securityContext": {"privileged": True},
    }
    body = {**created, "spec": {**created["spec"], "ephemeralContainers": [debug]}}
    with pytest.raises(ApiError) as denied:
        request(admin, "PUT", f"/api/v1/namespaces/{guarded}/pods/{name}/ephemeralcontainers", body=body)
    assert denied.value.status == 403
    assert "privileged" in denied.value.message
    stored = request(admin, "GET", f"/api/v1/namespaces/{guarded}/pods/{name}")
    assert not stored["spec"].get("ephemeralContainers")


def test_an_update_of_a_pod_admitted_before_the_policy_is_checked(admin: Any, stack: Stack) -> None:
    """A privileged pod from before the namespace enforced anything cannot be changed into anything."""
    namespace = make_namespace(admin, "late-policy")
    try:
        pod = generated_hardened_pod(namespace, None)
        pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
        created = create_pod(admin, namespace, pod)  # no Remora label yet: no webhook applies
        label = {"metadata": {"labels": {ENFORCE_LABEL: "hardened"}}}
        request(admin, "PATCH", f"/api/v1/namespaces/{namespace}", body=label,
                content_type="application/merge-patch+json")  # fmt: skip
        path = f"/api/v1/namespaces/{namespace}/pods/{created['metadata']['name']}"
        tolerations: list[dict[str, str]] = []

        def update_denied() -> ApiError | None:
            """None while the apiserver and the webhook have not seen the label yet."""
            # One more toleration each time: always a significant change, and one the apiserver
            # allows (tolerations may be added, never changed), so only the webhook can refuse it.
            tolerations.append({"key": f"x{len(tolerations)}", "operator": "Exists", "effect": "NoSchedule"})
            toleration = {"spec": {"tolerations": tolerations}}
            try:
                request(
                    admin,
                    "PATCH",
                    path,
                    body=toleration,
                    content_type="application/strategic-merge-patch+json",
                )
            except ApiError as exc:
                tolerations.pop()
                return exc
            return None

        denied = wait_until(update_denied, timeout=15, interval=0.3, description="the enforce label to apply")
        assert denied.status == 403 and "privileged" in denied.message, denied
        # Metadata alone is not re-evaluated (as upstream Pod Security): the pod can still be labelled.
        request(admin, "PATCH", path, body={"metadata": {"labels": {"seen": "yes"}}},
                content_type="application/merge-patch+json")  # fmt: skip
        # And the security context itself cannot be changed by an UPDATE at all.
        with pytest.raises(ApiError) as immutable:
            body = {"spec": {"containers": [{"name": "agent", "securityContext": {"privileged": False}}]}}
            request(admin, "PATCH", path, body=body, content_type="application/strategic-merge-patch+json")
        assert immutable.value.status in (403, 422)
    finally:
        delete_namespace(admin, namespace)


def wait_for_failed_creates(admin: Any, namespace: str, owner_kind: str) -> str:
    """The message of a FailedCreate event of a controller, once there is one."""

    def failed() -> str | None:
        events = request(admin, "GET", f"/api/v1/namespaces/{namespace}/events")["items"]
        for event in events:
            if event.get("reason") == "FailedCreate" and event["involvedObject"]["kind"] == owner_kind:
                return str(event["message"])
        return None

    return str(wait_until(failed, timeout=60, description=f"a {owner_kind} FailedCreate event"))


def test_workload_templates_cannot_slip_past(admin: Any, guarded: str) -> None:
    privileged = generated_hardened_pod(guarded, None)
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    template = {"metadata": {"labels": {"app": "sneaky"}}, "spec": privileged["spec"]}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "sneaky"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "sneaky"}}, "template": template},
    }
    request(admin, "POST", f"/apis/apps/v1/namespaces/{guarded}/deployments", body=deployment)
    job_spec = {**privileged["spec"], "restartPolicy": "Never"}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "sneaky-job"},
        "spec": {
            "backoffLimit": 0,
            "template": {"metadata": {"labels": {"app": "sneaky"}}, "spec": job_spec},
        },
    }
    request(admin, "POST", f"/apis/batch/v1/namespaces/{guarded}/jobs", body=job)
    # A template asking for a capability the namespace does not allow.
    greedy = generated_hardened_pod(guarded, "migrate")
    greedy_rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "greedy"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "greedy"}},
            "template": {
                "metadata": {"labels": {"app": "greedy"}, "annotations": greedy["metadata"]["annotations"]},
                "spec": greedy["spec"],
            },
        },
    }
    request(admin, "POST", f"/apis/apps/v1/namespaces/{guarded}/replicasets", body=greedy_rs)
    assert "privileged" in wait_for_failed_creates(admin, guarded, "ReplicaSet") + wait_for_failed_creates(
        admin, guarded, "Job"
    )
    time.sleep(2)
    pods = request(
        admin, "GET", f"/api/v1/namespaces/{guarded}/pods", query={"labelSelector": "app in (sneaky,greedy)"}
    )
    assert pods["items"] == []
    # An UPDATE of a good Deployment to a privileged template gets no pod either.
    good = generated_hardened_pod(guarded, "build")
    good_template = {"metadata": {"labels": {"app": "good"}, "annotations": good["metadata"]["annotations"]},
                     "spec": good["spec"]}  # fmt: skip
    request(admin, "POST", f"/apis/apps/v1/namespaces/{guarded}/deployments", body={
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "good"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "good"}}, "template": good_template},
    })  # fmt: skip
    selector = {"labelSelector": "app=good"}

    def good_pods() -> list[dict[str, Any]]:
        return list(request(admin, "GET", f"/api/v1/namespaces/{guarded}/pods", query=selector)["items"])

    first = wait_until(good_pods, timeout=60, description="the good Deployment's pod")
    turned = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "agent",
                            "securityContext": {"privileged": True, "allowPrivilegeEscalation": True},
                        }
                    ]
                }
            }
        }
    }
    request(admin, "PATCH", f"/apis/apps/v1/namespaces/{guarded}/deployments/good", body=turned,
            content_type="application/strategic-merge-patch+json")  # fmt: skip
    time.sleep(4)
    for pod in good_pods():
        assert all(not (c.get("securityContext") or {}).get("privileged") for c in all_containers(pod)), pod
    assert {p["metadata"]["name"] for p in good_pods()} >= {first[0]["metadata"]["name"]}


# -- TLS --------------------------------------------------------------------------------------


def handshake(port: int, version: ssl.TLSVersion, cafile: Path | None) -> str:
    """The negotiated protocol, or raises ssl.SSLError / OSError when the handshake fails."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cafile)
    context.minimum_version = context.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer what old clients offer
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return str(tls.version())


@contextlib.contextmanager
def permissive_server(cert: Path, key: Path) -> Iterator[int]:
    """A control server that accepts TLS 1.0 and up: proves this client can speak the old versions."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_webhook_speaks_tls_1_2_and_newer_only(stack: Stack) -> None:
    old = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)
    with permissive_server(stack.cert_dir / "tls.crt", stack.cert_dir / "tls.key") as control:
        assert [handshake(control, v, None) for v in old] == ["TLSv1", "TLSv1.1"]
    for version in old:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            handshake(stack.port, version, None)
    ca = stack.cert_dir / "ca.crt"
    assert handshake(stack.port, ssl.TLSVersion.TLSv1_2, ca) == "TLSv1.2"
    assert handshake(stack.port, ssl.TLSVersion.TLSv1_3, ca) == "TLSv1.3"


def test_the_private_key_is_written_0600(stack: Stack) -> None:
    key = stack.cert_dir / "tls.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((stack.cert_dir / "tls.crt").stat().st_mode) == 0o644
    assert not [p.name for p in stack.cert_dir.iterdir() if p.name.startswith(".")], "temporary files left"


# -- nothing leaks ----------------------------------------------------------------------------


def secret_fragments(values: dict[str, str]) -> dict[str, str]:
    """What to look for: each value, its base64, and for PEM keys a line from the middle."""
    needles: dict[str, str] = {}
    for label, value in values.items():
        if "PRIVATE KEY" in value:
            body = [line for line in value.splitlines() if line and not line.startswith("-----")]
            needles[f"{label} (a line of the PEM)"] = body[len(body) // 2][:40]
            needles[f"{label} (base64 of the PEM)"] = base64.b64encode(value.encode()).decode()[40:100]
            continue
        needles[label] = value
        if len(value) >= 12:
            needles[f"{label} (base64)"] = base64.b64encode(value.encode()).decode()[:-2][:60]
        if value.count(".") == 2:  # a JWT: its signature alone would do as well
            needles[f"{label} (signature)"] = value.rsplit(".", 1)[1][:40]
    return needles


def test_a_full_run_leaves_no_secret_in_logs_metrics_events_or_errors(  # noqa: PLR0917 (pytest fixtures)
    cluster: Any, admin: Any, stack: Stack, guarded: str, tmp_path: Path, fake_kubelet: Any
) -> None:
    """Broker, agent and operators (on the agent's ServiceAccount token) run a migration that
    reads a Secret with known values and a build that is cancelled; then every output is searched."""
    from agent.client import BrokerClient

    password = "pw-" + secrets.token_urlsafe(24)
    api_key = "key-" + secrets.token_hex(20)
    broker_token = "broker-" + secrets.token_hex(16)
    namespace = make_namespace(admin, "leaks")
    procs: list[RemoraProcess] = []
    operators: list[Operator] = []
    errors: list[str] = []
    seen: list[str] = []  # objects as they were during the run
    client: BrokerClient | None = None
    try:
        stack.enable_namespace(namespace, "migrate,build", "default")
        db_secret = {
            "metadata": {"name": "orders-db"},
            "stringData": {"PASSWORD": password, "API_KEY": api_key},
        }
        request(admin, "POST", f"/api/v1/namespaces/{namespace}/secrets", body=db_secret)
        token = service_account_token(admin, namespace, "default", seconds=900)
        kubeconfig = token_kubeconfig(cluster, token, tmp_path / "agent.kubeconfig")
        # The agent pod, injected through the webhook (its sidecars would carry the token).
        agent_pod = wait_for_webhook(admin, namespace, generated_hardened_pod(namespace, "migrate,build"))
        assert STATUS_ANNOTATION in agent_pod["metadata"]["annotations"]
        pod_name = agent_pod["metadata"]["name"]
        env = {**stack.env, "KUBECONFIG": str(kubeconfig), "REMORA_BROKER_TOKEN": broker_token}
        port = free_port()
        procs.append(
            RemoraProcess(
                "broker", ["broker", "--db", str(tmp_path / "broker.db"), "--port", str(port)], tmp_path, env
            )
        )
        operators = [
            Operator(stack, kubeconfig, cap, namespace, tmp_path / f"{cap}-operator.log", agent=pod_name)
            for cap in ("migrate", "build")
        ]
        for op in operators:
            wait_until(lambda op=op: op.probe("/readyz") == 200, timeout=30, description="operator ready")
        agent_args = ["agent", "--broker", f"http://127.0.0.1:{port}", "--capabilities", "migrate,build",
                      f"--kubeconfig={kubeconfig}", "--pod-name", pod_name, "--namespace", namespace,
                      "--poll-min", "0.1", "--poll-max", "0.5"]  # fmt: skip
        procs.append(RemoraProcess("agent", agent_args, tmp_path, env))
        client = BrokerClient(f"http://127.0.0.1:{port}", broker_token)
        wait_until(lambda: _broker_up(client), timeout=20, description="broker up")
        # The migration reads the Secret through its Job, fails, and is reported.
        client.enqueue("m-1", "migrate", {"image": "registry.example/migrate:1",
                                          "databaseSecretRef": {"name": "orders-db"}})  # fmt: skip
        job = _job_of(admin, namespace, "databasemigrations", "m-1")
        # Kept as it was while it ran: the agent deletes its resources once reported, GC the Job.
        seen.append(json.dumps(request(admin, "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/{job}")))
        fake_kubelet.run_and_finish_job_pod(namespace, job, 1, "migration 7 failed: relation exists")
        done = wait_until(lambda: _finished(client, "m-1"), timeout=45, description="m-1 reported")
        assert done.outcome == "failed", done
        # A build cancelled at the broker: the agent patches spec.cancel (the chart role's patch).
        client.enqueue("b-1", "build", {"image": "registry.example/build:1"})
        _job_of(admin, namespace, "buildrequests", "b-1")
        client.cancel("b-1", "not needed")
        done = wait_until(lambda: _finished(client, "b-1"), timeout=45, description="b-1 reported")
        reasons = {c["reason"] for c in (done.details or {}).get("conditions", []) if c["type"] == "Failed"}
        assert done.outcome == "failed" and reasons == {"Cancelled"}, done
        # Denials and bad requests, some carrying the secret where it should never be echoed.
        leaky = generated_hardened_pod(guarded, "build")
        leaky["spec"]["containers"][0]["env"] = [{"name": "PASSWORD", "value": password}]
        leaky["spec"]["containers"][0]["securityContext"] = {"privileged": True}
        for body, where in ((leaky, guarded), (generated_hardened_pod(namespace, "build,test"), namespace)):
            try:
                create_pod(admin, where, body)
                errors.append("(admitted)")
            except ApiError as exc:
                errors.append(exc.message)
        context = stack.ssl_context()
        for payload in (
            f'{{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": "{password}"}}',
            f"not json {api_key}",
            json.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "request": {
                        "uid": "u1",
                        "operation": "CREATE",
                        "object": leaky,
                        "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "resource": {"group": "", "version": "v1", "resource": "pods"},
                        "namespace": guarded,
                        "userInfo": {"username": token},
                    },
                }
            ),
        ):
            for route in ("/mutate", "/validate"):
                answer = httpx.post(f"{stack.url}{route}", content=payload, verify=context, timeout=10,
                                    headers={"Content-Type": "application/json"})  # fmt: skip
                errors.append(answer.text)
        metrics = httpx.get(f"{stack.url}/metrics", verify=context, timeout=10).text
        operator_metrics = [op.metrics() for op in operators]
    finally:
        if client is not None:
            client.close()
        for stoppable in [*procs, *operators]:
            stoppable.stop()
    try:
        captured = collect(admin, cluster, stack, tmp_path, [namespace, guarded, stack.namespace])
        captured["errors and webhook answers"] = "\n".join(errors)
        captured["the Job as it ran"] = "\n".join(seen)
        captured["webhook /metrics"] = metrics
        captured["operator /metrics"] = "\n".join(operator_metrics)
        cert_secret = request(
            admin, "GET", f"/api/v1/namespaces/{stack.namespace}/secrets/{stack.fullname}-certs"
        )
        keys = {
            name: base64.b64decode(value).decode()
            for name, value in cert_secret["data"].items()
            if name.endswith(".key")
        }
        assert keys, "the certificate Secret holds no key?"
        needles = secret_fragments(
            {
                "the database password": password,
                "the database API key": api_key,
                "the broker token": broker_token,
                "the agent's token": token,
                "the webhook's token": stack.webhook_token,
                "the serving key file": (stack.cert_dir / "tls.key").read_text(),
                **{f"the certificate Secret's {k}": v for k, v in keys.items()},
            }
        )
        found = [
            f"{needle_name} in {source}"
            for source, text in captured.items()
            for needle_name, needle in needles.items()
            if needle in text
        ]
        sizes = {source: len(text) for source, text in captured.items()}
        print(f"searched {len(needles)} secret fragments in {len(captured)} sources (characters): {sizes}")
        assert found == []
        # Not vacuous: the run produced what was searched, and the references are there.
        assert {"serve.log", "agent.log", "broker.log", "migrate-operator.log"} <= sizes.keys()
        assert sizes["serve.log"] > 0 and sizes["agent.log"] > 0
        assert '"secretRef": {"name": "orders-db"}' in captured["the Job as it ran"]
    finally:
        delete_namespace(admin, namespace)


def _broker_up(client: Any) -> bool:
    with contextlib.suppress(Exception):
        client.stats()
        return True
    return False


def _finished(client: Any, item_id: str) -> Any:
    item = client.get(item_id)
    return item if item.state == "done" else None


def _job_of(admin: Any, namespace: str, plural: str, item_id: str) -> str:
    from agent.resources import resource_name

    path = f"/apis/remora.dev/v1alpha1/namespaces/{namespace}/{plural}/{resource_name(item_id)}"

    def job_name() -> str | None:
        try:
            return (request(admin, "GET", path).get("status") or {}).get("jobName")
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    return str(wait_until(job_name, timeout=45, description=f"{item_id}: a Job"))


def collect(admin: Any, cluster: Any, stack: Stack, tmp_path: Path, namespaces: list[str]) -> dict[str, str]:
    """Every log file, Event and status the run produced, by source."""
    captured: dict[str, str] = {}
    for path in sorted([*stack.log_dir.glob("*.log"), *tmp_path.glob("*.log")]):
        captured[path.name] = path.read_text(errors="replace")
    for component, path in cluster.log_paths.items():
        if path.exists():
            captured[f"{component} log"] = path.read_text(errors="replace")
    texts: list[str] = []
    for namespace in namespaces:
        for events_path in (f"/api/v1/namespaces/{namespace}/events",
                            f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"):  # fmt: skip
            texts.append(json.dumps(request(admin, "GET", events_path)["items"]))
    captured["events"] = "\n".join(texts)
    objects: list[str] = []
    for namespace in namespaces[:1]:
        for plural in ("databasemigrations", "buildrequests"):
            objects.append(
                json.dumps(
                    request(admin, "GET", f"/apis/remora.dev/v1alpha1/namespaces/{namespace}/{plural}")
                )
            )
        objects.append(json.dumps(request(admin, "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs")))
        objects.append(
            json.dumps(request(admin, "GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"))
        )
    captured["resources and Jobs"] = "\n".join(objects)
    return captured
