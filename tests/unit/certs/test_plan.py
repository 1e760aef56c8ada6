import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certs import bundle, issue
from certs.plan import NOTHING, PUBLISH, WAIT, WRITE, Names, Policy, plan
from certs.state import CertState, from_secret, secret_annotations, secret_data

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NAMES = Names(tuple(issue.service_dns_names("svc", "ns")), ("127.0.0.1",))
POLICY = Policy(ca_lifetime=dt.timedelta(days=3), serving_lifetime=dt.timedelta(hours=6))


def round_trip(state: CertState) -> CertState:
    """Through the Secret encoding, as every step goes in real life."""
    secret = {
        "metadata": {"resourceVersion": "7", "annotations": secret_annotations(state)},
        "data": secret_data(state),
    }
    return from_secret(secret)


def test_empty_state_issues_everything_then_publishes_then_rests() -> None:
    first = plan(CertState(), True, NAMES, POLICY, T0)
    assert first.action == WRITE and "no usable CA" in first.reason
    state = round_trip(first.state)
    assert state.problems == ()
    assert state.ca and state.serving and bundle.same(state.bundle, [state.ca.cert])
    assert issue.issued_by(state.serving.cert, state.ca.cert)
    assert plan(state, False, NAMES, POLICY, T0).action == PUBLISH
    rest = plan(state, True, NAMES, POLICY, T0)
    assert rest.action == NOTHING
    assert rest.wake_at == bundle.renewal_time(state.serving.cert)


def test_serving_renewed_at_two_thirds_by_the_same_ca() -> None:
    state = round_trip(plan(CertState(), True, NAMES, POLICY, T0).state)
    assert state.serving is not None
    due_at = bundle.renewal_time(state.serving.cert)
    assert plan(state, True, NAMES, POLICY, due_at - dt.timedelta(seconds=1)).action == NOTHING
    renewed = plan(state, True, NAMES, POLICY, due_at)
    assert renewed.action == WRITE and "due for renewal" in renewed.reason
    assert renewed.state.ca == state.ca and renewed.state.bundle == state.bundle
    assert renewed.state.serving is not None and renewed.state.serving.cert != state.serving.cert


def test_serving_cut_to_the_ca_end_is_not_renewed_in_a_loop() -> None:
    """A CA that ends sooner than a serving lifetime: the serving certificate is cut to the CA's
    end, so renewing it cannot help (it would be due again at once); the CA rotation replaces it."""
    short = Policy(
        ca_lifetime=dt.timedelta(minutes=6),
        serving_lifetime=dt.timedelta(minutes=3),
        propagation=dt.timedelta(seconds=2),
    )
    state = round_trip(plan(CertState(), True, NAMES, short, T0).state)
    assert state.ca is not None and state.serving is not None
    long_serving = Policy(ca_lifetime=dt.timedelta(days=3), serving_lifetime=dt.timedelta(hours=6))
    renewed = plan(state, True, NAMES, long_serving, bundle.renewal_time(state.serving.cert))
    assert renewed.action == WRITE and "due for renewal" in renewed.reason
    cut = round_trip(renewed.state)
    assert cut.serving is not None
    assert cut.serving.cert.not_valid_after_utc == cut.ca.cert.not_valid_after_utc  # type: ignore[union-attr]
    # Before: the cut certificate, backdated by minutes, was due again at once, every pass.
    soon = bundle.renewal_time(cut.ca.cert) - dt.timedelta(seconds=10)  # type: ignore[union-attr]
    rest = plan(cut, True, NAMES, long_serving, soon)
    assert rest.action == NOTHING, rest.reason
    assert rest.wake_at == bundle.renewal_time(cut.ca.cert)  # type: ignore[union-attr]
    ca_due = plan(cut, True, NAMES, long_serving, bundle.renewal_time(cut.ca.cert))  # type: ignore[union-attr]
    assert ca_due.action == WRITE and "CA is due" in ca_due.reason


def test_changed_names_reissue_the_serving_certificate() -> None:
    state = round_trip(plan(CertState(), True, NAMES, POLICY, T0).state)
    other = Names(NAMES.dns_names, ("10.0.0.1",))
    decision = plan(state, True, other, POLICY, T0)
    assert decision.action == WRITE and "names other hosts" in decision.reason
    assert decision.state.serving is not None
    assert issue.sans_of(decision.state.serving.cert)[1] == ["10.0.0.1"]


def test_corrupt_secret_is_reported_and_replaced() -> None:
    state = from_secret(
        {"metadata": {"resourceVersion": "3"}, "data": {"ca.crt": "!!", "tls.crt": "QUFB", "tls.key": "QUFB"}}
    )
    assert any("not valid base64" in p for p in state.problems)
    assert any("malformed" in p for p in state.problems)
    assert plan(state, True, NAMES, POLICY, T0).action == WRITE


