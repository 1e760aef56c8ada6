"""The operators' view of the apiserver: plain-dict calls through `common.kube`, with a write
counter, a per-reconcile deadline and errors that say what was being done."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

from common import kube

WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_TIMEOUT = 30.0


class ReconcileTimeout(Exception):
    """The reconcile ran past its deadline; it is retried with backoff like any other error."""


class WriteCounter(Protocol):
    def __call__(self, verb: str, resource: str) -> None: ...


class Client:
    """Thread-safe: the deadline is per thread, so each worker's reconcile has its own."""

    def __init__(self, api: Any, *, on_write: WriteCounter | None = None) -> None:
        self.api = api
        self._on_write = on_write
        self._local = threading.local()

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Bound every call made by this thread inside the block to end by now + seconds."""
        self._local.deadline = time.monotonic() + seconds
        try:
            yield
        finally:
            self._local.deadline = None

    def _timeout(self, what: str) -> float:
        deadline: float | None = getattr(self._local, "deadline", None)
        if deadline is None:
            return DEFAULT_TIMEOUT
        left = deadline - time.monotonic()
        if left <= 0:
            raise ReconcileTimeout(f"reconcile deadline passed before {what}")
        return min(DEFAULT_TIMEOUT, left)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str | int | bool] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        timeout = self._timeout(f"{method} {path}")
        if method in WRITE_VERBS and self._on_write is not None:
            self._on_write(method, _resource_of(path))
        return kube.request(
            self.api, method, path, body=body, query=query, content_type=content_type, timeout=timeout
        )

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def create(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body=body)

    def delete(self, path: str, *, propagation: str = "Background", uid: str | None = None) -> Any:
        options: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": propagation,
        }
        if uid:
            options["preconditions"] = {"uid": uid}
        return self.request("DELETE", path, body=options)

    def replace(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body=body)


def _resource_of(path: str) -> str:
    """The resource a path names, for metrics: .../jobs/x -> jobs, .../brs/x/status -> brs/status."""
    parts = [p for p in path.split("?", maxsplit=1)[0].split("/") if p]
    rest = parts[parts.index("namespaces") + 2 :] if "namespaces" in parts else parts[-2:]
    if not rest:
        return "unknown"
    if len(rest) >= 3:
        return f"{rest[0]}/{rest[2]}"
    return rest[0]
