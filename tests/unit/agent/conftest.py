"""A real broker on loopback (uvicorn in a thread, a real SQLite file) and a clock tests can move."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from agent.broker.app import create_app
from agent.broker.store import Store
from agent.client import BrokerClient

TOKEN = "test-token-0123456789"


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class LiveBroker:
    url: str
    token: str
    clock: FakeClock
    db_path: Path

    def client(self) -> BrokerClient:
        return BrokerClient(self.url, self.token)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@contextmanager
def serve_broker(db_path: Path, clock: FakeClock, *, busy_timeout: float = 10.0) -> Iterator[LiveBroker]:
    app = create_app(Store(db_path, clock=clock, busy_timeout=busy_timeout), TOKEN)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("broker did not start")
        time.sleep(0.01)
    try:
        yield LiveBroker(f"http://127.0.0.1:{port}", TOKEN, clock, db_path)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def live_broker(tmp_path: Path, clock: FakeClock) -> Iterator[LiveBroker]:
    with serve_broker(tmp_path / "broker.db", clock) as broker:
        yield broker


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBroker]:
    """One broker for a module of tests that only send requests and read answers."""
    with serve_broker(tmp_path_factory.mktemp("broker") / "broker.db", FakeClock()) as broker:
        yield broker


@pytest.fixture
def client(live_broker: LiveBroker) -> Iterator[BrokerClient]:
    with live_broker.client() as c:
        yield c
