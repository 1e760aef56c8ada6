"""Where the catalog in force comes from, and how a change reaches it without a restart.

`CatalogStore` holds the catalog in force. Watchers offer it new text; the store swaps
only a catalog that loads cleanly, so a bad edit is refused with a clear message (logged,
and kept in `last_error`) while the last good catalog stays in force.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any, Final

from common.names import CATALOG_KEY
from webhook.catalog.catalog import Catalog, CatalogError, parse_catalog
from webhook.watch import ListWatch

log = logging.getLogger(__name__)

POLL_SECONDS: Final = 2.0


class CatalogStore:
    def __init__(self, initial: Catalog, on_result: Callable[[bool], None] | None = None) -> None:
        self._current = initial
        self.last_error: str | None = None
        self._on_result = on_result

    @property
    def current(self) -> Catalog:
        return self._current

    def offer(self, text: str | bytes, source: str) -> bool:
        """Put the catalog in `text` in force if it is valid; otherwise keep the one in force."""
        try:
            catalog = parse_catalog(text, source)
        except CatalogError as exc:
            self.last_error = str(exc)
            log.error(
                "catalog refused, keeping %s (hash %s): %s", self._current.source, self._current.hash, exc
            )
            self._report(ok=False)
            return False
        previous, self._current, self.last_error = self._current, catalog, None
        if previous.hash != catalog.hash:
            log.info("catalog in force: %s (hash %s, was %s)", source, catalog.hash, previous.hash)
        self._report(ok=True)
        return True

    def _report(self, *, ok: bool) -> None:
        if self._on_result is not None:
            self._on_result(ok)


def load_file(path: str) -> Catalog:
    """The catalog in a file, or CatalogError naming the file and the problem."""
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the catalog: {exc.strerror or exc}") from None
    return parse_catalog(text, path)


class FileWatcher:
    """Polls a catalog file (a mounted ConfigMap swaps a symlink, so stat the path, not an inode)."""

    def __init__(self, path: str, store: CatalogStore, *, interval: float = POLL_SECONDS) -> None:
        self.path = path
        self.store = store
        self.interval = interval
        self._seen = self._signature()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="remora-catalog-file", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def check(self) -> None:
        """Offer the file to the store if it changed since the last look."""
        signature = self._signature()
        if signature == self._seen or signature is None:
            return
        self._seen = signature
        try:
            with open(self.path, "rb") as handle:
                text = handle.read()
        except OSError as exc:
            log.error("catalog file %s unreadable, keeping the catalog in force: %s", self.path, exc)
            return
        self.store.offer(text, self.path)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)


class ConfigMapWatcher:
    """Follows one ConfigMap (`namespace/name`) and offers its catalog.yaml to the store."""

    def __init__(self, api: Any, namespace: str, name: str, store: CatalogStore) -> None:
        self.source = f"ConfigMap {namespace}/{name}"
        self.store = store
        self._last: str | None = None
        self._watch = ListWatch(
            api,
            f"/api/v1/namespaces/{namespace}/configmaps",
            self,
            query={"fieldSelector": f"metadata.name={name}"},
            name="catalog-watch",
        )

    @property
    def synced(self) -> threading.Event:
        return self._watch.synced

    def start(self) -> None:
        self._watch.start()

    def stop(self) -> None:
        self._watch.stop()

    def replace(self, items: list[dict[str, Any]]) -> None:
        if items:
            self.apply("ADDED", items[0])
        else:
            log.warning("%s not found; keeping %s", self.source, self.store.current.source)

    def apply(self, event_type: str, obj: dict[str, Any]) -> None:
        if event_type == "DELETED":
            log.warning("%s deleted; keeping %s", self.source, self.store.current.source)
            self._last = None
            return
        text = (obj.get("data") or {}).get(CATALOG_KEY)
        if not isinstance(text, str):
            self.store.last_error = f"{self.source}: has no key {CATALOG_KEY!r}"
            log.error("%s; keeping %s", self.store.last_error, self.store.current.source)
            return
        if text != self._last:
            self._last = text
            self.store.offer(text, self.source)
