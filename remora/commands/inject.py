"""`remora inject -f FILE|-`: add capability sidecars to Pods and pod templates, offline.

Prints the manifests with sidecars injected as YAML. Exits 0 on success, 1 when a pod asks
for a capability it may not have (the reasons on stderr), 2 when the input cannot be read.
"""

from __future__ import annotations

import argparse
import sys

from remora.cli import UsageError


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--filename",
        required=True,
        metavar="FILE",
        help="manifests: YAML or JSON, several documents and Lists allowed; - for stdin",
    )
    parser.add_argument(
        "--namespace-allowed",
        metavar="CAPS",
        help="stand in for the namespace's remora.dev/allowed-capabilities annotation, e.g. build,test",
    )
    parser.add_argument("--catalog", metavar="FILE", help="capability catalog (default: the built-in one)")
    parser.add_argument(
        "--plain-containers",
        action="store_true",
        help="inject sidecars as regular containers (clusters before Kubernetes 1.29)",
    )


def run(args: argparse.Namespace) -> int:
    from common.yamlio import dump_documents
    from webhook.catalog import CatalogError, default_catalog, load_file
    from webhook.mutate import offline

    try:
        catalog = load_file(args.catalog) if args.catalog else default_catalog()
    except CatalogError as exc:
        raise UsageError(str(exc)) from None
    source = "stdin" if args.filename == "-" else args.filename
    try:
        data = sys.stdin.buffer.read(offline.MAX_BYTES + 1) if args.filename == "-" else _read(args.filename)
        documents = offline.read_documents(data, source)
        outcome = offline.inject_documents(
            documents, catalog, allowed=args.namespace_allowed, native=not args.plain_containers
        )
    except offline.UnreadableInput as exc:
        raise UsageError(str(exc)) from None
    for warning in outcome.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if outcome.denials:
        for denial in outcome.denials:
            print(f"remora inject: denied: {denial}", file=sys.stderr)
        return 1
    sys.stdout.write(dump_documents(outcome.documents))
    return 0


def _read(path: str) -> bytes:
    from webhook.mutate.offline import MAX_BYTES

    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
