"""Decide the next certificate step: a pure function of (state, what is published, policy, now).

Bootstrap and rotation both run this planner, one step at a time, so an interrupted
run resumes where it stopped and a run over a valid state changes nothing.

The invariant every step keeps: the CA that signed the serving certificate being
served is in the caBundle the apiserver uses. A CA rotation therefore goes
  1. generate the next CA and add it to the bundle (old + new), publish it;
  2. once the bundle has been out for `propagation`, switch the serving certificate
     to one signed by the next CA (both are trusted, so either verifies);
  3. once every replica has had `propagation` to load that certificate, drop the old CA.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from cryptography import x509

from certs import bundle
from certs.issue import KeyPair, key_matches, new_ca, new_serving, sans_of
from certs.state import CertState

# Actions the driver acts on.
NOTHING: Final = "nothing"
WAIT: Final = "wait"
PUBLISH: Final = "publish"  # write state.bundle into the webhooks' caBundle
WRITE: Final = "write"  # store the new state in the Secret (then publish if the bundle changed)


@dataclass(frozen=True)
class Policy:
    ca_lifetime: dt.timedelta = dt.timedelta(days=365)
    serving_lifetime: dt.timedelta = dt.timedelta(hours=24)
    # Renew at this fraction of a certificate's lifetime.
    renew_fraction: float = 2 / 3
    # How long a change needs to reach every apiserver and every replica before the next
    # step may rely on it (apiserver informers, replicas polling the Secret).
    propagation: dt.timedelta = dt.timedelta(seconds=60)
    ca_common_name: str = "remora-webhook-ca"

    def __post_init__(self) -> None:
        if not 0 < self.renew_fraction < 1:
            raise ValueError("renew fraction must be between 0 and 1")
        if self.serving_lifetime <= dt.timedelta(0) or self.ca_lifetime <= dt.timedelta(0):
            raise ValueError("certificate lifetimes must be positive")
        if self.propagation < dt.timedelta(0):
            raise ValueError("propagation delay must not be negative")
        # The whole CA rotation (two propagation waits) must fit in the last third of its life.
        if self.propagation * 2 >= self.ca_lifetime * (1 - self.renew_fraction):
            raise ValueError("CA lifetime is too short for the propagation delay")
        # A due serving certificate may wait out one propagation step of a CA rotation.
        if self.propagation * 2 >= self.serving_lifetime * (1 - self.renew_fraction):
            raise ValueError("serving lifetime is too short for the propagation delay")


@dataclass(frozen=True)
class Names:
    """What the serving certificate must be valid for."""

    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    action: str
    reason: str
    state: CertState
    # When to look again (for NOTHING and WAIT).
    wake_at: dt.datetime | None = None


def plan(state: CertState, published: bool, names: Names, policy: Policy, now: dt.datetime) -> Decision:
    ca = state.ca
    if ca is None or not _usable_ca(ca, now):
        return _issue_all(state, names, policy, now)

    if not bundle.contains(state.bundle, ca.cert):
        fixed = bundle.merge(state.bundle, [ca.cert], now=now)
        return Decision(
            WRITE, "the CA bundle lacks the signing CA; adding it", _bundle_changed(state, fixed, now)
        )

    if not published:
        return Decision(PUBLISH, "the webhooks' caBundle differs from the CA bundle", state)

    # A serving certificate that cannot be served comes first; one that is merely due can
    # wait a step, so that a due CA is never starved by serving renewals.
    problem = _serving_problem(state.serving, ca, names, now)
    if problem:
        return _renew_serving(state, ca, names, policy, now, why=f"serving certificate {problem}")

    if state.next_ca is not None:
        return _advance_ca_rotation(state, state.next_ca, names, policy, now)

    old = bundle.without(state.bundle, [ca.cert])
    if not old and bundle.due(ca.cert, now, policy.renew_fraction):
        nxt = new_ca(policy.ca_common_name, policy.ca_lifetime, now)
        grown = bundle.merge(state.bundle, [nxt.cert], now=now)
        return Decision(
            WRITE,
            "CA is due for renewal; adding the next CA to the bundle",
            _bundle_changed(state, grown, now).evolve(next_ca=nxt),
        )

    if _serving_due(state.serving, ca, now, policy):
        return _renew_serving(state, ca, names, policy, now, why="serving certificate is due for renewal")

    if old:
        ready_at = _later(state.bundle_changed_at, state.serving_changed_at) + policy.propagation
        if now < ready_at:
            return Decision(
                WAIT, "old CA stays trusted until every replica serves the new certificate", state, ready_at
            )
        return Decision(WRITE, "dropping the old CA from the bundle", _bundle_changed(state, [ca.cert], now))

    wake = bundle.renewal_time(ca.cert, policy.renew_fraction)
    if state.serving is not None and not _ends_with(state.serving.cert, ca.cert):
        wake = min(wake, bundle.renewal_time(state.serving.cert, policy.renew_fraction))
    return Decision(NOTHING, "certificates are valid", state, wake)


def _issue_all(state: CertState, names: Names, policy: Policy, now: dt.datetime) -> Decision:
    """No usable CA: start over. Still-valid CAs stay in the bundle, so whatever is being
    served now keeps verifying until the new serving certificate is loaded."""
    ca = new_ca(policy.ca_common_name, policy.ca_lifetime, now)
    serving = new_serving(ca, list(names.dns_names), list(names.ip_addresses), policy.serving_lifetime, now)
    kept = bundle.merge([ca.cert], state.bundle, now=now)
    if state.serving is not None:
        kept = [c for c in kept if c is ca.cert or bundle.issued_by_any(state.serving.cert, [c])]
    fresh = state.evolve(ca=ca, next_ca=None)
    fresh = _serving_changed(_bundle_changed(fresh, kept, now), serving, now)
    why = "no usable CA" if state.ca is None else "the CA is not valid now"
    return Decision(WRITE, f"{why}; issuing a CA and a serving certificate", fresh)


def _advance_ca_rotation(
    state: CertState, nxt: KeyPair, names: Names, policy: Policy, now: dt.datetime
) -> Decision:
    if not _usable_ca(nxt, now):
        return Decision(WRITE, "the next CA is unusable; discarding it", state.evolve(next_ca=None))
    if not bundle.contains(state.bundle, nxt.cert):
        grown = bundle.merge(state.bundle, [nxt.cert], now=now)
        return Decision(WRITE, "adding the next CA to the bundle", _bundle_changed(state, grown, now))
    if state.bundle_changed_at is None:
        return Decision(WRITE, "recording when the bundle changed", _bundle_changed(state, state.bundle, now))
    ready_at = state.bundle_changed_at + policy.propagation
    if now < ready_at:
        return Decision(
            WAIT, "waiting for the bundle with the next CA to reach every apiserver", state, ready_at
        )
    serving = new_serving(nxt, list(names.dns_names), list(names.ip_addresses), policy.serving_lifetime, now)
    switched = _serving_changed(state.evolve(ca=nxt, next_ca=None), serving, now)
    return Decision(
        WRITE,
        "switching to a serving certificate signed by the next CA",
        switched,
    )


def _renew_serving(
    state: CertState, ca: KeyPair, names: Names, policy: Policy, now: dt.datetime, *, why: str
) -> Decision:
    serving = new_serving(ca, list(names.dns_names), list(names.ip_addresses), policy.serving_lifetime, now)
    return Decision(WRITE, f"{why}; renewing it", _serving_changed(state, serving, now))


def _serving_problem(serving: KeyPair | None, ca: KeyPair, names: Names, now: dt.datetime) -> str | None:
    """Why the serving certificate cannot be served as it is (being due is not such a reason)."""
    if serving is None:
        return "is missing"
    cert = serving.cert
    if not key_matches(serving):
        return "does not match its key"
    if not bundle.is_valid_at(cert, now):
        return "is not valid now"
    if not bundle.issued_by_any(cert, [ca.cert]):
        return "is not signed by the current CA"
    dns, ips = sans_of(cert)
    if set(dns) != set(names.dns_names) or set(ips) != set(names.ip_addresses):
        return "names other hosts than wanted"
    return None


def _serving_due(serving: KeyPair | None, ca: KeyPair, now: dt.datetime, policy: Policy) -> bool:
    """Due, unless it already ends with its CA: a renewal could not outlive it (it would be cut to
    the CA's end again, and be due again at once), and the CA's rotation replaces it in time."""
    if serving is None or _ends_with(serving.cert, ca.cert):
        return False
    return bundle.due(serving.cert, now, policy.renew_fraction)


def _ends_with(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    return cert.not_valid_after_utc >= ca.not_valid_after_utc


def _usable_ca(pair: KeyPair, now: dt.datetime) -> bool:
    return bundle.is_ca(pair.cert) and key_matches(pair) and bundle.is_valid_at(pair.cert, now)


def _bundle_changed(state: CertState, certs: list[x509.Certificate], now: dt.datetime) -> CertState:
    return state.evolve(bundle=certs, bundle_changed_at=now)


def _serving_changed(state: CertState, serving: KeyPair, now: dt.datetime) -> CertState:
    return state.evolve(serving=serving, serving_changed_at=now)


def _later(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime:
    known = [t for t in (a, b) if t is not None]
    return max(known) if known else dt.datetime.min.replace(tzinfo=dt.UTC)
