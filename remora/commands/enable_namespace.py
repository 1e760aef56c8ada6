"""`remora enable-namespace NS --capabilities build,test`: one command for an application team.

It labels the namespace for injection, records which capabilities its pods may ask for,
and binds each capability's ClusterRole (installed by the chart) to the service account
the agent pods run as (the sidecars share it). Run again, it changes nothing.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from common.names import (
    ALLOWED_CAPABILITIES_ANNOTATION,
    CAPABILITIES,
    INJECTION_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    parse_capability_list,
)
from remora.cli import UsageError

ROLE_PREFIX = "remora-capability-"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
RBAC = "/apis/rbac.authorization.k8s.io/v1"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("namespace", help="the application namespace")
    parser.add_argument(
        "--capabilities", required=True, help=f"comma separated, from {', '.join(CAPABILITIES)}"
    )
    parser.add_argument(
        "--service-account", default="default", help="service account of the agent pods (default)"
    )
    parser.add_argument("--role-prefix", default=ROLE_PREFIX, help=f"ClusterRole name prefix ({ROLE_PREFIX})")
    parser.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)")


def run(args: argparse.Namespace) -> int:
    from common.kube import ApiError, load_api_client

    namespace, capabilities, account = validate(args.namespace, args.capabilities, args.service_account)
    if not _DNS_SUBDOMAIN.match(args.role_prefix + "x"):
        raise UsageError(f"--role-prefix {args.role_prefix!r} does not make valid ClusterRole names")
    try:
        api = load_api_client(args.kubeconfig)
    except Exception as exc:
        raise UsageError(f"cannot load Kubernetes configuration: {exc}") from None
    try:
        for line in enable(api, namespace, capabilities, account, args.role_prefix):
            print(line)
    except ApiError as exc:
        if exc.status in (401, 403):
            raise UsageError(f"not allowed: {exc.message}") from None
        raise
    return 0


def validate(namespace: str, capabilities: str, account: str) -> tuple[str, list[str], str]:
    if not _DNS_LABEL.match(namespace):
        raise UsageError(f"namespace {namespace!r} is not a valid name (a DNS label)")
    caps = parse_capability_list(capabilities)
    if not caps:
        raise UsageError("--capabilities is empty; name at least one of " + ", ".join(CAPABILITIES))
    unknown = [c for c in caps if c not in CAPABILITIES]
    if unknown:
        raise UsageError(f"unknown capability {unknown[0]!r}; known: {', '.join(CAPABILITIES)}")
    if not _DNS_SUBDOMAIN.match(account) or len(account) > 253:
        raise UsageError(f"service account {account!r} is not a valid name")
    return namespace, caps, account


def namespace_patch(capabilities: list[str]) -> dict[str, Any]:
    return {
        "metadata": {
            "labels": {INJECTION_LABEL: "enabled"},
            "annotations": {ALLOWED_CAPABILITIES_ANNOTATION: ",".join(capabilities)},
        }
    }


def role_binding(namespace: str, capability: str, account: str, role_prefix: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": f"remora-{capability}",
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, "remora.dev/capability": capability},
        },
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role_prefix + capability,
        },
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    }


def enable(api: Any, namespace: str, capabilities: list[str], account: str, role_prefix: str) -> list[str]:
    """Apply the namespace's labels, annotation and RoleBindings; one line per thing done."""
    from common.kube import ApiError, request

    try:
        live = request(api, "GET", f"/api/v1/namespaces/{namespace}")
    except ApiError as exc:
        if exc.not_found:
            raise UsageError(f"namespace {namespace} does not exist") from None
        raise
    for capability in capabilities:
        try:
            request(api, "GET", f"{RBAC}/clusterroles/{role_prefix}{capability}")
        except ApiError as exc:
            if exc.not_found:
                raise UsageError(
                    f"ClusterRole {role_prefix}{capability} does not exist; is the Remora chart installed?"
                ) from None
            raise
    done: list[str] = []
    meta = live.get("metadata") or {}
    wanted = namespace_patch(capabilities)["metadata"]
    if (meta.get("labels") or {}).get(INJECTION_LABEL) != "enabled" or (meta.get("annotations") or {}).get(
        ALLOWED_CAPABILITIES_ANNOTATION
    ) != wanted["annotations"][ALLOWED_CAPABILITIES_ANNOTATION]:
        request(
            api,
            "PATCH",
            f"/api/v1/namespaces/{namespace}",
            body=namespace_patch(capabilities),
            content_type="application/merge-patch+json",
        )
        done.append(
            f"namespace/{namespace} labelled {INJECTION_LABEL}=enabled, capabilities {','.join(capabilities)}"
        )
    for capability in capabilities:
        done += _ensure_binding(api, role_binding(namespace, capability, account, role_prefix))
    if not done:
        done.append(f"namespace/{namespace} already enabled for {','.join(capabilities)}: nothing changed")
    return done


def _ensure_binding(api: Any, binding: dict[str, Any]) -> list[str]:
    from common.kube import ApiError, request

    meta = binding["metadata"]
    path = f"{RBAC}/namespaces/{meta['namespace']}/rolebindings/{meta['name']}"
    label = f"rolebinding/{meta['name']}"
    try:
        live = request(api, "GET", path)
    except ApiError as exc:
        if not exc.not_found:
            raise
        request(api, "POST", f"{RBAC}/namespaces/{meta['namespace']}/rolebindings", body=binding)
        return [f"{label} created ({binding['roleRef']['name']} -> {binding['subjects'][0]['name']})"]
    if live.get("roleRef") == binding["roleRef"] and live.get("subjects") == binding["subjects"]:
        return []
    if live.get("roleRef") != binding["roleRef"]:
        # roleRef cannot change in place: replace the binding.
        request(api, "DELETE", path)
        request(api, "POST", f"{RBAC}/namespaces/{meta['namespace']}/rolebindings", body=binding)
        return [f"{label} replaced (role changed to {binding['roleRef']['name']})"]
    binding["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    request(api, "PUT", path, body=binding)
    return [f"{label} updated (subject {binding['subjects'][0]['name']})"]
