"""Kubernetes Events (events.k8s.io/v1) on the resources an operator reconciles.

Recording never blocks or fails a reconcile: events go through a bounded queue to one
background thread; when the queue is full or a write fails the event is dropped and counted.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from operators.runtime.client import Client

log = logging.getLogger("remora.operators.events")

NOTE_LIMIT = 1024  # the API rejects notes over 1 kB
QUEUE_LIMIT = 1000


def micro_time(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_body(
    obj: dict[str, Any], event_type: str, reason: str, note: str, *, controller: str, instance: str
) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "object")
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {
            # Unique per event; the name prefix keeps `kubectl get events` readable.
            "name": f"{name[:200]}.{time.time_ns():x}{os.urandom(2).hex()}",
            "namespace": meta.get("namespace"),
        },
        "eventTime": micro_time(),
        "reportingController": controller,
        "reportingInstance": instance[:128],
        "action": reason,
        "reason": reason,
        "type": event_type,
        "note": note[:NOTE_LIMIT],
        "regarding": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
    }


class EventRecorder:
    def __init__(
        self,
        client: Client,
        *,
        controller: str,
        instance: str,
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.controller = controller
        self.instance = instance
        self._on_drop = on_drop
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(QUEUE_LIMIT)
        self._thread: threading.Thread | None = None

    def record(self, obj: dict[str, Any], event_type: str, reason: str, note: str) -> None:
        body = event_body(obj, event_type, reason, note, controller=self.controller, instance=self.instance)
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            self._dropped("event queue full")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued (within `timeout`), then stop."""
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            body = self._queue.get()
            if body is None:
                return
            namespace = body["metadata"]["namespace"]
            try:
                self.client.create(f"/apis/events.k8s.io/v1/namespaces/{namespace}/events", body)
            except Exception as exc:
                self._dropped(f"{type(exc).__name__}: {exc}")

    def _dropped(self, why: str) -> None:
        log.debug("event dropped: %s", why)
        if self._on_drop is not None:
            self._on_drop()
