"""Shared helpers for the lint tests: manifest paths and quick inventories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lint import inputs, rules
from lint.model import Finding, Inventory, Resource

MANIFESTS = Path(__file__).parent / "manifests"


def load(path: Path | str) -> Inventory:
    return Inventory(inputs.load([str(path)]))


def inventory(text: str, **kwargs: Any) -> Inventory:
    return Inventory([Resource(doc) for doc in yaml.safe_load_all(text) if doc], **kwargs)


def findings(inv: Inventory, rule: str | None = None) -> list[Finding]:
    found = rules.run(inv)
    return [f for f in found if rule is None or f.rule == rule]
