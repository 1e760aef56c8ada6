"""The broker protocol end to end: the real client against the real broker on a real SQLite file."""

from __future__ import annotations

import pytest
from conftest import FakeClock, LiveBroker

from agent import protocol
from agent.client import BrokerClient, BrokerError


def test_enqueue_is_idempotent_by_id(client: BrokerClient) -> None:
    first = client.enqueue("job-1", "build", {"image": "app:1", "args": ["-v"]})
    again = client.enqueue("job-1", "build", {"args": ["-v"], "image": "app:1"})  # key order is not a change
    assert first == again
    assert first.state == protocol.QUEUED and first.attempts == 0
    assert client.list_items()[0] == [first]


def test_same_id_with_another_body_is_a_conflict_naming_it(client: BrokerClient) -> None:
    client.enqueue("job-1", "build", {"image": "app:1"})
    with pytest.raises(BrokerError) as err:
        client.enqueue("job-1", "build", {"image": "app:2"})
    assert err.value.status == 409 and err.value.code == protocol.E_ID_CONFLICT
    assert "parameters" in err.value.message
    with pytest.raises(BrokerError) as err:
        client.enqueue("job-1", "test", {"image": "app:1"})
    assert "capability" in err.value.message


def test_claim_takes_oldest_first_only_for_named_capabilities(client: BrokerClient) -> None:
    for i, cap in enumerate(["build", "test", "build", "migrate", "build"]):
        client.enqueue(f"item-{i}", cap, {})
    result = client.claim("agent-a", ["build", "migrate"], max_items=3, lease_seconds=30)
    assert [i.id for i in result.items] == ["item-0", "item-2", "item-3"]
    for item in result.items:
        assert item.state == protocol.CLAIMED and item.attempts == 1
        assert item.lease is not None and item.lease.holder == "agent-a" and item.lease.token
    assert len({i.lease.token for i in result.items if i.lease}) == 3
    assert [i.id for i in client.claim("agent-b", ["build", "migrate"], 10, 30).items] == ["item-4"]
    assert client.claim("agent-b", ["build", "migrate"], 10, 30).items == []


def test_report_finishes_the_item_and_a_retry_answers_the_same(client: BrokerClient) -> None:
    client.enqueue("x", "test", {})
    (item,) = client.claim("a", ["test"], 1, 30).items
    assert item.lease and item.lease.token
    done = client.report("x", item.lease.token, "succeeded", {"result": {"passed": 12}})
    assert done.state == protocol.DONE and done.outcome == "succeeded"
    assert done.details == {"result": {"passed": 12}} and done.finished_at
    assert client.report("x", item.lease.token, "succeeded", {"result": {"passed": 12}}) == done
    with pytest.raises(BrokerError) as err:
        client.report("x", item.lease.token, "failed", {})
    assert err.value.status == 409 and err.value.code == protocol.E_OUTCOME_CONFLICT


def test_an_expired_lease_makes_the_item_claimable_again(
    live_broker: LiveBroker, client: BrokerClient
) -> None:
    client.enqueue("x", "build", {})
    (first,) = client.claim("a", ["build"], 1, 10).items
    assert first.lease and first.lease.token
    live_broker.clock.advance(9)
    assert client.claim("b", ["build"], 1, 10).items == []
    live_broker.clock.advance(2)
    assert client.get("x").state == protocol.QUEUED
    with pytest.raises(BrokerError) as err:
        client.extend("x", first.lease.token, 10)
    assert err.value.code == protocol.E_LEASE_EXPIRED and err.value.lease_lost
    (second,) = client.claim("b", ["build"], 1, 10).items
    assert second.attempts == 2 and second.lease and second.lease.holder == "b"
    with pytest.raises(BrokerError) as err:
        client.report("x", first.lease.token, "succeeded", {})
    assert err.value.status == 409 and err.value.code == protocol.E_LEASE_MISMATCH


def test_extend_pushes_the_expiry_out(live_broker: LiveBroker, client: BrokerClient) -> None:
    client.enqueue("x", "build", {})
    (item,) = client.claim("a", ["build"], 1, 10).items
    assert item.lease and item.lease.token
    for _ in range(5):
        live_broker.clock.advance(8)
        extended = client.extend("x", item.lease.token, 10)
        assert extended.state == protocol.CLAIMED and not extended.cancel_requested
    assert client.claim("b", ["build"], 1, 10).items == []
    assert client.report("x", item.lease.token, "failed", {"reason": "exit 1"}).outcome == "failed"


