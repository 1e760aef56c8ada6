"""The rule registry: unique ids, each a module of lint.rules, documented in docs/lint.md."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from lint.model import Severity
from lint.rules import RULE_BY_ID, RULES

DOCS = Path(__file__).resolve().parents[3] / "docs" / "lint.md"


def test_ids_are_unique_and_kebab_case() -> None:
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids)) == len(RULE_BY_ID)
    for rule_id in ids:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)+", rule_id)


def test_each_rule_is_its_own_module_named_for_it() -> None:
    for rule in RULES:
        module = sys.modules[rule.check.__module__]
        assert module.__name__ == "lint.rules." + rule.id.replace("-", "_")
        assert module.__doc__ and module.__doc__.startswith(rule.id + ":")
        assert isinstance(rule.severity, Severity)
        assert rule.title and not rule.title.endswith(".")


def test_every_rule_module_is_registered() -> None:
    folder = Path(sys.modules["lint.rules"].__file__ or "").parent
    modules = {p.stem for p in folder.glob("*.py")} - {"__init__", "rule"}
    assert modules == {rule.id.replace("-", "_") for rule in RULES}


def test_every_rule_is_documented_with_what_why_fix_and_example() -> None:
    text = DOCS.read_text()
    for rule in RULES:
        match = re.search(rf"^## `{rule.id}`$(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
        assert match, f"docs/lint.md has no section for {rule.id}"
        section = match.group(1)
        for heading in ("What it finds", "Why it matters", "How to fix", "Example"):
            assert f"**{heading}**" in section, f"{rule.id}: no {heading!r}"
