"""`remora broker`: serve the reference work broker, or talk to one (enqueue, get, list, cancel, stats)."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from common.jsonio import BadJSON, loads_bounded
from remora.cli import UsageError

TOKEN_ENV = "REMORA_BROKER_TOKEN"  # noqa: S105 - the variable's name, not a secret
DEFAULT_URL = "http://127.0.0.1:8080"


def register(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Without an ACTION, serve the broker until SIGTERM (protocol: agent/openapi.yaml). "
        "With one, talk to a running broker at --url."
    )
    parser.add_argument(
        "--db", default="remora-broker.db", help="SQLite file of the queue (created if missing)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    _token_option(parser)
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = False

    enqueue = sub.add_parser("enqueue", help="add a work item (idempotent by id)")
    enqueue.add_argument("id", help="the item id, chosen by you: the same id is the same item")
    enqueue.add_argument("--capability", required=True, help="build, test or migrate")
    enqueue.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="a string parameter (repeatable)"
    )
    enqueue.add_argument("--parameters", metavar="JSON", help="all parameters as one JSON object")

    get = sub.add_parser("get", help="show one item")
    get.add_argument("id")

    listing = sub.add_parser("list", help="list items, oldest first")
    listing.add_argument("--state", choices=("queued", "claimed", "done"))
    listing.add_argument("--capability")
    listing.add_argument("--agent", help="items held by this agent")
    listing.add_argument("--outcome", choices=("succeeded", "failed", "unknown", "cancelled"))
    listing.add_argument("--limit", type=int, default=100)

    cancel = sub.add_parser("cancel", help="cancel an item (its agent passes it on as spec.cancel)")
    cancel.add_argument("id")
    cancel.add_argument("--reason", default="")

    stats = sub.add_parser("stats", help="count items per state")

    for client_parser in (enqueue, get, listing, cancel, stats):
        client_parser.add_argument("--url", default=DEFAULT_URL, help=f"broker URL (default {DEFAULT_URL})")
        _token_option(client_parser)


def _token_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--token-file",
        help=f"file holding the bearer token (default: ${TOKEN_ENV})",
        default=argparse.SUPPRESS,
    )


def read_token(args: argparse.Namespace) -> str:
    path = getattr(args, "token_file", None)
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read token file {path}: {exc}") from None
        if not token:
            raise UsageError(f"token file {path} is empty")
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(f"no bearer token: pass --token-file or set {TOKEN_ENV}")
    return token


def run(args: argparse.Namespace) -> int:
    token = read_token(args)
    if args.action is None:
        return _serve(args, token)
    return _client_action(args, token)


def _serve(args: argparse.Namespace, token: str) -> int:
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be 1-65535, not {args.port}")
    db = Path(args.db)
    if db.parent and not db.parent.is_dir():
        raise UsageError(f"directory of --db does not exist: {db.parent}")
    from agent.broker.server import serve

    try:
        serve(db, token, host=args.host, port=args.port)
    except sqlite3.Error as exc:
        raise UsageError(f"cannot use --db {db} as the queue: {exc}") from None
    return 0


def _client_action(args: argparse.Namespace, token: str) -> int:
    from agent.client import BrokerClient, BrokerError

    try:
        with BrokerClient(args.url, token) as client:
            result = _do(client, args)
    except BrokerError as exc:
        sys.stderr.write(f"remora broker {args.action}: {exc}\n")
        return 1
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def _do(client: Any, args: argparse.Namespace) -> Any:
    if args.action == "enqueue":
        return asdict(client.enqueue(args.id, args.capability, _parameters(args)))
    if args.action == "get":
        return asdict(client.get(args.id))
    if args.action == "cancel":
        return asdict(client.cancel(args.id, args.reason))
    if args.action == "stats":
        return client.stats()
    items, cursor = client.list_items(
        state=args.state, capability=args.capability, agent=args.agent, outcome=args.outcome, limit=args.limit
    )
    return {"items": [asdict(i) for i in items], "next": cursor}


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if args.parameters:
        try:
            params = loads_bounded(args.parameters)
        except BadJSON as exc:
            raise UsageError(f"--parameters: {exc}") from None
        if not isinstance(params, dict):
            raise UsageError("--parameters must be a JSON object")
    for pair in args.param:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--param wants KEY=VALUE, not {pair!r}")
        params[key] = value
    return params
