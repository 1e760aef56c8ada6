"""`remora demo`: run the whole system on a local control plane with one command.

The orchestration of several components (localcluster, the chart, certs, the webhook,
the agent, the broker, the operators), so it lives in the face, which may import them
all; the components still meet only through the Kubernetes API and the broker protocol.
"""

from __future__ import annotations

from pathlib import Path


def default_state_dir() -> Path:
    """``demo`` in Remora's cache (``$REMORA_CACHE``, else ``~/.cache/remora``)."""
    from localcluster.binaries import cache_root  # noqa: PLC0415

    return cache_root() / "demo"
