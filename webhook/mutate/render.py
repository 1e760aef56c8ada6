"""Render a catalog entry into the sidecar container (and the token volume) it becomes.

The sidecar meets the `hardened` level on its own: non-root with explicit non-zero user
and group, read-only root filesystem, no privilege escalation, every capability dropped,
the RuntimeDefault seccomp profile and a memory limit (the catalog schema requires one).
"""

from __future__ import annotations

from typing import Any, Final

from common.names import SIDECAR_PREFIX
from webhook.catalog import Capability

TOKEN_VOLUME: Final = "remora-serviceaccount"  # noqa: S105 - a volume name, not a secret
TOKEN_PATH: Final = "/var/run/secrets/kubernetes.io/serviceaccount"  # noqa: S105 - a path
# The kubelet's own default for projected tokens: refreshed well before it expires.
TOKEN_SECONDS: Final = 3607


def sidecar_name(capability: str) -> str:
    return SIDECAR_PREFIX + capability


def render(capability: Capability, *, native: bool, token_mount: bool) -> dict[str, Any]:
    """The sidecar container for `capability`: built once per (entry, mode), shared, read-only."""
    key = (capability, native, token_mount)
    container = _RENDERED.get(key)
    if container is None:
        if len(_RENDERED) >= 256:  # old catalogs' entries: drop them all, rebuilding is cheap
            _RENDERED.clear()
        container = _RENDERED[key] = _render(capability, native, token_mount)
    return container


def token_volume() -> dict[str, Any]:
    """The projected service account token, as the kubelet would mount it, for the sidecars only."""
    return _TOKEN_VOLUME


# Keyed by the entry's identity: a reloaded catalog has new entries and renders anew.
_RENDERED: dict[tuple[Capability, bool, bool], dict[str, Any]] = {}


def _render(capability: Capability, native: bool, token_mount: bool) -> dict[str, Any]:
    container: dict[str, Any] = {"name": sidecar_name(capability.name), "image": capability.image}
    if capability.image_pull_policy:
        container["imagePullPolicy"] = capability.image_pull_policy
    container["command"] = list(capability.command)
    if capability.args:
        container["args"] = list(capability.args)
    container["env"] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "REMORA_CAPABILITY", "value": capability.name},
        *({"name": name, "value": value} for name, value in capability.env),
    ]
    if capability.probe_port is not None:
        container["env"].append({"name": "REMORA_PROBE_PORT", "value": str(capability.probe_port)})
    container["resources"] = capability.resources
    if native:
        container["restartPolicy"] = "Always"
    if capability.probe_port is not None:
        container["readinessProbe"] = _ready_probe(capability.probe_port, periodSeconds=10)
        if native:
            # A native sidecar's startup probe holds the agent back until its operator has
            # synced, so the agent's first resources are reconciled at once.
            container["startupProbe"] = _ready_probe(
                capability.probe_port, periodSeconds=1, failureThreshold=120
            )
    container["securityContext"] = {
        "runAsNonRoot": True,
        "runAsUser": capability.run_as_user,
        "runAsGroup": capability.run_as_group,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if token_mount:
        container["volumeMounts"] = [{"name": TOKEN_VOLUME, "mountPath": TOKEN_PATH, "readOnly": True}]
    return container


def _ready_probe(port: int, **timing: int) -> dict[str, Any]:
    return {"httpGet": {"path": "/readyz", "port": port}, **timing}


_TOKEN_VOLUME: Final[dict[str, Any]] = {
    "name": TOKEN_VOLUME,
    "projected": {
        "defaultMode": 0o444,
        "sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_SECONDS}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {
                "downwardAPI": {
                    "items": [
                        {
                            "path": "namespace",
                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                        }
                    ]
                }
            },
        ],
    },
}
