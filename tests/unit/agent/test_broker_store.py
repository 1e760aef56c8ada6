"""The SQLite store on its own: group commit, and no item leased twice at once under concurrency."""

from __future__ import annotations

import threading
from collections import Counter
from functools import partial
from pathlib import Path

from conftest import LiveBroker

from agent import protocol
from agent.broker.errors import Problem
from agent.broker.store import Store
from agent.client import BrokerClient


def test_a_refused_call_in_a_group_leaves_the_others(tmp_path: Path) -> None:
    store = Store(tmp_path / "q.db")
    store.enqueue("taken", "build", {"v": 1})
    results = store.run_group(
        [
            partial(store.enqueue, "a", "build", {}),
            partial(store.enqueue, "taken", "build", {"v": 2}),  # id conflict: refused
            partial(store.enqueue, "b", "test", {}),
        ]
    )
    assert isinstance(results[1], Problem) and results[1].status == 409
    assert [type(r).__name__ for r in results] == ["tuple", "Problem", "tuple"]
    store.close()
    reopened = Store(tmp_path / "q.db")
    items, _ = reopened.list_items()
    assert sorted(i.id for i in items) == ["a", "b", "taken"]
    assert reopened.get("taken").parameters == {"v": 1}


def test_concurrent_agents_never_hold_the_same_item(live_broker: LiveBroker, client: BrokerClient) -> None:
    for i in range(120):
        client.enqueue(f"i{i}", "build", {})
    seen: list[str] = []
    lock = threading.Lock()

    def agent(name: str) -> None:
        with live_broker.client() as mine:
            while batch := mine.claim(name, ["build"], 3, 60).items:
                for item in batch:
                    assert item.lease and item.lease.token
                    mine.report(item.id, item.lease.token, "succeeded", {"by": name})
                with lock:
                    seen.extend(i.id for i in batch)

    threads = [threading.Thread(target=agent, args=(f"agent-{n}",)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert Counter(seen) == Counter(f"i{i}" for i in range(120))
    assert client.stats() == {protocol.QUEUED: 0, protocol.CLAIMED: 0, protocol.DONE: 120}
    assert all(i.attempts == 1 for i in client.list_items(limit=1000)[0])
