"""Findings as readable text (grouped by rule), JSON, or SARIF 2.1.0."""

from __future__ import annotations

import hashlib
import os
import sys
import textwrap
from collections.abc import Sequence
from functools import lru_cache
from importlib import metadata
from typing import Any, Final
from urllib.parse import quote

import orjson

from lint.model import Finding, Severity
from lint.rules import RULES, Rule

FORMATS: Final = ("text", "json", "sarif")
SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL: Final = {Severity.INFO: "note", Severity.WARNING: "warning", Severity.ERROR: "error"}
TOOL_NAME: Final = "remora-lint"
WIDTH: Final = 100


def render(findings: Sequence[Finding], output: str, *, objects: int, live: bool) -> str:
    if output == "json":
        return render_json(findings, objects=objects)
    if output == "sarif":
        return render_sarif(findings)
    return render_text(findings, objects=objects, live=live)


def summary(findings: Sequence[Finding]) -> dict[str, int]:
    counts = {severity.value: 0 for severity in Severity}
    for finding in findings:
        counts[finding.severity.value] += 1
    return counts


def render_text(findings: Sequence[Finding], *, objects: int, live: bool) -> str:
    lines: list[str] = []
    for rule in RULES:
        own = [f for f in findings if f.rule == rule.id]
        if not own:
            continue
        lines.append(f"{rule.id}: {rule.title}")
        for finding in own:
            lines.append("")
            lines.extend(_text_finding(finding))
        lines.append("")
    counts = summary(findings)
    total = len(findings)
    tally = ", ".join(_count(counts[s.value], s.value) for s in reversed(Severity))
    head = f"{_count(total, 'finding')} ({tally})" if total else "no findings"
    lines.append(f"{head} in {_count(objects, 'object')}, {len(RULES)} rules.")
    skipped = [r.id for r in RULES if r.needs_cluster and not live]
    if skipped:
        lines.append(f"Not checked without --cluster: {', '.join(skipped)}.")
    return "\n".join(lines) + "\n"


def _text_finding(finding: Finding) -> list[str]:
    indent = " " * 4
    lines = [f"  {finding.severity.value.upper()}  " + ", ".join(str(o) for o in finding.objects)]
    if finding.sources:
        lines.append(indent + "at " + _where(finding))
    lines.extend(_wrap(finding.message, ""))
    lines.extend(indent + "  " + note for note in finding.notes)
    lines.extend(_wrap(finding.why, "why: "))
    lines.extend(_wrap(finding.fix, "fix: "))
    return lines


@lru_cache(maxsize=512)
def _wrap(text: str, label: str) -> tuple[str, ...]:
    # Cached: many findings of one rule share their why and fix, and wrapping is the slow part.
    indent = " " * 4
    return tuple(
        textwrap.wrap(label + text, WIDTH, initial_indent=indent, subsequent_indent=indent + " " * len(label))
    )


def _where(finding: Finding) -> str:
    """'a.yaml:4, 11; b.yaml:2': each file once, its lines in order."""
    lines: dict[str, list[int]] = {}
    for source in finding.sources:
        lines.setdefault(source.path, []).append(source.line)
    return "; ".join(f"{path}:{', '.join(map(str, sorted(set(n))))}" for path, n in lines.items())


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 or noun == "info" else f"{number} {noun}s"


def finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "severity": finding.severity.value,
        "objects": [{"kind": o.kind, "namespace": o.namespace, "name": o.name} for o in finding.objects],
        "message": finding.message,
        "why": finding.why,
        "fix": finding.fix,
        "sources": [{"path": s.path, "line": s.line} for s in finding.sources],
        "notes": list(finding.notes),
        "details": finding.details,
    }


def render_json(findings: Sequence[Finding], *, objects: int) -> str:
    document = {
        "tool": TOOL_NAME,
        "version": _version(),
        "objects": objects,
        "summary": summary(findings),
        "findings": [finding_dict(f) for f in findings],
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"


def render_sarif(findings: Sequence[Finding]) -> str:
    index = {rule.id: i for i, rule in enumerate(RULES)}
    results = []
    for finding in findings:
        result: dict[str, Any] = {
            "ruleId": finding.rule,
            "level": SARIF_LEVEL[finding.severity],
            "message": {"text": _sarif_text(finding)},
            "locations": _sarif_locations(finding),
            "partialFingerprints": {"remoraFinding/v1": _fingerprint(finding)},
            "properties": {"objects": [str(o) for o in finding.objects]},
        }
        if finding.rule in index:
            result["ruleIndex"] = index[finding.rule]
        results.append(result)
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": _version(),
                        "rules": [_sarif_rule(rule) for rule in RULES],
                    }
                },
                "results": results,
            }
        ],
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"


def _sarif_text(finding: Finding) -> str:
    notes = "".join(f"\n{note}" for note in finding.notes)
    return f"{finding.message}{notes}\nWhy: {finding.why}\nFix: {finding.fix}"


def _sarif_rule(rule: Rule) -> dict[str, Any]:
    doc = sys.modules[rule.check.__module__].__doc__ or rule.title
    return {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in rule.id.split("-")),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": " ".join(doc.split())},
        "help": {"text": f"See docs/lint.md#{rule.id}"},
        "defaultConfiguration": {"level": SARIF_LEVEL[rule.severity]},
        "properties": {"needsCluster": rule.needs_cluster},
    }


def _sarif_locations(finding: Finding) -> list[dict[str, Any]]:
    logical = [
        {
            "name": o.name,
            "fullyQualifiedName": "/".join(part for part in (o.kind, o.namespace, o.name) if part),
            "kind": "resource",
        }
        for o in finding.objects
    ]
    files = [s for s in finding.sources if s.path != "<stdin>"]
    if not files:
        return [{"logicalLocations": logical}]
    return [
        {
            "physicalLocation": {
                "artifactLocation": {"uri": _uri(source.path)},
                "region": {"startLine": source.line},
            },
            "logicalLocations": logical,
        }
        for source in files
    ]


def _uri(path: str) -> str:
    """A relative URI reference for paths under the working directory, a file URI otherwise."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    if relative.startswith(".."):
        return "file://" + quote(absolute.replace(os.sep, "/"))
    return quote(relative.replace(os.sep, "/"))


def _fingerprint(finding: Finding) -> str:
    key = finding.rule + "\0" + "\0".join(str(o) for o in finding.objects) + "\0" + finding.message
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _version() -> str:
    try:
        return metadata.version("remora")
    except metadata.PackageNotFoundError:
        return "0+unknown"
