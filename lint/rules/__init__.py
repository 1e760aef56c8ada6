"""All the rules, in the order they are documented and reported.

An explicit tuple rather than registration by import side effect: what runs is what is
listed here, and tests/unit/lint/test_registry.py checks the list.
"""

from __future__ import annotations

from dataclasses import replace

from lint.model import Finding, Inventory, ObjectRef, Source
from lint.rules import (
    capability_without_injection,
    capability_without_rbac,
    job_sidecar_never_completes,
    sidecar_startup_order,
    sidecar_without_resources,
    split_sidecar,
)
from lint.rules.rule import Rule

RULES: tuple[Rule, ...] = (
    split_sidecar.RULE,
    job_sidecar_never_completes.RULE,
    sidecar_without_resources.RULE,
    sidecar_startup_order.RULE,
    capability_without_injection.RULE,
    capability_without_rbac.RULE,
)
RULE_BY_ID = {rule.id: rule for rule in RULES}

__all__ = ["RULES", "RULE_BY_ID", "Rule", "run"]


def run(inventory: Inventory, rules: tuple[Rule, ...] = RULES) -> list[Finding]:
    """Every rule's findings, each with the sources of its objects, worst first, then by rule and object."""
    sources: dict[ObjectRef, Source] = {}
    for resource in inventory.resources:
        if resource.source is not None:
            sources.setdefault(resource.ref, resource.source)
    findings = []
    for rule in rules:
        for finding in rule.check(inventory):
            located: tuple[Source, ...] = tuple(
                dict.fromkeys(s for o in finding.objects if (s := sources.get(o)))
            )
            findings.append(replace(finding, sources=located))
    order = {rule.id: index for index, rule in enumerate(RULES)}
    findings.sort(key=lambda f: (-f.severity.rank, order.get(f.rule, len(order)), f.objects, f.message))
    return findings
