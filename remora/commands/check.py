"""`remora check -f FILE [--level LEVEL]`: judge Pods and pod templates offline at a policy level.

Prints one line per forbidden field (object, container, field, what is wrong); exits 0 when every
object passes, 1 when any would be denied, 2 when the input cannot be read.
"""

from __future__ import annotations

import argparse
import sys

from common.names import LEVELS
from remora.cli import UsageError


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--filename",
        required=True,
        metavar="FILE",
        help="manifests to check: YAML or JSON, several documents and Lists allowed; - for stdin",
    )
    parser.add_argument(
        "--level",
        choices=LEVELS,
        default="restricted",
        help="policy level to check against (default: restricted)",
    )


def run(args: argparse.Namespace) -> int:
    from webhook.validate import offline

    source = "stdin" if args.filename == "-" else args.filename
    try:
        data = (
            sys.stdin.buffer.read(offline.MAX_BYTES + 1)
            if args.filename == "-"
            else _read(args.filename, offline.MAX_BYTES + 1)
        )
        report = offline.check(offline.read_documents(data, source), args.level, source)
    except offline.UnreadableInput as exc:
        raise UsageError(str(exc)) from None
    for finding in report.findings:
        print(finding.line())
    if report.checked == 0:
        print(f"{source}: no Pods or pod templates to check", file=sys.stderr)
    elif report.denied:
        print(f"{report.denied} of {report.checked} objects would be denied at {args.level}", file=sys.stderr)
    return 1 if report.denied else 0


def _read(path: str, limit: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(limit)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
