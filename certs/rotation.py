"""Certificate rotation inside the webhook process.

Every replica runs a Rotator. The one holding the Lease plans and applies steps
(certs.plan) against the Secret and the webhook configurations; every replica,
leader or not, writes the serving certificate from the Secret into `cert_dir`, the
directory the webhook server reads its TLS files from and reloads on change.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from certs import bundle, store, webhooks
from certs.issue import utcnow, write_pem_files
from certs.lease import LeaderLease
from certs.plan import NOTHING, PUBLISH, WAIT, WRITE, Decision, Names, Policy, plan
from certs.state import CertState
from common.names import CATALOG_CONFIGMAP, MANAGED_BY_LABEL, MANAGED_BY_VALUE

log = logging.getLogger("remora.certs")

# File names in cert_dir (what `remora serve --tls-cert/--tls-key` is pointed at).
CERT_FILE: Final = "tls.crt"
KEY_FILE: Final = "tls.key"
BUNDLE_FILE: Final = "ca.crt"
LABELS: Final = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, "app.kubernetes.io/component": "webhook-certs"}


@dataclass(frozen=True)
class RotationConfig:
    secret: store.SecretRef
    target: webhooks.Target
    names: Names
    policy: Policy = field(default_factory=Policy)
    cert_dir: Path | None = None
    lease_name: str = "remora-certs"
    identity: str = field(default_factory=socket.gethostname)
    poll_interval: dt.timedelta = dt.timedelta(seconds=5)
    lease_duration: dt.timedelta = dt.timedelta(seconds=15)
    # The Secret and Lease are owned by this ConfigMap (the chart's catalog), so that
    # `helm uninstall` garbage-collects them; None leaves them unowned.
    owner_configmap: str | None = CATALOG_CONFIGMAP


class Rotator:
    def __init__(self, api: Any, config: RotationConfig, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.api = api
        self.config = config
        self.clock = clock
        self.lease = LeaderLease(
            api,
            config.secret.namespace,
            config.lease_name,
            config.identity,
            duration=config.lease_duration,
            clock=clock,
            labels=dict(LABELS),
            owner_references=self._owner_references,
        )
        self.last: Decision | None = None

    # -- one leader step --------------------------------------------------------------

    def step(self) -> Decision:
        """Read, plan and apply one step; the Decision says what was done and when to look again."""
        state = store.read(self.api, self.config.secret)
        published = self._published(state)
        now = self.clock()
        decision = plan(state, published, self.config.names, self.config.policy, now)
        try:
            if decision.action == WRITE:
                saved = store.write(
                    self.api, self.config.secret, decision.state, dict(LABELS), self._owner(state)
                )
                decision = Decision(WRITE, decision.reason, saved, now)
            elif decision.action == PUBLISH:
                changed = webhooks.publish(self.api, self.config.target, state.bundle)
                saved = state
                if changed:
                    saved = store.write(
                        self.api,
                        self.config.secret,
                        state.evolve(bundle_changed_at=self.clock()),
                        dict(LABELS),
                    )
                decision = Decision(
                    PUBLISH, f"{decision.reason}; patched {', '.join(changed) or 'nothing'}", saved, now
                )
        except store.StoreConflict as exc:
            decision = Decision(WAIT, f"{exc}; planning again", state, now)
        if decision.action != NOTHING or (self.last and self.last.action != NOTHING):
            log.info("certs: %s", decision.reason)
        self.last = decision
        self.sync_files(decision.state)
        return decision

    def converge(
        self, *, max_steps: int = 32, wait: bool = False, sleep: Callable[[float], None] | None = None
    ) -> list[Decision]:
        """Step until nothing is left to do. A WAIT ends the run unless `wait` is set."""
        pause = sleep or threading.Event().wait
        done: list[Decision] = []
        for _ in range(max_steps):
            decision = self.step()
            done.append(decision)
            if decision.action == NOTHING:
                return done
            if decision.action == WAIT:
                if not wait:
                    return done
                pause(max(0.0, ((decision.wake_at or self.clock()) - self.clock()).total_seconds()) + 0.05)
        return done

    # -- every replica ----------------------------------------------------------------

    def sync_files(self, state: CertState | None = None) -> bool:
        """Write the serving certificate, key and CA bundle into cert_dir when they changed."""
        if self.config.cert_dir is None:
            return False
        if state is None:
            state = store.read(self.api, self.config.secret)
        if state.serving is None:
            return False
        files = {KEY_FILE: state.serving.key_pem, CERT_FILE: state.serving.cert_pem}
        if state.bundle:
            files[BUNDLE_FILE] = bundle.encode(state.bundle)
        # The key is written before the certificate: a server reloading on a certificate
        # change then always finds the matching key already in place.
        changed = write_pem_files(self.config.cert_dir, files, private=frozenset({KEY_FILE}))
        if changed:
            log.info("certs: wrote %s", bundle.describe(state.serving.cert))
        return changed

    def run(self, stop: threading.Event) -> None:
        """Lead or follow until `stop` is set; errors are logged and retried with backoff."""
        backoff = 1.0
        poll = self.config.poll_interval.total_seconds()
        renew = min(poll, self.config.lease_duration.total_seconds() / 3)
        try:
            while not stop.is_set():
                try:
                    if self.lease.acquire_or_renew():
                        decision = self.step()
                        delay = self._delay(decision, renew)
                    else:
                        self.sync_files()
                        delay = poll
                    backoff = 1.0
                except Exception as exc:
                    log.warning("certs: %s: %s (retrying in %.0fs)", type(exc).__name__, exc, backoff)
                    delay, backoff = backoff, min(backoff * 2, 60.0)
                stop.wait(delay)
        finally:
            self.lease.release()

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="remora-cert-rotation", daemon=True)
        thread.start()
        return thread

    def wait_for_files(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Block until cert_dir holds a serving certificate (a fresh replica's first start)."""
        stop = stop or threading.Event()
        deadline = self.clock() + dt.timedelta(seconds=timeout)
        while self.clock() < deadline and not stop.is_set():
            try:
                if self.lease.acquire_or_renew():
                    self.converge()
                else:
                    self.sync_files()
            except Exception as exc:
                log.warning("certs: waiting for certificates: %s: %s", type(exc).__name__, exc)
            if self.config.cert_dir and (self.config.cert_dir / CERT_FILE).exists():
                return True
            stop.wait(1.0)
        return False

    # -- helpers ----------------------------------------------------------------------

    def _published(self, state: CertState) -> bool:
        try:
            configs = webhooks.find(self.api, self.config.target)
        except webhooks.WebhookError as exc:
            # Nothing to publish to (yet); the next look publishes once they exist.
            log.warning("certs: %s", exc)
            return True
        managed = [c for c in configs if not c.uses_cert_manager]
        return not webhooks.disagreements(managed, state.bundle)

    def _owner(self, state: CertState) -> store.Owner | None:
        if state.resource_version is not None:
            return None  # ownership is set at creation and kept on update
        return self._required_owner()

    def _owner_references(self) -> list[dict[str, Any]]:
        owner = self._required_owner()
        return [owner.reference()] if owner else []

    def _required_owner(self) -> store.Owner | None:
        """The owner to create objects under. When one is configured but absent (the chart is
        not installed, or is being uninstalled) nothing is created: it would outlive the release."""
        name = self.config.owner_configmap
        owner = store.find_owner(self.api, self.config.secret.namespace, name)
        if name and owner is None:
            raise store.MissingOwner(
                f"ConfigMap {self.config.secret.namespace}/{name} does not exist; not creating objects "
                "that would outlive the release (install the chart first, or pass --owner-configmap '')"
            )
        return owner

    def _delay(self, decision: Decision, renew: float) -> float:
        if decision.action in (WRITE, PUBLISH):
            return 0.0
        wake = decision.wake_at or self.clock()
        until = (wake - self.clock()).total_seconds()
        return max(0.05, min(renew, until))
