"""`remora agent`: claim work from a broker and run each item as a capability resource in this pod."""

from __future__ import annotations

import argparse
import os

from remora.cli import UsageError
from remora.commands.broker import read_token

DEFAULT_CAPABILITIES_FILE = "/etc/podinfo/annotations"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", required=True, metavar="URL", help="the broker's base URL")
    parser.add_argument(
        "--token-file", help="file holding the broker's bearer token (default: $REMORA_BROKER_TOKEN)"
    )
    parser.add_argument(
        "--capabilities", help="comma-separated capabilities, overriding the pod's annotation"
    )
    parser.add_argument(
        "--capabilities-file",
        default=DEFAULT_CAPABILITIES_FILE,
        help=f"downward-API annotations file of this pod (default {DEFAULT_CAPABILITIES_FILE})",
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, then $KUBECONFIG)")
    parser.add_argument("--pod-name", default=os.environ.get("POD_NAME"), help="this pod's name ($POD_NAME)")
    parser.add_argument(
        "--namespace", default=os.environ.get("POD_NAMESPACE"), help="this pod's namespace ($POD_NAMESPACE)"
    )
    parser.add_argument(
        "--pod-uid",
        default=os.environ.get("POD_UID"),
        help="this pod's UID ($POD_UID; read from the API if unset)",
    )
    parser.add_argument("--max-items", type=int, default=4, help="work items held at once (default 4)")
    parser.add_argument(
        "--lease-seconds", type=int, default=60, help="lease asked for per claim (default 60)"
    )
    parser.add_argument("--poll-min", type=float, default=1.0, help="shortest wait between empty polls (s)")
    parser.add_argument("--poll-max", type=float, default=30.0, help="longest wait between empty polls (s)")
    parser.add_argument(
        "--grace-seconds",
        type=float,
        default=30.0,
        help="after SIGTERM: time to finish held work, then release the rest (under the pod's grace)",
    )


def run(args: argparse.Namespace) -> int:
    if not args.pod_name or not args.namespace:
        raise UsageError("the pod's name and namespace are needed: set POD_NAME/POD_NAMESPACE or pass flags")
    if not 1 <= args.max_items <= 100:
        raise UsageError("--max-items must be 1-100")
    if not 5 <= args.lease_seconds <= 3600:
        raise UsageError("--lease-seconds must be 5-3600")
    if not 0 < args.poll_min <= args.poll_max:
        raise UsageError("--poll-min must be above 0 and at most --poll-max")
    if args.grace_seconds < 0:
        raise UsageError("--grace-seconds must not be negative")
    token = read_token(args)

    from agent.main import AgentSetupError, run_agent

    try:
        return run_agent(
            broker_url=args.broker,
            token=token,
            capabilities=args.capabilities,
            capabilities_file=args.capabilities_file,
            kubeconfig=args.kubeconfig,
            pod_name=args.pod_name,
            namespace=args.namespace,
            pod_uid=args.pod_uid,
            max_items=args.max_items,
            lease_seconds=args.lease_seconds,
            poll_min=args.poll_min,
            poll_max=args.poll_max,
            grace_seconds=args.grace_seconds,
        )
    except AgentSetupError as exc:
        raise UsageError(str(exc)) from None
