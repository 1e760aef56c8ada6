"""`remora`: one console script, a subcommand per component.

Bad arguments end with exit 2 and one readable line; an unexpected failure ends with
exit 1 and one line naming it (set REMORA_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn, Protocol

from remora import __version__

# name -> (module under remora.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serve", "serve the admission webhook: sidecar injection at /mutate, policy at /validate"),
    "inject": ("inject", "add capability sidecars to Pods and pod templates in manifests, offline"),
    "certs": ("certs", "bootstrap, rotate and check the webhook's certificates and caBundle"),
    "enable-namespace": ("enable_namespace", "label a namespace for injection and bind its capability roles"),
    "operator": ("operator", "run a capability operator (build, test or migrate) for one agent pod"),
    "broker": ("broker", "serve the reference work broker, or enqueue/list/cancel items at one"),
    "agent": ("agent", "claim work from a broker and run it through the pod's capability sidecars"),
    "lint": ("lint", "advise on sidecar patterns in manifests or a live cluster"),
    "check": ("check", "check Pods and pod templates against a SecurityContext level, offline"),
    "demo": ("demo", "run the whole system on a local control plane: install, inject, run work, report"),
}


class Command(Protocol):
    def register(self, parser: argparse.ArgumentParser) -> None: ...
    def run(self, args: argparse.Namespace) -> int: ...


class UsageError(Exception):
    """A command found its arguments or input unusable; exit 2 with this one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"remora: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="remora", description="Capability sidecars for Kubernetes agent pods.")
    parser.add_argument("--version", action="version", version=f"remora {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module_name, help_text) in COMMANDS.items():
        module: Command = importlib.import_module(f"remora.commands.{module_name}")
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.register(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not getattr(args, "_run", None):
        sys.stderr.write("remora: a command is required (see remora --help)\n")
        return 2
    try:
        return int(args._run(args))
    except UsageError as exc:
        sys.stderr.write(f"remora {args.command}: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("REMORA_DEBUG"):
            raise
        sys.stderr.write(f"remora {args.command}: {type(exc).__name__}: {exc}\n")
        return 1
