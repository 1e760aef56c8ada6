"""`remora serve` assembled: catalog, namespace view, handlers, TLS, metrics, the server."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette

from webhook.admission import AdmissionHandler
from webhook.catalog import CatalogStore, ConfigMapWatcher, FileWatcher, default_catalog, load_file
from webhook.metrics import Metrics
from webhook.mutate import Mutator
from webhook.namespaces import NamespaceCache, Namespaces, StaticNamespaces
from webhook.server import build_server, create_app, run
from webhook.tls import CertReloader
from webhook.validate import config as validation_config
from webhook.validate.handler import Validator
from webhook.validate.owners import ApiOwnerLookup

log = logging.getLogger("webhook")


class SetupError(ValueError):
    """The server cannot start as configured; one line saying why."""


@dataclass(frozen=True)
class ServeConfig:
    tls_cert: str
    tls_key: str
    port: int = 8443
    host: str = "0.0.0.0"  # noqa: S104 - a webhook serves the apiserver from outside the pod
    catalog_file: str | None = None
    catalog_configmap: str | None = None  # "namespace/name"
    kubeconfig: str | None = None
    cluster: bool = False  # follow namespaces (and the catalog ConfigMap) through the API
    native_sidecars: bool = True
    reload_seconds: float = 2.0
    log_level: str = "info"
    validation_config: str | None = None  # validation configuration file (webhook/validate/config.py)
    workers: int = 1  # server processes sharing the port


class Webhook:
    """Everything `remora serve` runs, built but not started (tests start it their own way)."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self._stoppers: list[Any] = []
        self.catalog = CatalogStore(
            self._initial_catalog(), lambda ok: self.metrics.reloaded("catalog", ok=ok)
        )
        self.api = self._api_client() if config.cluster or config.catalog_configmap else None
        self.namespaces = self._namespaces()
        self._configmap: ConfigMapWatcher | None = None
        if config.catalog_configmap:
            namespace, _, name = config.catalog_configmap.partition("/")
            self._configmap = ConfigMapWatcher(self.api, namespace, name, self.catalog)
        try:
            self.tls = CertReloader(
                config.tls_cert, config.tls_key, lambda ok: self.metrics.reloaded("certificate", ok=ok)
            )
        except ValueError as exc:
            raise SetupError(str(exc)) from None
        self.metrics.watch_tls(self.tls.context)
        self.mutator = Mutator(
            lambda: self.catalog.current,
            self.namespaces,
            native=config.native_sidecars,
            unknown_namespace_denied=isinstance(self.namespaces, NamespaceCache),
        )
        self.validator: AdmissionHandler = self._validator()
        self.app = self.build_app()

    def build_app(self) -> Starlette:
        return create_app(
            self.mutator,
            self.validator,
            namespaces=self.namespaces,
            metrics=self.metrics,
            readiness=self.readiness,
        )

    def readiness(self) -> str | None:
        if self._configmap is not None and not self._configmap.synced.is_set():
            return f"{self._configmap.source} has not been read yet"
        return None

    def start_background(self) -> None:
        if isinstance(self.namespaces, NamespaceCache):
            self.namespaces.start()
            self._stoppers.append(self.namespaces)
        if self._configmap is not None:
            self._configmap.start()
            self._stoppers.append(self._configmap)
        if self.config.catalog_file:
            watcher = FileWatcher(self.config.catalog_file, self.catalog, interval=self.config.reload_seconds)
            watcher.start()
            self._stoppers.append(watcher)

    def stop_background(self) -> None:
        for stopper in reversed(self._stoppers):
            stopper.stop()
        self._stoppers.clear()

    def serve(self) -> None:
        server = build_server(
            self.app,
            host=self.config.host,
            port=self.config.port,
            tls=self.tls,
            log_level=self.config.log_level,
        )
        if self.config.workers > 1:
            self._serve_workers(server)
        else:
            self._serve_one(server, None)

    def _serve_one(self, server: Any, sockets: list[Any] | None) -> None:
        self.start_background()
        log.info(
            "serving on https://%s:%d with %s (catalog %s), %s sidecars",
            self.config.host,
            self.config.port,
            self.catalog.current.source,
            self.catalog.current.hash,
            "native" if self.config.native_sidecars else "plain",
        )
        try:
            run(server, self.tls, reload_seconds=self.config.reload_seconds, sockets=sockets)
        finally:
            self.stop_background()

    def _serve_workers(self, server: Any) -> None:
        """Worker processes accepting on one socket bound here; the kernel spreads the connections.

        Each worker is a whole server (event loop, namespace view, reloaders), forked before any
        thread starts. Metrics are per worker. Workers get SIGTERM when this process ends.
        """
        sock = server.config.bind_socket()
        parent = os.getpid()
        children: list[int] = []
        try:
            for _ in range(self.config.workers - 1):
                pid = os.fork()
                if pid == 0:  # pragma: no cover - runs in the child
                    code = 1
                    try:
                        _die_with(parent)
                        self._serve_one(server, [sock])
                        code = 0
                    finally:
                        os._exit(code)
                children.append(pid)
            self._serve_one(server, [sock])
        finally:
            _stop_children(children)
            sock.close()

    def _initial_catalog(self) -> Any:
        if self.config.catalog_file:
            try:
                return load_file(self.config.catalog_file)
            except ValueError as exc:
                raise SetupError(str(exc)) from None
        return default_catalog()

    def _validator(self) -> Validator:
        try:
            settings = (
                validation_config.load(self.config.validation_config)
                if self.config.validation_config
                else validation_config.ValidationConfig()
            )
        except validation_config.ConfigError as exc:
            raise SetupError(str(exc)) from None
        watched = isinstance(self.namespaces, NamespaceCache)
        return Validator(
            self.namespaces,
            config=settings,
            owner_lookup=ApiOwnerLookup(self.api) if self.api is not None else None,
            # Without a namespace view there are no labels to read: apply the defaults, do not deny.
            unknown_namespace_denied=watched,
        )

    def _api_client(self) -> Any:
        from common.kube import load_api_client  # noqa: PLC0415 - the kubernetes client is heavy

        try:
            return load_api_client(self.config.kubeconfig)
        except Exception as exc:  # the client raises several types for a bad or missing config
            raise SetupError(f"cannot load the cluster configuration: {exc}") from None

    def _namespaces(self) -> Namespaces:
        if self.api is not None and self.config.cluster:
            return NamespaceCache(self.api)
        log.warning("no cluster access: namespace labels and annotations are not consulted")
        return StaticNamespaces()


def _die_with(parent: int) -> None:
    """Have the kernel send SIGTERM to this process when its parent ends (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent ended before prctl took effect
        os._exit(0)


def _stop_children(children: list[int], timeout: float = 15.0) -> None:
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    waiting = set(children)
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            waiting.discard(pid)
        time.sleep(0.05)
    for pid in waiting:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
