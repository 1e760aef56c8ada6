"""Every rule has manifests that trigger it and near-misses that must not, discovered from
manifests/<rule-id>/{trigger,near-miss}/*.yaml. A trigger file may say `# expect: N` to
pin the number of findings; a missing or an unknown rule folder fails."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lintcases import MANIFESTS, findings, load

from lint.rules import RULES

OFFLINE_RULES = [rule.id for rule in RULES if not rule.needs_cluster]


def _cases(kind: str) -> list[Path]:
    return sorted(MANIFESTS.glob(f"*/{kind}/*.yaml"))


def test_every_offline_rule_has_triggers_and_near_misses() -> None:
    for rule in OFFLINE_RULES:
        assert list((MANIFESTS / rule / "trigger").glob("*.yaml")), f"{rule} has no trigger manifest"
        assert list((MANIFESTS / rule / "near-miss").glob("*.yaml")), f"{rule} has no near-miss manifest"
    folders = {p.name for p in MANIFESTS.iterdir() if p.is_dir()}
    assert folders == set(OFFLINE_RULES), "manifest folders and rules differ"


@pytest.mark.parametrize("path", _cases("trigger"), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_trigger(path: Path) -> None:
    rule = path.parent.parent.name
    found = findings(load(path), rule)
    assert found, f"{path.name} should trigger {rule}"
    expected = re.search(r"^# expect: (\d+)$", path.read_text(), re.MULTILINE)
    if expected:
        assert len(found) == int(expected.group(1)), [f.message for f in found]
    for finding in found:
        assert finding.objects and finding.message and finding.why and finding.fix
        assert finding.sources and all(s.path == str(path) for s in finding.sources)


@pytest.mark.parametrize("path", _cases("near-miss"), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_near_miss(path: Path) -> None:
    rule = path.parent.parent.name
    assert findings(load(path), rule) == []
