"""`remora serve`: the admission webhook over HTTPS (/mutate, /validate, /healthz, /readyz, /metrics)."""

from __future__ import annotations

import argparse
import logging
import os

from remora.cli import UsageError


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8443, help="HTTPS port (default 8443)")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")  # noqa: S104
    parser.add_argument(
        "--tls-cert", required=True, metavar="FILE", help="serving certificate (PEM), reloaded on change"
    )
    parser.add_argument(
        "--tls-key", required=True, metavar="FILE", help="its private key (PEM), reloaded on change"
    )
    parser.add_argument("--catalog", metavar="FILE", help="capability catalog file, reloaded on change")
    parser.add_argument(
        "--catalog-configmap",
        metavar="NAMESPACE/NAME",
        help="follow the catalog in this ConfigMap's catalog.yaml key (needs cluster access)",
    )
    parser.add_argument(
        "--kubeconfig", metavar="FILE", help="kubeconfig (default: $KUBECONFIG or in-cluster)"
    )
    parser.add_argument(
        "--no-cluster",
        action="store_true",
        help="do not watch namespaces even when a cluster is reachable (namespace labels are then not read)",
    )
    parser.add_argument(
        "--plain-containers",
        action="store_true",
        help="inject sidecars as regular containers (clusters before Kubernetes 1.29)",
    )
    parser.add_argument(
        "--reload-seconds", type=float, default=2.0, help="how often to look for new cert and catalog files"
    )
    parser.add_argument(
        "--validation-config",
        metavar="FILE",
        help="validation configuration: default levels, exemptions, workloads (docs/validation.md)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes sharing the port (1-16, default 1)"
    )
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be 1-65535, got {args.port}")
    if not 0.1 <= args.reload_seconds <= 3600:
        raise UsageError("--reload-seconds must be between 0.1 and 3600")
    if not 1 <= args.workers <= 16:
        raise UsageError(f"--workers must be 1-16, got {args.workers}")
    if args.catalog and args.catalog_configmap:
        raise UsageError("give --catalog or --catalog-configmap, not both")
    if args.catalog_configmap:
        namespace, slash, name = args.catalog_configmap.partition("/")
        if not (slash and namespace and name) or "/" in name:
            raise UsageError(f"--catalog-configmap must be NAMESPACE/NAME, got {args.catalog_configmap!r}")
    cluster = not args.no_cluster and bool(
        args.kubeconfig or os.environ.get("KUBECONFIG") or os.environ.get("KUBERNETES_SERVICE_HOST")
    )
    if args.catalog_configmap and not (cluster or args.kubeconfig):
        raise UsageError("--catalog-configmap needs cluster access: --kubeconfig, $KUBECONFIG or in-cluster")

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from webhook.main import ServeConfig, SetupError, Webhook

    config = ServeConfig(
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        port=args.port,
        host=args.host,
        catalog_file=args.catalog,
        catalog_configmap=args.catalog_configmap,
        kubeconfig=args.kubeconfig,
        cluster=cluster,
        native_sidecars=not args.plain_containers,
        reload_seconds=args.reload_seconds,
        log_level=args.log_level,
        validation_config=args.validation_config,
        workers=args.workers,
    )
    try:
        webhook = Webhook(config)
    except SetupError as exc:
        raise UsageError(str(exc)) from None
    webhook.serve()
    return 0
