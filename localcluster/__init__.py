"""A local Kubernetes control plane for end-to-end tests and demos.

Pinned etcd, kube-apiserver and kube-controller-manager (built from Go modules)
plus kubectl and helm (from a PyPI wheel), cached by ``scripts/controlplane
ensure``; :class:`LocalCluster` runs them on loopback and :class:`FakeKubelet`
writes pod status the way a kubelet would; :mod:`localcluster.remora_release`
installs Remora on it in URL mode (chart, certificates, a local ``remora serve``).
Imports the standard library, ``common``, ``cryptography``, ``httpx`` and (for the
kubelet helper) ``kubernetes``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .binaries import (
    ETCD_VERSION,
    HELM_VERSION,
    K8S_VERSION,
    KUBECTL_VERSION,
    BinariesError,
    bin_dir,
    ensure_binaries,
)
from .cluster import DEFAULT_CONTROLLERS, ClusterError, LocalCluster
from .waiting import wait_until

if TYPE_CHECKING:
    from .kubelet import FakeKubelet

__all__ = [
    "DEFAULT_CONTROLLERS",
    "ETCD_VERSION",
    "HELM_VERSION",
    "K8S_VERSION",
    "KUBECTL_VERSION",
    "BinariesError",
    "ClusterError",
    "FakeKubelet",
    "LocalCluster",
    "bin_dir",
    "ensure_binaries",
    "wait_until",
]


def __getattr__(name: str) -> Any:
    # the kubernetes client is slow to import; load it only when asked for
    if name == "FakeKubelet":
        from .kubelet import FakeKubelet  # noqa: PLC0415

        return FakeKubelet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
