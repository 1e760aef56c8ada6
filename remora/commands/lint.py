"""`remora lint`: sidecar pattern advice for manifests (-f) or a live cluster (--cluster).

Exit 0 when no finding is a warning or worse, 1 when one is, 2 when the input cannot be
read (one line naming the file or the cluster problem).
"""

from __future__ import annotations

import argparse
import sys

from remora.cli import UsageError

OUTPUTS = ("text", "json", "sarif")


def register(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Exit status: 0 when no finding is a warning or an error, 1 when one is, 2 when the input "
        "cannot be read. The rules are documented in docs/lint.md."
    )
    parser.add_argument(
        "-f",
        "--filename",
        dest="files",
        metavar="FILE",
        nargs="+",
        action="extend",
        default=[],
        help="manifest files or folders (searched recursively for .yaml, .yml, .json); '-' reads stdin",
    )
    parser.add_argument("--cluster", action="store_true", help="read a live cluster through the kubeconfig")
    parser.add_argument("-n", "--namespace", help="with --cluster: read only this namespace")
    parser.add_argument(
        "--kubeconfig", help="with --cluster: the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    parser.add_argument(
        "-o", "--output", choices=OUTPUTS, default="text", help="report format (default: text)"
    )


def run(args: argparse.Namespace) -> int:
    # Imported here so that `remora --help` and other commands do not load the linter.
    from lint import cluster, inputs, report, rules
    from lint.model import Inventory, Severity

    if bool(args.files) == bool(args.cluster):
        raise UsageError("give manifests with -f FILE... or read a cluster with --cluster (one of them)")
    if not args.cluster and (args.namespace or args.kubeconfig):
        raise UsageError("--namespace and --kubeconfig apply to --cluster only")
    try:
        if args.cluster:
            inventory = cluster.read(args.kubeconfig, args.namespace)
        else:
            inventory = Inventory(inputs.load(args.files))
    except inputs.InputError as exc:
        raise UsageError(str(exc)) from None
    findings = rules.run(inventory)
    sys.stdout.write(
        report.render(findings, args.output, objects=len(inventory.resources), live=inventory.live)
    )
    return 1 if any(f.severity.rank >= Severity.WARNING.rank for f in findings) else 0
