"""`remora operator build|test|migrate`: run one capability operator (the injected sidecar)."""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
from types import FrameType
from typing import Any

from remora.cli import UsageError

CAPABILITIES = ("build", "test", "migrate")
# One port each: the sidecars of one agent pod share its network namespace.
PROBE_PORTS = {"build": 8481, "test": 8482, "migrate": 8483}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("capability", choices=CAPABILITIES, help="which capability to operate")
    parser.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
    parser.add_argument("--namespace", help="namespace to watch (default: $POD_NAMESPACE)")
    parser.add_argument("--agent", help="agent pod whose resources to reconcile (default: $POD_NAME)")
    parser.add_argument(
        "--probe-port",
        type=int,
        default=None,
        help="port for /healthz, /readyz, /metrics (default: $REMORA_PROBE_PORT, else build 8481, "
        "test 8482, migrate 8483; distinct, since the sidecars of one pod share its network)",
    )
    parser.add_argument("--probe-host", default="0.0.0.0", help="address for the probe server")  # noqa: S104
    parser.add_argument("--workers", type=int, default=4, help="reconciles running at once (1-16)")
    parser.add_argument("--reconcile-timeout", type=float, default=30.0, help="seconds per reconcile")
    parser.add_argument("--git-image", default=None, help="image that fetches git sources (build only)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def run(args: argparse.Namespace) -> int:
    # Imported here so that `remora --help` does not load the Kubernetes client.
    from common.kube import load_api_client
    from operators.main import Operator, Options

    options = Options(**_options(args))
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        api = load_api_client(args.kubeconfig)
    except Exception as exc:
        raise UsageError(f"cannot load Kubernetes configuration: {exc}") from None
    operator = Operator(api, options)
    try:
        probes = operator.probe_server()
    except OSError as exc:
        where = f"{options.probe_host}:{options.probe_port}"
        raise UsageError(f"cannot listen on {where} for probes: {exc.strerror}") from None
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("remora.operators").info("signal %d: draining", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    operator.run(stop, probes=probes)
    return 0


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """Checked keyword arguments for operators.main.Options."""
    namespace = args.namespace or os.environ.get("POD_NAMESPACE") or ""
    agent = args.agent or os.environ.get("POD_NAME") or ""
    if not namespace:
        raise UsageError("no namespace: pass --namespace or set POD_NAMESPACE")
    if not DNS_LABEL.match(namespace):
        raise UsageError(f"namespace {namespace!r} is not a valid namespace name")
    if not agent:
        raise UsageError("no agent pod: pass --agent or set POD_NAME")
    if not DNS_SUBDOMAIN.match(agent) or not LABEL_VALUE.match(agent):
        raise UsageError(f"agent {agent!r} is not a pod name usable as a label value")
    probe_port = args.probe_port
    if probe_port is None:
        # Set by the injector from the catalog's probePort.
        from_env = os.environ.get("REMORA_PROBE_PORT", "")
        if from_env and not from_env.isdigit():
            raise UsageError(f"REMORA_PROBE_PORT {from_env!r} is not a port number")
        probe_port = int(from_env) if from_env else PROBE_PORTS[args.capability]
    if not 0 <= probe_port <= 65535:
        raise UsageError(f"--probe-port {probe_port} is not a port number")
    if not 1 <= args.workers <= 16:
        raise UsageError(f"--workers {args.workers} is out of range 1-16")
    if not 0.1 <= args.reconcile_timeout <= 600:
        raise UsageError(f"--reconcile-timeout {args.reconcile_timeout} is out of range 0.1-600 seconds")
    options: dict[str, Any] = {
        "capability": args.capability,
        "namespace": namespace,
        "agent": agent,
        "probe_host": args.probe_host,
        "probe_port": probe_port,
        "workers": args.workers,
        "reconcile_timeout": args.reconcile_timeout,
    }
    if args.git_image:
        if any(c.isspace() for c in args.git_image):
            raise UsageError(f"--git-image {args.git_image!r} is not an image reference")
        options["git_image"] = args.git_image
    return options
