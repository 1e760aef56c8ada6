"""The reference broker's HTTP face: routes of agent/openapi.yaml over a `Store`.

Every SQLite call runs on one dedicated thread with group commit (committer.py), never on
the event loop. Every answer that is not a success is {"error": {"code", "message"}},
including unknown routes, wrong methods and (should one ever happen) an unexpected failure.
"""

from __future__ import annotations

import hmac
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agent import protocol
from agent.broker import validation
from agent.broker.committer import GroupCommitter
from agent.broker.errors import Problem, error_body
from agent.broker.store import Item, Store

log = logging.getLogger("remora.broker")
T = TypeVar("T")


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class Broker:
    """The routes, bound to one store, one bearer token and one database thread."""

    def __init__(self, store: Store, token: str) -> None:
        if not token:
            raise ValueError("the broker needs a non-empty bearer token")
        self.store = store
        self._token = token.encode()
        self._committer = GroupCommitter(store)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await self._committer.call(fn, *args)
        except sqlite3.Error as exc:
            # Locked past the busy timeout, disk full, I/O error: nothing was acknowledged; retry later.
            log.error("storage failure: %s", exc)
            raise Problem(
                503, protocol.E_UNAVAILABLE, f"the queue's storage failed ({exc}); retry later"
            ) from None

    def close(self) -> None:
        self._committer.close()
        self.store.close()

    # -- request plumbing ------------------------------------------------------------------------

    def _authorize(self, request: Request) -> None:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        # compare_digest takes the same time whatever the prefix in common: no token timing oracle.
        if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode(), self._token):
            raise Problem(
                401,
                protocol.E_UNAUTHORIZED,
                "missing or wrong bearer token (send 'Authorization: Bearer <token>')",
                headers={"WWW-Authenticate": 'Bearer realm="remora-broker"'},
            )

    async def _body(self, request: Request) -> dict[str, Any]:
        limit = protocol.MAX_REQUEST_BYTES
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise _too_large(limit) if declared.isdigit() else validation.invalid("bad Content-Length header")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        return validation.json_object(b"".join(chunks))

    def routes(self) -> list[Route]:
        p = protocol.API_PREFIX

        def guarded(fn: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                self._authorize(request)
                return await fn(request)

            return endpoint

        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route(f"{p}/stats", guarded(self.stats), methods=["GET"]),
            Route(f"{p}/items", guarded(self.list_items), methods=["GET"]),
            Route(f"{p}/items/{{item_id}}", guarded(self.enqueue), methods=["PUT"]),
            Route(f"{p}/items/{{item_id}}", guarded(self.get_item), methods=["GET"]),
            Route(f"{p}/claims", guarded(self.claim), methods=["POST"]),
            Route(f"{p}/items/{{item_id}}/extend", guarded(self.extend), methods=["POST"]),
            Route(f"{p}/items/{{item_id}}/outcome", guarded(self.report), methods=["POST"]),
            Route(f"{p}/items/{{item_id}}/release", guarded(self.release), methods=["POST"]),
            Route(f"{p}/items/{{item_id}}/cancel", guarded(self.cancel), methods=["POST"]),
        ]

    # -- endpoints -------------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def stats(self, request: Request) -> Response:
        return JSONResponse({"items": await self._db(self.store.counts)})

    async def list_items(self, request: Request) -> Response:
        q = validation.list_query(request.query_params)
        items, cursor = await self._db(
            lambda: self.store.list_items(
                state=q.state,
                capability=q.capability,
                holder=q.agent,
                outcome=q.outcome,
                after=q.after,
                limit=q.limit,
            )
        )
        return JSONResponse(
            {"items": [i.to_json() for i in items], "next": None if cursor is None else str(cursor)}
        )

    async def enqueue(self, request: Request) -> Response:
        item_id = validation.item_id(request.path_params["item_id"])
        body = validation.enqueue(await self._body(request))
        item, created = await self._db(self.store.enqueue, item_id, body.capability, body.parameters)
        return _item_response(item, status=201 if created else 200)

    async def get_item(self, request: Request) -> Response:
        item_id = validation.item_id(request.path_params["item_id"])
        return _item_response(await self._db(self.store.get, item_id))

    async def claim(self, request: Request) -> Response:
        body = validation.claim(await self._body(request))
        claimed, cancelled = await self._db(
            self.store.claim, body.agent, body.capabilities, body.max_items, body.lease_seconds
        )
        return JSONResponse(
            {
                "items": [i.to_json(with_token=True) for i in claimed],
                "cancel_requested": [i.id for i in cancelled],
            }
        )

    async def extend(self, request: Request) -> Response:
        item_id = validation.item_id(request.path_params["item_id"])
        body = validation.extend(await self._body(request))
        return _item_response(await self._db(self.store.extend, item_id, body.token, body.lease_seconds))

    async def report(self, request: Request) -> Response:
        item_id = validation.item_id(request.path_params["item_id"])
        body = validation.report(await self._body(request))
        return _item_response(
            await self._db(self.store.report, item_id, body.token, body.outcome, body.details)
        )

    async def release(self, request: Request) -> Response:
        item_id = validation.item_id(request.path_params["item_id"])
        body = validation.release(await self._body(request))
        return _item_response(await self._db(self.store.release, item_id, body.token))

    async def cancel(self, request: Request) -> Response:
        item_id = validation.item_id(request.path_params["item_id"])
        body = validation.cancel(await self._body(request))
        return _item_response(await self._db(self.store.cancel, item_id, body.reason))


def create_app(store: Store, token: str) -> Starlette:
    broker = Broker(store, token)
    app = Starlette(
        routes=broker.routes(),
        exception_handlers={
            Problem: _problem_response,
            HTTPException: _http_exception_response,
            Exception: _unexpected_response,
        },
        lifespan=lambda app: _closing(broker),
    )
    app.state.broker = broker
    return app


@asynccontextmanager
async def _closing(broker: Broker) -> AsyncIterator[None]:
    yield
    broker.close()


def _item_response(item: Item, status: int = 200) -> Response:
    return JSONResponse({"item": item.to_json()}, status_code=status)


def _too_large(limit: int) -> Problem:
    return Problem(413, protocol.E_TOO_LARGE, f"request body is over the limit of {limit} bytes")


async def _problem_response(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, Problem):
        raise exc
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _http_exception_response(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):
        raise exc
    if exc.status_code == 404:
        code, message = protocol.E_NOT_FOUND, f"no route {request.url.path[:200]!r}"
    elif exc.status_code == 405:
        code, message = (
            protocol.E_METHOD,
            f"method {request.method} is not allowed on {request.url.path[:200]!r}",
        )
    else:
        code, message = protocol.E_INVALID, str(exc.detail)
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)


async def _unexpected_response(request: Request, exc: Exception) -> Response:
    log.error("unexpected failure on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        error_body(protocol.E_INTERNAL, "internal error; the broker logged it"), status_code=500
    )
