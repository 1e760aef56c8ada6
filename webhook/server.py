"""The admission server: a Starlette app built from handler objects, served by uvicorn over TLS.

    POST /mutate, /validate   AdmissionReview v1 in, AdmissionReview out (admission.py)
    GET  /healthz             the process answers
    GET  /readyz              200 once the catalog and namespace views are usable, else 503
    GET  /metrics             Prometheus text

The server owns everything around the handlers: content type, a capped and time-bounded
body read, envelope parsing, UID echo, the namespace view's fetch of a name it has not
seen, and metrics. A request it cannot understand gets a 400 with a one-line reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from common.jsonio import MAX_BODY_BYTES
from webhook.admission import AdmissionHandler, Answer, BadReview, allow, answer, bad_request, parse_review
from webhook.metrics import CONTENT_TYPE, Metrics
from webhook.namespaces import Namespaces
from webhook.tls import CertReloader

log = logging.getLogger(__name__)

BODY_SECONDS: Final = 10.0
JSON: Final = "application/json"
_JSON_BYTES: Final = JSON.encode()


def allow_all(request: dict[str, Any]) -> dict[str, Any]:
    """A handler that allows everything and changes nothing (tests, benchmarks, a policy-free server)."""
    return allow()


def create_app(
    mutator: AdmissionHandler,
    validator: AdmissionHandler,
    *,
    namespaces: Namespaces | None = None,
    metrics: Metrics | None = None,
    readiness: Callable[[], str | None] | None = None,
    routes: Sequence[BaseRoute] = (),
    max_body: int = MAX_BODY_BYTES,
    body_seconds: float = BODY_SECONDS,
) -> Starlette:
    """The app; `readiness` returns None when ready, else why not."""
    metrics = metrics or Metrics()

    def admission(name: str, handler: AdmissionHandler) -> Route:
        endpoint = AdmissionEndpoint(
            name, handler, metrics, namespaces=namespaces, max_body=max_body, body_seconds=body_seconds
        )
        return Route(f"/{name}", endpoint, methods=["POST"], name=name)

    async def healthz(request: Request) -> Response:
        return Response(b"ok\n", media_type="text/plain")

    async def readyz(request: Request) -> Response:
        problem = readiness() if readiness is not None else None
        if problem is None and namespaces is not None and not namespaces.ready():
            problem = "the namespace view has not synced yet"
        if problem:
            return Response(f"not ready: {problem}\n".encode(), status_code=503, media_type="text/plain")
        return Response(b"ok\n", media_type="text/plain")

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    app = Starlette(
        routes=[
            admission("mutate", mutator),
            admission("validate", validator),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            *routes,
        ]
    )
    app.state.metrics = metrics
    return app


class AdmissionEndpoint:
    """One admission path as a plain ASGI app: the hot path skips Request/Response objects."""

    def __init__(
        self,
        name: str,
        handler: AdmissionHandler,
        metrics: Metrics,
        *,
        namespaces: Namespaces | None,
        max_body: int,
        body_seconds: float,
    ) -> None:
        self.name = name
        self.handler = handler
        self.metrics = metrics
        self.namespaces = namespaces
        self.max_body = max_body
        self.body_seconds = body_seconds
        self._cut: set[asyncio.Task[Any]] = set()  # body reads cancelled for taking too long
        self._loops = threading.local()  # .loop: the event loop last seen serving in this thread

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        result = await self._admit(scope, receive)
        await send(
            {
                "type": "http.response.start",
                "status": result.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(result.body)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": result.body})
        self.metrics.observe(self.name, time.perf_counter() - started, result.outcome, result.error_kind)

    async def _admit(self, scope: Scope, receive: Receive) -> Answer:
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"")
        if content_type != _JSON_BYTES and content_type.partition(b";")[0].strip().lower() != _JSON_BYTES:
            shown = content_type.decode("latin-1")
            return bad_request(f"content type must be {JSON}, got {shown or 'none'!r}", "content_type")
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body:
            return bad_request(
                f"body is {int(declared)} bytes, over the limit of {self.max_body}", "too_large"
            )
        # One timer handle per request rather than asyncio.timeout, and no asyncio call that finds
        # the running loop: each of those costs a getpid() system call (CPython 3.11), which
        # sandboxed kernels make dear. The loop is remembered per thread (see _current_task).
        loop, task = self._current_task()
        timer = loop.call_later(self.body_seconds, self._cut_off, task)
        try:
            body = await self._read_body(receive)
        except BadReview as exc:
            return bad_request(str(exc), exc.kind)
        except asyncio.CancelledError:
            if task not in self._cut:
                raise  # cancelled by someone else (shutdown): not ours to swallow
            self._cut.discard(task)
            task.uncancel()
            return bad_request(
                f"the request body did not arrive within {self.body_seconds:g}s", "body_timeout"
            )
        finally:
            timer.cancel()
        try:
            request = parse_review(body, max_bytes=self.max_body)
        except BadReview as exc:
            return bad_request(str(exc), exc.kind)
        namespace = request.get("namespace")
        namespaces = self.namespaces
        if (
            namespaces is not None
            and isinstance(namespace, str)
            and namespace
            and namespaces.get(namespace) is None
        ):
            await namespaces.ensure(namespace)  # only for a name not known yet: no coroutine per request
        return answer(request, self.handler)

    def _current_task(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]:
        """The running loop and task, asking asyncio for the running loop only when it changed.

        The loop remembered for this thread is the running one exactly when it has a current
        task: while this thread runs a task, only its running loop has one (assuming a loop is
        not handed to another thread meanwhile; asyncio.run and uvicorn never do that).
        """
        loop: asyncio.AbstractEventLoop | None = getattr(self._loops, "loop", None)
        task = asyncio.current_task(loop) if loop is not None else None
        if loop is None or task is None:
            loop = self._loops.loop = asyncio.get_running_loop()
            task = asyncio.current_task(loop)
            assert task is not None  # an ASGI app always runs in a task
        return loop, task

    def _cut_off(self, task: asyncio.Task[Any]) -> None:
        """The body read of `task` took too long: cancel it, noting that the cancel is ours."""
        self._cut.add(task)
        task.cancel()

    async def _read_body(self, receive: Receive) -> bytes:
        """The body, refused as soon as it is over the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadReview("the client went away before sending the whole body", "disconnect")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise BadReview(f"body is over the limit of {self.max_body} bytes", "too_large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def build_server(
    app: Starlette, *, host: str, port: int, tls: CertReloader, log_level: str = "info"
) -> uvicorn.Server:
    """A uvicorn server for `app` whose TLS context is `tls.context` (reloaded in place)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_context_factory=lambda config, default: tls.context,
        http="auto",  # httptools when installed
        lifespan="off",
        access_log=False,
        server_header=False,
        proxy_headers=False,  # the apiserver connects directly; no forwarded headers to trust
        log_level=log_level,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=10,
    )
    return uvicorn.Server(config)


async def serve(
    server: uvicorn.Server,
    tls: CertReloader,
    *,
    reload_seconds: float = 2.0,
    sockets: list[socket.socket] | None = None,
) -> None:
    """Run `server` until it is told to stop, watching the certificate files meanwhile.

    `sockets`: listen on these already bound sockets (workers sharing one port) instead.
    """
    watcher = asyncio.create_task(tls.watch(reload_seconds), name="remora-cert-reload")
    try:
        await server.serve(sockets=sockets)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


def run(
    server: uvicorn.Server,
    tls: CertReloader,
    *,
    reload_seconds: float = 2.0,
    sockets: list[socket.socket] | None = None,
) -> None:
    """Serve on uvloop when it is installed (about 3x the requests per second of asyncio's loop)."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up

        loop_factory = uvloop.new_event_loop
    except ImportError:
        log.info("uvloop is not installed; serving on asyncio's default loop")
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(server, tls, reload_seconds=reload_seconds, sockets=sockets))