def test_full_ca_rotation_keeps_the_signer_trusted_at_every_step() -> None:
    now = T0
    state = round_trip(plan(CertState(), True, NAMES, POLICY, now).state)
    published = list(state.bundle)
    actions = []
    cas = set()
    # Walk 8 days in steps; publish whenever asked, as the driver does.
    while now < T0 + dt.timedelta(days=8):
        decision = plan(state, bundle.same(published, state.bundle), NAMES, POLICY, now)
        actions.append(decision.reason)
        if decision.action == PUBLISH:
            published = list(state.bundle)
            state = state.evolve(bundle_changed_at=now)
        elif decision.action == WRITE:
            state = round_trip(decision.state)
        else:
            assert decision.action in (NOTHING, WAIT)
            assert decision.wake_at is not None and decision.wake_at > now
            now = min(decision.wake_at, now + dt.timedelta(hours=1))
        assert state.serving is not None and state.ca is not None
        cas.add(bundle.fingerprint(state.ca.cert))
        # The invariant: what is served verifies against what is published, or is about to
        # be replaced by a step that has not relied on the publication yet.
        assert bundle.issued_by_any(state.serving.cert, published) or decision.action == WRITE
    assert len(cas) >= 3, "the CA should have rotated at least twice in 8 days of a 3-day CA"
    assert any("adding the next CA" in r for r in actions)
    assert any("switching to a serving certificate signed by the next CA" in r for r in actions)
    assert any("dropping the old CA" in r for r in actions)


def test_switch_waits_for_propagation() -> None:
    state = round_trip(plan(CertState(), True, NAMES, POLICY, T0).state)
    assert state.ca is not None
    due_at = bundle.renewal_time(state.ca.cert)
    # The serving certificate is renewed along the way; ask at the CA's renewal time.
    state = round_trip(plan(state, True, NAMES, POLICY, due_at).state)  # renew serving first
    start = plan(state, True, NAMES, POLICY, due_at)
    assert start.action == WRITE and "next CA" in start.reason
    rotating = round_trip(start.state)
    assert rotating.next_ca is not None and len(rotating.bundle) == 2
    assert plan(rotating, False, NAMES, POLICY, due_at).action == PUBLISH
    waiting = plan(rotating, True, NAMES, POLICY, due_at + dt.timedelta(seconds=30))
    assert waiting.action == WAIT and waiting.wake_at == due_at + POLICY.propagation
    switched = plan(rotating, True, NAMES, POLICY, due_at + POLICY.propagation)
    assert switched.action == WRITE and switched.state.ca == rotating.next_ca


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"renew_fraction": 1.5}, "between 0 and 1"),
        ({"serving_lifetime": dt.timedelta(0)}, "positive"),
        ({"propagation": dt.timedelta(seconds=-1)}, "not be negative"),
        ({"ca_lifetime": dt.timedelta(minutes=2), "propagation": dt.timedelta(minutes=1)}, "too short"),
    ],
)
def test_bad_policies(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Policy(**kwargs)


# Clock steps from a second to 8 hours: enough steps to cross several CA renewals (2 days).
STEP = st.sampled_from([1, 30, 61, 600, 3600, 4 * 3600, 8 * 3600]) | st.integers(
    min_value=0, max_value=8 * 3600
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(STEP, st.booleans()), min_size=20, max_size=80))
def test_any_schedule_keeps_the_signer_in_the_bundle(steps: list[tuple[int, bool]]) -> None:
    """Whatever the clock does and whether publishing keeps up, every state the planner
    produces trusts the CA that signed its serving certificate, and a switch to a new
    CA only happens once the bundle holding it has been published."""
    now = T0
    state = CertState()
    published: list = []
    for seconds, publish_ok in steps:
        now += dt.timedelta(seconds=seconds)
        decision = plan(state, bundle.same(published, state.bundle), NAMES, POLICY, now)
        if decision.action == PUBLISH and publish_ok:
            published = list(state.bundle)
            state = state.evolve(bundle_changed_at=now)
        elif decision.action == WRITE:
            before = state.ca
            state = round_trip(decision.state)
            if (
                before is not None
                and state.ca is not None
                and state.ca.cert != before.cert
                and bundle.is_valid_at(before.cert, now)
            ):
                assert bundle.contains(published, state.ca.cert), (
                    "switched to a CA the webhooks do not trust yet"
                )
        if state.serving is not None:
            assert state.ca is not None
            assert bundle.issued_by_any(state.serving.cert, [state.ca.cert])
            assert bundle.contains(state.bundle, state.ca.cert)
