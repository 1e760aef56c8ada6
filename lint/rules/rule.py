"""A rule is data plus a pure function: an id, a one-line title, the worst severity it
reports, and `check(inventory) -> findings`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lint.model import Finding, Inventory, Severity


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: Severity  # the worst severity this rule reports
    check: Callable[[Inventory], list[Finding]]
    needs_cluster: bool = False  # judges only live clusters (offline it reports nothing)
