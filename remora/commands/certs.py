"""`remora certs bootstrap|rotate-once|status|run`: the webhook's CA, serving certificate and caBundle."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import re
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from remora.cli import UsageError

DEFAULT_SECRET = "remora-webhook-certs"  # noqa: S105 (a Secret name, not a password)
DEFAULT_WEBHOOK_CONFIG = "remora"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="certs_command", metavar="ACTION", parser_class=type(parser))
    sub.required = True
    actions = {
        "bootstrap": "create the CA and serving certificate, store them, write the caBundle (idempotent)",
        "rotate-once": "run one rotation pass: renew what is due, advance a CA rotation by what is due now",
        "status": "show the stored certificates and whether the webhooks and the server agree",
        "run": "keep the certificates valid: lead (Lease) or follow, writing the cert files (a sidecar loop)",
    }
    for name, help_text in actions.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p)
        if name in ("bootstrap", "rotate-once", "run"):
            _issuing(p)
        if name == "bootstrap":
            p.add_argument(
                "--wait", action="store_true", help="wait through a CA rotation instead of leaving it"
            )
        if name in ("run", "rotate-once", "bootstrap"):
            p.add_argument("--cert-dir", type=Path, help="also write tls.crt, tls.key and ca.crt here")
        if name == "run":
            _leader(p)
            p.add_argument(
                "--probe-port", type=int, default=0, help="serve /healthz and /readyz here (0: off)"
            )
            p.add_argument("--probe-host", default="0.0.0.0", help="address for the probe server")  # noqa: S104
            p.add_argument(
                "--check-port", type=int, help="/readyz compares the certificate served on this port"
            )
            p.add_argument("--server-name", help="name the served certificate must be valid for")
        if name == "status":
            p.add_argument(
                "--check-host", help="connect here and compare the served certificate (with --check-port)"
            )
            p.add_argument("--check-port", type=int, help="port of the webhook server to check")
            p.add_argument("--server-name", help="name the served certificate must be valid for")


def run(args: argparse.Namespace) -> int:
    from common.kube import load_api_client

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    config = None if args.certs_command == "status" else rotation_config(args)
    try:
        api = load_api_client(args.kubeconfig)
    except Exception as exc:
        raise UsageError(f"cannot load Kubernetes configuration: {exc}") from None
    if config is None:
        return _status(api, args)
    if args.certs_command == "bootstrap":
        return _bootstrap(api, config, args)
    if args.certs_command == "rotate-once":
        return _rotate_once(api, config)
    return _run(api, config, args)


def rotation_config(args: argparse.Namespace) -> Any:
    """The RotationConfig the arguments describe; UsageError names a bad one."""
    from certs.issue import CertError, service_dns_names, split_sans
    from certs.plan import Names, Policy
    from certs.rotation import RotationConfig
    from certs.store import SecretRef

    namespace = _namespace(args)
    try:
        dns: list[str] = service_dns_names(args.service, namespace) if args.service else []
        extra_dns, ips = split_sans(args.extra_san or [])
    except CertError as exc:
        raise UsageError(str(exc)) from None
    if not dns and not extra_dns and not ips:
        raise UsageError("give --service or at least one --extra-san for the serving certificate")
    try:
        policy = Policy(
            ca_lifetime=parse_duration(args.ca_lifetime, "--ca-lifetime"),
            serving_lifetime=parse_duration(args.serving_lifetime, "--serving-lifetime"),
            propagation=parse_duration(args.propagation, "--propagation"),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    extra: dict[str, Any] = {}
    if getattr(args, "lease_name", None):
        extra["lease_name"] = args.lease_name
    if getattr(args, "identity", None):
        extra["identity"] = args.identity
    if getattr(args, "poll", None):
        extra["poll_interval"] = parse_duration(args.poll, "--poll")
    return RotationConfig(
        secret=SecretRef(namespace, args.secret),
        target=_target(args),
        names=Names(tuple(dict.fromkeys(dns + extra_dns)), tuple(ips)),
        policy=policy,
        cert_dir=getattr(args, "cert_dir", None),
        owner_configmap=args.owner_configmap or None,
        **extra,
    )


def parse_duration(text: str, flag: str) -> dt.timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise UsageError(f"{flag} {text!r}: expected a number and a unit, like 90s, 15m, 24h or 365d")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > 100 * 365 * 86400:
        raise UsageError(f"{flag} {text!r}: more than 100 years")
    return dt.timedelta(seconds=seconds)


def add_rotation_arguments(parser: argparse.ArgumentParser) -> None:
    """The rotation's flags, for a command that runs it in its own process (`remora serve`).

    That command keeps its own --kubeconfig and calls `start_rotation` when --rotate-certs is set.
    """
    group = parser.add_argument_group("certificate rotation")
    group.add_argument(
        "--rotate-certs",
        action="store_true",
        help="issue and renew the serving certificate in this process (see `remora certs run`)",
    )
    _common(group, kubeconfig=False)
    _issuing(group)
    _leader(group)


def start_rotation(api: Any, args: argparse.Namespace, cert_dir: Path, stop: threading.Event) -> Any:
    """Run the rotation in a thread of this process, writing tls.crt/tls.key into cert_dir.

    Returns once cert_dir holds a serving certificate (so the caller can start serving),
    or raises UsageError after --rotation-startup seconds.
    """
    from certs.rotation import Rotator
    from certs.store import MissingOwner
    from certs.webhooks import WebhookError

    args.cert_dir = cert_dir
    rotator = Rotator(api, rotation_config(args))
    timeout = parse_duration(args.rotation_startup, "--rotation-startup").total_seconds()
    try:
        ready = rotator.wait_for_files(timeout, stop)
    except (WebhookError, MissingOwner) as exc:
        raise UsageError(str(exc)) from None
    if not ready:
        raise UsageError(f"no serving certificate in {cert_dir} after {timeout:.0f}s; see the log above")
    rotator.start(stop)
    return rotator


def _leader(p: Any) -> None:
    p.add_argument("--lease-name", default="remora-certs", help="Lease used for leader election")
    p.add_argument("--identity", default=os.environ.get("POD_NAME") or None, help="this replica's name")
    p.add_argument("--poll", default="5s", help="how often followers read the Secret")
    p.add_argument("--rotation-startup", default="120s", help="how long to wait for the first certificate")


def _common(p: Any, *, kubeconfig: bool = True) -> None:
    if kubeconfig:
        p.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
    p.add_argument("--namespace", help="namespace of the Secret (default: $POD_NAMESPACE)")
    p.add_argument(
        "--secret", default=DEFAULT_SECRET, help=f"Secret holding the certificates ({DEFAULT_SECRET})"
    )
    p.add_argument(
        "--webhook-config",
        action="append",
        help=f"Mutating/ValidatingWebhookConfiguration name, repeatable (default {DEFAULT_WEBHOOK_CONFIG})",
    )
    p.add_argument(
        "--webhook-selector", help="find the webhook configurations by this label selector instead"
    )


def _issuing(p: Any) -> None:
    p.add_argument("--service", help="the webhook Service: its four DNS names go into the certificate")
    p.add_argument(
        "--extra-san", action="append", help="another DNS name or IP for the certificate, repeatable"
    )
    p.add_argument("--serving-lifetime", default="24h", help="serving certificate lifetime (24h)")
    p.add_argument("--ca-lifetime", default="365d", help="CA lifetime (365d)")
    p.add_argument("--propagation", default="60s", help="wait between CA rotation steps (60s)")
    p.add_argument(
        "--owner-configmap",
        default="remora-capabilities",
        help="ConfigMap that owns the Secret and Lease, so uninstalling removes them ('' for none)",
    )


def _namespace(args: argparse.Namespace) -> str:
    namespace = args.namespace or os.environ.get("POD_NAMESPACE")
    if not namespace:
        raise UsageError("--namespace is required (or set $POD_NAMESPACE)")
    return str(namespace)


def _target(args: argparse.Namespace) -> Any:
    from certs.webhooks import Target

    names = tuple(args.webhook_config or ())
    if not names and not args.webhook_selector:
        names = (DEFAULT_WEBHOOK_CONFIG,)
    return Target(names=names, selector=args.webhook_selector)


def _bootstrap(api: Any, config: Any, args: argparse.Namespace) -> int:
    from certs.bootstrap import bootstrap
    from certs.store import MissingOwner
    from certs.webhooks import WebhookError

    try:
        outcome = bootstrap(api, config, wait=args.wait)
    except (WebhookError, MissingOwner) as exc:
        raise UsageError(str(exc)) from None
    for line in outcome.lines():
        print(line)
    print("changed" if outcome.changed else "unchanged: everything is valid")
    return 0


def _rotate_once(api: Any, config: Any) -> int:
    from certs.rotation import Rotator
    from certs.store import MissingOwner
    from certs.webhooks import WebhookError

    try:
        decisions = Rotator(api, config).converge(wait=False)
    except (WebhookError, MissingOwner) as exc:
        raise UsageError(str(exc)) from None
    for decision in decisions:
        print(f"{decision.action}: {decision.reason}")
    return 0


def _status(api: Any, args: argparse.Namespace) -> int:
    from certs import bundle, readiness, store, webhooks

    state = store.read(api, store.SecretRef(_namespace(args), args.secret))
    problems = list(state.problems)
    if state.ca:
        print(f"CA:      {bundle.describe(state.ca.cert)}")
    if state.next_ca:
        print(f"next CA: {bundle.describe(state.next_ca.cert)} (rotation in progress)")
    if state.serving:
        print(f"serving: {bundle.describe(state.serving.cert)}")
    for cert in state.bundle:
        print(f"bundle:  {bundle.describe(cert)}")
    target = _target(args)
    try:
        configs = webhooks.find(api, target)
        problems += webhooks.disagreements([c for c in configs if not c.uses_cert_manager], state.bundle)
    except webhooks.WebhookError as exc:
        problems.append(str(exc))
    if args.check_host or args.check_port:
        if not (args.check_host and args.check_port):
            raise UsageError("--check-host and --check-port go together")
        report = readiness.check(api, target, args.check_host, args.check_port, server_name=args.server_name)
        print(f"server:  {report.summary()}")
        problems += list(report.problems)
    for problem in problems:
        print(f"problem: {problem}")
    print("ok" if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1


def _run(api: Any, config: Any, args: argparse.Namespace) -> int:
    from certs import probes, readiness
    from certs.rotation import Rotator

    if args.probe_port and config.cert_dir is None:
        raise UsageError("--probe-port needs --cert-dir (its /healthz looks at the files there)")
    if not 0 <= args.probe_port < 65536 or (args.check_port is not None and not 0 < args.check_port < 65536):
        raise UsageError("ports must be 1-65535")
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.probe_port:
        ready = None
        if args.check_port:
            check_port, server_name, target = args.check_port, args.server_name, config.target
            ready = readiness.CachedCheck(
                lambda: readiness.check(api, target, "127.0.0.1", check_port, server_name=server_name)
            )
        try:
            probes.serve(args.probe_host, args.probe_port, config.cert_dir, ready, stop)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {args.probe_host}:{args.probe_port}: {exc.strerror}"
            ) from None
    Rotator(api, config).run(stop)
    return 0
