"""Shared by the chart tests: where the chart is, how to find helm, a rendered-manifests view."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "remora"
NAMESPACE = "remora-system"


def find_helm() -> Path | None:
    explicit = os.environ.get("REMORA_BIN_DIR")
    if explicit and (Path(explicit) / "helm").is_file():
        return Path(explicit) / "helm"
    try:
        from localcluster import binaries

        if (binaries.bin_dir() / "helm").is_file():
            return binaries.bin_dir() / "helm"
    except Exception:
        pass
    found = shutil.which("helm")
    return Path(found) if found else None


class Rendered:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d.get("kind") == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [d for d in self.all(kind) if name is None or d["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]
