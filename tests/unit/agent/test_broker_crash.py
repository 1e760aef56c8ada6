"""kill -9 of a real `remora broker` process loses no acknowledged enqueue, claim or outcome."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent import protocol
from agent.client import BrokerClient, BrokerError
from localcluster.ports import free_port

TOKEN = "crash-test-token"


@contextmanager
def broker_process(db: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "REMORA_BROKER_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "remora", "broker", "--db", str(db), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_healthy(port, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


def wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("broker did not listen in time")


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    enqueued: list[str] = []
    claimed: dict[str, str] = {}
    reported: dict[str, str] = {}
    stop = threading.Event()

    def work(worker: int) -> None:
        """Enqueue, claim and report as fast as possible; record only what the broker acknowledged.

        Several workers at once, so writes share group commits when the broker dies.
        """
        with BrokerClient(url, TOKEN, timeout=5) as client:
            i = 0
            while not stop.is_set():
                try:
                    item_id = f"item-{worker}-{i}"
                    client.enqueue(item_id, "build", {"n": i})
                    enqueued.append(item_id)
                    for item in client.claim(f"crash-agent-{worker}", ["build"], 1, 600).items:
                        assert item.lease and item.lease.token
                        claimed[item.id] = item.lease.token
                        if i % 2 == 0:
                            outcome = "succeeded" if i % 4 == 0 else "failed"
                            client.report(item.id, item.lease.token, outcome, {"n": i})
                            reported[item.id] = outcome
                    i += 1
                except BrokerError:
                    return  # the broker died under us: what was acknowledged so far is the record

    with broker_process(db, port) as proc:
        workers = [threading.Thread(target=work, args=(n,)) for n in range(3)]
        for worker in workers:
            worker.start()
        while len(reported) < 60:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        for worker in workers:
            worker.join(timeout=20)
        stop.set()
    assert len(enqueued) >= 40

    with broker_process(db, port), BrokerClient(url, TOKEN) as client:
        items = {}
        cursor = None
        while True:
            page, cursor = client.list_items(limit=1000, after=cursor)
            items.update({i.id: i for i in page})
            if cursor is None:
                break
        for item_id in enqueued:
            assert item_id in items, f"acknowledged enqueue of {item_id} was lost"
        for item_id in claimed:
            assert items[item_id].state in (protocol.CLAIMED, protocol.DONE), item_id
            assert items[item_id].attempts == 1
        for item_id, outcome in reported.items():
            assert items[item_id].state == protocol.DONE and items[item_id].outcome == outcome, item_id
        # The restarted broker still honours the leases it handed out before the crash.
        unreported = [i for i in claimed if i not in reported]
        if unreported:
            done = client.report(unreported[0], claimed[unreported[0]], "unknown", {"after": "crash"})
            assert done.outcome == "unknown"
