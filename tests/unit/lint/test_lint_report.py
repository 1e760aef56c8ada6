"""The three report formats: grouped text, JSON, and SARIF 2.1.0 checked against the
structure the SARIF specification requires of the parts we emit."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from lintcases import MANIFESTS, findings, load

from lint import report
from lint.rules import RULES

ALL_TRIGGERS = sorted(MANIFESTS.glob("*/trigger/*.yaml"))

# The SARIF 2.1.0 constraints (OASIS sarif-v2.1.0, sections 3.13-3.33) on what remora emits.
MESSAGE = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string", "minLength": 1}}}
SARIF = {
    "type": "object",
    "required": ["version", "runs", "$schema"],
    "properties": {
        "version": {"const": "2.1.0"},
        "$schema": {"type": "string", "format": "uri"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["tool", "results"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name", "rules"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "version": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id", "shortDescription", "defaultConfiguration"],
                                            "properties": {
                                                "id": {"type": "string"},
                                                "name": {"type": "string", "pattern": "^[A-Z][A-Za-z]*$"},
                                                "shortDescription": MESSAGE,
                                                "fullDescription": MESSAGE,
                                                "help": MESSAGE,
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "properties": {
                                                        "level": {
                                                            "enum": ["none", "note", "warning", "error"]
                                                        }
                                                    },
                                                },
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["ruleId", "message", "level"],
                            "properties": {
                                "ruleId": {"type": "string"},
                                "ruleIndex": {"type": "integer", "minimum": 0},
                                "level": {"enum": ["none", "note", "warning", "error"]},
                                "message": MESSAGE,
                                "partialFingerprints": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                                "locations": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "required": ["artifactLocation"],
                                                "properties": {
                                                    "artifactLocation": {
                                                        "type": "object",
                                                        "required": ["uri"],
                                                        "properties": {
                                                            "uri": {"type": "string", "minLength": 1}
                                                        },
                                                    },
                                                    "region": {
                                                        "type": "object",
                                                        "properties": {
                                                            "startLine": {"type": "integer", "minimum": 1}
                                                        },
                                                    },
                                                },
                                            },
                                            "logicalLocations": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "properties": {
                                                        "name": {"type": "string"},
                                                        "fullyQualifiedName": {"type": "string"},
                                                        "kind": {"type": "string"},
                                                    },
                                                },
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def all_findings() -> list[Any]:
    found = []
    for path in ALL_TRIGGERS:
        found += findings(load(path))
    return found


def test_text_groups_by_rule_and_summarises() -> None:
    found = all_findings()
    text = report.render_text(found, objects=42, live=False)
    headings = [line for line in text.splitlines() if line and not line.startswith(" ") and ": " in line]
    ids = [h.split(":")[0] for h in headings[:-1]]
    assert ids == [rule.id for rule in RULES if any(f.rule == rule.id for f in found)]
    counts = report.summary(found)
    assert (
        f"{len(found)} findings ({counts['error']} errors, {counts['warning']} warnings, "
        f"{counts['info']} info)" in text
    )
    assert "in 42 objects, 6 rules." in text
    assert "Not checked without --cluster: capability-without-rbac." in text
    assert "    why: " in text and "    fix: " in text


def test_text_without_findings() -> None:
    text = report.render_text([], objects=1, live=True)
    assert text == "no findings in 1 object, 6 rules.\n"


def test_json_round_trips_every_field() -> None:
    found = all_findings()
    document = json.loads(report.render_json(found, objects=7))
    assert document["tool"] == "remora-lint" and document["objects"] == 7
    assert document["summary"] == report.summary(found)
    assert len(document["findings"]) == len(found)
    first, finding = document["findings"][0], found[0]
    assert first["rule"] == finding.rule and first["severity"] == finding.severity.value
    assert first["objects"][0] == {
        "kind": finding.objects[0].kind,
        "namespace": finding.objects[0].namespace,
        "name": finding.objects[0].name,
    }
    assert {"message", "why", "fix", "sources", "details", "notes"} <= set(first)


def test_sarif_is_structurally_valid_and_consistent() -> None:
    found = all_findings()
    document = json.loads(report.render_sarif(found))
    jsonschema.validate(document, SARIF)
    run = document["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [rule.id for rule in RULES]
    assert len(run["results"]) == len(found)
    levels = {"info": "note", "warning": "warning", "error": "error"}
    for result, finding in zip(run["results"], found, strict=True):
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == finding.rule
        assert result["level"] == levels[finding.severity.value]
        uris = [loc["physicalLocation"]["artifactLocation"]["uri"] for loc in result["locations"]]
        assert uris and all(u.endswith(".yaml") and not u.startswith("/") for u in uris)
    fingerprints = [r["partialFingerprints"]["remoraFinding/v1"] for r in run["results"]]
    assert len(set(fingerprints)) == len(fingerprints)


def test_sarif_without_files_uses_logical_locations() -> None:
    [finding] = findings(
        load(MANIFESTS / "job-sidecar-never-completes/trigger/job-with-sql-proxy.yaml"),
        "job-sidecar-never-completes",
    )
    from dataclasses import replace

    document = json.loads(report.render_sarif([replace(finding, sources=())]))
    jsonschema.validate(document, SARIF)
    [location] = document["runs"][0]["results"][0]["locations"]
    assert location == {
        "logicalLocations": [
            {"name": "migrate", "fullyQualifiedName": "Job/shop/migrate", "kind": "resource"}
        ]
    }
