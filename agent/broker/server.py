"""Run the reference broker under uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from agent.broker.app import create_app
from agent.broker.store import Store


def serve(db_path: str | Path, token: str, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve until SIGINT/SIGTERM; every acknowledged write is already durable in `db_path`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(Store(db_path), token)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=10,
        limit_concurrency=1000,  # beyond this many connections, a quick 503 instead of a pile-up
        server_header=False,
    )
    uvicorn.Server(config).run()
