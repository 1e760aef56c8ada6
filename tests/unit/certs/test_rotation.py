"""The rotation, driven end to end against an in-memory apiserver, proven with real TLS.

Three replicas share the fake apiserver and a simulated clock. Each has its own cert
directory and its own TLS server on loopback that serves whatever files are there (as
the webhook server does after its reload). After every action of every replica, a
client that trusts exactly the caBundle the webhooks carry right then connects to every
replica and must complete a verified handshake: no admission call fails at any step.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from certs_fake_api import WEBHOOK_API, FakeApi, add_webhook_configs, ca_bundles

from certs import bundle, issue, readiness, store, webhooks
from certs.bootstrap import bootstrap
from certs.plan import Names, Policy
from certs.rotation import CERT_FILE, KEY_FILE, RotationConfig, Rotator
from certs.state import CertState

NS = "remora-system"
SERVICE_NAME = "remora-webhook.remora-system.svc"
# OpenSSL's X509_V_FLAG_NO_CHECK_TIME: the simulated clock runs days ahead of the real one,
# so the handshake checks chain and name, and validity periods are checked at simulated time.
NO_CHECK_TIME = 0x200000


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now


class FileServer:
    """A TLS server on 127.0.0.1 that loads the cert files at each accept (a hot reload)."""

    def __init__(self, cert_dir: Path) -> None:
        self.cert_dir = cert_dir
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(self.cert_dir / CERT_FILE, self.cert_dir / KEY_FILE)
                try:
                    with ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)
                except (ssl.SSLError, OSError):
                    pass

    def close(self) -> None:
        self.stop = True
        self.sock.close()


def handshake(port: int, ca_pem: bytes) -> None:
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    ctx.verify_flags |= NO_CHECK_TIME
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        ctx.wrap_socket(sock, server_hostname=SERVICE_NAME) as tls,
    ):
        tls.sendall(b"x")


@pytest.fixture
def api() -> FakeApi:
    fake = FakeApi()
    add_webhook_configs(fake)
    fake.put_object(
        f"/api/v1/namespaces/{NS}/configmaps/remora-capabilities",
        {"metadata": {"name": "remora-capabilities"}},
    )
    return fake


def config(cert_dir: Path | None, identity: str, policy: Policy) -> RotationConfig:
    return RotationConfig(
        secret=store.SecretRef(NS, "remora-webhook-certs"),
        target=webhooks.Target(names=("remora",)),
        names=Names(tuple(issue.service_dns_names("remora-webhook", NS)), ("127.0.0.1",)),
        policy=policy,
        cert_dir=cert_dir,
        identity=identity,
        lease_duration=dt.timedelta(seconds=90),
    )


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[FileServer]]:
    made = [FileServer(tmp_path / f"replica-{i}") for i in range(3)]
    yield made
    for s in made:
        s.close()


def live_trust(api: FakeApi) -> list[bytes]:
    """The distinct caBundles (PEM) the webhooks carry right now."""
    import base64

    return sorted({base64.b64decode(v) for v in ca_bundles(api) if v})


def test_rotation_never_breaks_a_handshake(api: FakeApi, servers: list[FileServer]) -> None:
    clock = Clock()
    start = clock.now
    policy = Policy(ca_lifetime=dt.timedelta(days=3), serving_lifetime=dt.timedelta(hours=12))
    replicas = [
        Rotator(api, config(s.cert_dir, f"replica-{i}", policy), clock) for i, s in enumerate(servers)
    ]
    handshakes = 0
    cas_seen: set[bytes] = set()
    bundle_sizes: set[int] = set()

    def check_everyone() -> None:
        nonlocal handshakes
        for trust in live_trust(api):
            trusted = bundle.parse(trust)
            bundle_sizes.add(len(trusted))
            for server in servers:
                if not (server.cert_dir / CERT_FILE).exists():
                    continue
                handshake(server.port, trust)
                handshakes += 1
                served = issue.load_cert((server.cert_dir / CERT_FILE).read_bytes())
                report = readiness.compare(served, {"hook": trusted}, SERVICE_NAME, clock.now)
                assert report.ok, report.summary()

    # (time, Secret state) after each leader step: the lagging follower reads from this history.
    history: list[tuple[dt.datetime, CertState]] = []
    catch_up = clock.now
    while clock.now < start + dt.timedelta(days=5):
        wakes = []
        for i, rotator in enumerate(replicas):
            if rotator.lease.acquire_or_renew():
                decision = rotator.converge(max_steps=1)[-1]
                history.append((clock.now, decision.state))
                if decision.action in ("write", "publish"):
                    check_everyone()
                if decision.action in ("write", "publish"):
                    # Small ticks until the slowest follower has seen this change.
                    wakes.append(clock.now)
                    catch_up = clock.now + policy.propagation + dt.timedelta(seconds=20)
                elif decision.wake_at:
                    wakes.append(decision.wake_at)
                continue
            if i == 2:
                # replica-2 is the slowest follower allowed: it sees the Secret as it was a
                # full propagation delay ago.
                stale = [st for t, st in history if t <= clock.now - policy.propagation]
                if stale and rotator.sync_files(stale[-1]):
                    check_everyone()
                continue
            if rotator.sync_files():
                check_everyone()
        if not (wakes and min(wakes) == clock.now):
            check_everyone()  # time alone passed this tick: still trusted and valid?
        state = store.read(api, replicas[0].config.secret)
        if state.ca:
            cas_seen.add(bundle.fingerprint(state.ca.cert))
        # Tick: 20s while something is pending, else straight to the next renewal (at most 6h).
        step = dt.timedelta(seconds=20)
        if wakes and min(wakes) > clock.now + step and clock.now > catch_up:
            step = min(min(wakes) - clock.now, dt.timedelta(hours=6))
        clock.now += step

    assert handshakes > 200
    assert len(cas_seen) >= 3, "expected two CA rotations in 5 days of 3-day CAs"
    assert bundle_sizes == {1, 2}, "the bundle held old and new CA during overlaps, one CA otherwise"


def test_bootstrap_is_idempotent(api: FakeApi, tmp_path: Path) -> None:
    cfg = config(tmp_path / "certs", "cli", Policy())
    first = bootstrap(api, cfg)
    assert first.changed and first.finished
    assert [d.action for d in first.steps] == ["write", "publish", "nothing"]
    secret = api.get_object(f"/api/v1/namespaces/{NS}/secrets/remora-webhook-certs")
    assert secret is not None
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "ConfigMap"
    assert set(secret["data"]) == {"ca.crt", "ca.key", "tls.crt", "tls.key", "ca-bundle.crt"}
    assert len(set(ca_bundles(api))) == 1 and None not in ca_bundles(api)
    writes_before = [c for c in api.calls if c[0] in ("POST", "PUT", "PATCH")]

    again = bootstrap(api, cfg)
    assert not again.changed and again.finished
    assert [d.action for d in again.steps] == ["nothing"]
    assert [c for c in api.calls if c[0] in ("POST", "PUT", "PATCH")] == writes_before
    again_secret = api.get_object(f"/api/v1/namespaces/{NS}/secrets/remora-webhook-certs")
    assert again_secret is not None
    assert again_secret["metadata"]["resourceVersion"] == secret["metadata"]["resourceVersion"]


def test_bootstrap_repairs_a_wiped_ca_bundle(api: FakeApi, tmp_path: Path) -> None:
    cfg = config(None, "cli", Policy())
    bootstrap(api, cfg)
    kept = ca_bundles(api)
    add_webhook_configs(api)  # as if the configurations were re-created without caBundle
    assert set(ca_bundles(api)) == {None}
    outcome = bootstrap(api, cfg)
    assert [d.action for d in outcome.steps] == ["publish", "nothing"]
    assert ca_bundles(api) == kept


def test_bootstrap_fails_clearly_without_webhook_configs(tmp_path: Path) -> None:
    empty = FakeApi()
    with pytest.raises(webhooks.WebhookError, match="no webhook configuration found for name remora"):
        bootstrap(empty, config(None, "cli", Policy()))


def test_only_the_lease_holder_writes(api: FakeApi, tmp_path: Path) -> None:
    clock = Clock()
    a = Rotator(api, config(tmp_path / "a", "a", Policy()), clock)
    b = Rotator(api, config(tmp_path / "b", "b", Policy()), clock)
    assert a.lease.acquire_or_renew()
    assert not b.lease.acquire_or_renew()
    a.converge()
    assert not (tmp_path / "b" / CERT_FILE).exists()
    assert b.sync_files()
    assert (tmp_path / "a" / CERT_FILE).read_bytes() == (tmp_path / "b" / CERT_FILE).read_bytes()
    # a stops renewing; once the lease expires b takes over.
    clock.now += dt.timedelta(seconds=91)
    assert b.lease.acquire_or_renew()
    assert not a.lease.acquire_or_renew()
    lease = api.get_object(f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/remora-certs")
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1
    assert lease["metadata"]["ownerReferences"][0]["name"] == "remora-capabilities"
    b.lease.release()
    assert a.lease.acquire_or_renew()


def test_stale_write_is_a_conflict(api: FakeApi) -> None:
    cfg = config(None, "x", Policy())
    bootstrap(api, cfg)
    state = store.read(api, cfg.secret)
    store.write(api, cfg.secret, state, {})
    with pytest.raises(store.StoreConflict, match="changed meanwhile"):
        store.write(api, cfg.secret, state, {})


def test_publish_retries_when_the_config_moves(api: FakeApi) -> None:
    ca = issue.new_ca("x", dt.timedelta(days=1))
    target = webhooks.Target(names=("remora",))
    configs = webhooks.find(api, target)
    # A stale read: the patch's resourceVersion test fails, publish re-reads and succeeds.
    path = f"{WEBHOOK_API}/mutatingwebhookconfigurations/remora"
    obj = api.get_object(path)
    assert obj is not None
    api.put_object(path, obj)
    ops = webhooks.patch_ops(configs[0], "Zm9v")
    assert ops[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": configs[0].resource_version}
    changed = webhooks.publish(api, target, [ca.cert])
    assert len(changed) == 2
    assert set(ca_bundles(api)) == {bundle.encode_base64([ca.cert])}
    assert webhooks.publish(api, target, [ca.cert]) == []


def test_cert_manager_configs_are_left_alone(api: FakeApi) -> None:
    path = f"{WEBHOOK_API}/validatingwebhookconfigurations/remora"
    obj = api.get_object(path)
    assert obj is not None
    obj["metadata"]["annotations"] = {"cert-manager.io/inject-ca-from": f"{NS}/remora-webhook"}
    api.put_object(path, obj)
    ca = issue.new_ca("x", dt.timedelta(days=1))
    assert webhooks.publish(api, webhooks.Target(names=("remora",)), [ca.cert]) == [
        "MutatingWebhookConfiguration remora"
    ]
    with pytest.raises(webhooks.WebhookError, match="empty CA bundle"):
        webhooks.publish(api, webhooks.Target(names=("remora",)), [])


def test_readiness_reports_disagreement_over_a_real_connection(
    api: FakeApi, servers: list[FileServer]
) -> None:
    cfg = config(servers[0].cert_dir, "r", Policy())
    bootstrap(api, cfg)
    target = webhooks.Target(names=("remora",))
    good = readiness.check(api, target, "127.0.0.1", servers[0].port, server_name=SERVICE_NAME)
    assert good.ok, good.summary()
    # Someone writes a foreign CA into the mutating webhook: readiness names it.
    other = issue.new_ca("foreign-ca", dt.timedelta(days=1))
    path = f"{WEBHOOK_API}/mutatingwebhookconfigurations/remora"
    obj = api.get_object(path)
    assert obj is not None
    obj["webhooks"][0]["clientConfig"]["caBundle"] = bundle.encode_base64([other.cert])
    api.put_object(path, obj)
    bad = readiness.check(api, target, "127.0.0.1", servers[0].port, server_name=SERVICE_NAME)
    assert not bad.ok
    assert (
        "MutatingWebhookConfiguration remora/inject.remora.dev: caBundle (foreign-ca) does not trust"
        in bad.summary()
    )
    wrong_name = readiness.check(api, target, "127.0.0.1", servers[0].port, server_name="elsewhere.example")
    assert "not valid for elsewhere.example" in wrong_name.summary()
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    down = readiness.check(api, target, "127.0.0.1", port)
    assert not down.ok and "cannot read the served certificate" in down.summary()


def test_find_by_label_selector(api: FakeApi) -> None:
    add_webhook_configs(api, name="other")
    found = webhooks.find(api, webhooks.Target(selector="app.kubernetes.io/name=remora"))
    assert [(c.resource, c.name) for c in found] == [
        ("mutatingwebhookconfigurations", "other"),
        ("mutatingwebhookconfigurations", "remora"),
        ("validatingwebhookconfigurations", "other"),
        ("validatingwebhookconfigurations", "remora"),
    ]
    with pytest.raises(webhooks.WebhookError, match="label selector 'app=none'"):
        webhooks.find(api, webhooks.Target(selector="app=none"))
    with pytest.raises(ValueError, match="name the webhook configurations"):
        webhooks.Target()


def test_run_loops_lead_and_follow_then_release(api: FakeApi, tmp_path: Path) -> None:
    stop = threading.Event()
    fast = {"poll_interval": dt.timedelta(seconds=0.05), "lease_duration": dt.timedelta(seconds=3)}
    configs = [
        RotationConfig(**{**config(tmp_path / name, name, Policy()).__dict__, **fast}) for name in ("a", "b")
    ]
    rotators = [Rotator(api, c) for c in configs]
    assert rotators[0].wait_for_files(timeout=10)
    threads = [r.start(stop) for r in rotators]
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)
    while not (tmp_path / "b" / CERT_FILE).exists() and dt.datetime.now(dt.UTC) < deadline:
        stop.wait(0.05)
    stop.set()
    for t in threads:
        t.join(10)
    assert (tmp_path / "a" / CERT_FILE).read_bytes() == (tmp_path / "b" / CERT_FILE).read_bytes()
    lease = api.get_object(f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/remora-certs")
    assert lease is not None and lease["spec"]["holderIdentity"] is None, (
        "the leader gives the Lease up on stop"
    )