def test_release_moves_work_at_once(client: BrokerClient) -> None:
    client.enqueue("x", "build", {})
    (item,) = client.claim("a", ["build"], 1, 600).items
    assert item.lease and item.lease.token
    released = client.release("x", item.lease.token)
    assert released.state == protocol.QUEUED and released.lease is None
    (again,) = client.claim("b", ["build"], 1, 600).items
    assert again.attempts == 2
    with pytest.raises(BrokerError) as err:
        client.release("x", item.lease.token)
    assert err.value.code == protocol.E_LEASE_MISMATCH


def test_cancel_of_queued_work_ends_it(client: BrokerClient) -> None:
    client.enqueue("x", "build", {})
    cancelled = client.cancel("x", "no longer needed")
    assert cancelled.state == protocol.DONE and cancelled.outcome == protocol.CANCELLED
    assert cancelled.cancel_reason == "no longer needed"
    assert client.claim("a", ["build"], 1, 10).items == []
    assert client.cancel("x") == cancelled  # idempotent


def test_cancel_of_held_work_reaches_the_holder(live_broker: LiveBroker, client: BrokerClient) -> None:
    client.enqueue("x", "build", {})
    (item,) = client.claim("a", ["build"], 1, 10).items
    assert item.lease and item.lease.token
    assert client.cancel("x", "user asked").cancel_requested
    assert client.claim("a", ["build"], 1, 10).cancel_requested == ["x"]
    assert client.claim("other", ["build"], 1, 10).cancel_requested == []
    assert client.extend("x", item.lease.token, 10).cancel_requested
    done = client.report("x", item.lease.token, "failed", {"message": "cancelled"})
    assert done.outcome == "failed"


def test_a_cancelled_item_whose_lease_lapses_ends_cancelled(
    live_broker: LiveBroker, client: BrokerClient
) -> None:
    client.enqueue("x", "build", {})
    client.claim("a", ["build"], 1, 10)
    client.cancel("x")
    live_broker.clock.advance(11)
    assert client.claim("b", ["build"], 1, 10).items == []
    final = client.get("x")
    assert final.state == protocol.DONE and final.outcome == protocol.CANCELLED


def test_a_cancelled_item_released_by_its_holder_ends_cancelled(client: BrokerClient) -> None:
    client.enqueue("x", "build", {})
    (item,) = client.claim("a", ["build"], 1, 10).items
    assert item.lease and item.lease.token
    client.cancel("x")
    released = client.release("x", item.lease.token)
    assert released.state == protocol.DONE and released.outcome == protocol.CANCELLED
    assert client.claim("b", ["build"], 1, 10).items == []


def test_list_filters_and_pages(client: BrokerClient) -> None:
    for i in range(7):
        client.enqueue(f"i{i}", "build" if i % 2 == 0 else "test", {"n": i})
    client.claim("a", ["test"], 1, 30)
    builds, cursor = client.list_items(capability="build", limit=3)
    assert [i.id for i in builds] == ["i0", "i2", "i4"] and cursor is not None
    rest, end = client.list_items(capability="build", limit=3, after=cursor)
    assert [i.id for i in rest] == ["i6"] and end is None
    held, _ = client.list_items(state="claimed", agent="a")
    assert [i.id for i in held] == ["i1"]
    assert client.stats() == {"queued": 6, "claimed": 1, "done": 0}


def test_unknown_ids_are_404_naming_the_id(client: BrokerClient) -> None:
    for call in (
        lambda: client.get("nope"),
        lambda: client.extend("nope", "t", 10),
        lambda: client.report("nope", "t", "succeeded", {}),
        lambda: client.release("nope", "t"),
        lambda: client.cancel("nope"),
    ):
        with pytest.raises(BrokerError) as err:
            call()
        assert err.value.status == 404 and err.value.code == protocol.E_NOT_FOUND
        assert "'nope'" in err.value.message


def test_wrong_lease_token_is_refused(client: BrokerClient) -> None:
    client.enqueue("x", "build", {})
    client.claim("a", ["build"], 1, 30)
    with pytest.raises(BrokerError) as err:
        client.report("x", "not-the-token", "succeeded", {})
    assert err.value.status == 409 and err.value.code == protocol.E_LEASE_MISMATCH
    assert client.get("x").state == protocol.CLAIMED


def test_wrong_bearer_token_is_401(live_broker: LiveBroker) -> None:
    with BrokerClient(live_broker.url, "wrong") as bad, pytest.raises(BrokerError) as err:
        bad.list_items()
    assert err.value.status == 401 and err.value.code == protocol.E_UNAUTHORIZED


def test_timestamps_and_attempts_are_recorded(live_broker: LiveBroker, client: BrokerClient) -> None:
    clock: FakeClock = live_broker.clock
    client.enqueue("x", "build", {})
    clock.advance(5)
    (item,) = client.claim("a", ["build"], 1, 30).items
    assert item.created_at != item.claimed_at
    assert item.lease and item.lease.expires_at.endswith("Z")
