"""The CRD manifests: names from common.names, structural schemas, CEL immutability, printer columns."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from common import names

CRD_DIR = Path(__file__).resolve().parents[3] / "operators" / "crds"
CONDITION_TYPES = ["Accepted", "Running", "Succeeded", "Failed"]


@functools.cache
def _parsed(path: Path) -> str:
    return json.dumps(yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))


def load(kind: names.Kind) -> dict[str, Any]:
    """A fresh copy of the parsed CRD (parsed once: YAML is slow)."""
    return json.loads(_parsed(CRD_DIR / f"{kind.singular}.yaml"))


def version(crd: dict[str, Any]) -> dict[str, Any]:
    (only,) = crd["spec"]["versions"]
    return only


def schema(crd: dict[str, Any]) -> dict[str, Any]:
    return version(crd)["schema"]["openAPIV3Schema"]


ALL = pytest.mark.parametrize("kind", names.KINDS, ids=lambda k: k.kind)


def test_the_folder_holds_exactly_the_three_crds() -> None:
    assert sorted(p.name for p in CRD_DIR.glob("*.yaml")) == sorted(f"{k.singular}.yaml" for k in names.KINDS)


@ALL
def test_names_match_the_design(kind: names.Kind) -> None:
    crd = load(kind)
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1" and crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{kind.plural}.{names.GROUP}"
    spec = crd["spec"]
    assert spec["group"] == names.GROUP and spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == kind.kind
    assert spec["names"]["plural"] == kind.plural and spec["names"]["singular"] == kind.singular
    assert spec["names"]["shortNames"] == [kind.short_name]
    v = version(crd)
    assert v["name"] == names.VERSION and v["served"] and v["storage"]
    assert v["subresources"] == {"status": {}}


def walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for name, child in (node.get("properties") or {}).items():
        out += walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        out += walk(node["items"], f"{path}[]")
    return out


@ALL
def test_schema_is_structural(kind: names.Kind) -> None:
    for path, node in walk(schema(load(kind))):
        int_or_string = node.get("x-kubernetes-int-or-string") is True
        if int_or_string:
            assert "type" not in node and node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
            continue
        assert node.get("type") in {"object", "array", "string", "integer", "boolean", "number"}, path
        assert not ("properties" in node and "additionalProperties" in node), path
        for junctor in ("anyOf", "allOf", "oneOf", "not"):
            assert junctor not in node, f"{path}: {junctor} outside int-or-string"
        if node["type"] == "array":
            assert "maxItems" in node, f"{path}: unbounded list (CEL cost)"
        if node["type"] == "string" and "enum" not in node and "format" not in node:
            assert "maxLength" in node or path in {".apiVersion", ".kind"}, f"{path}: unbounded string"


def rules(node: dict[str, Any]) -> list[str]:
    return [r["rule"] for r in node.get("x-kubernetes-validations") or []]


@ALL
def test_spec_is_immutable_except_cancel(kind: names.Kind) -> None:
    spec = schema(load(kind))["properties"]["spec"]
    for name, field in spec["properties"].items():
        if name == "cancel":
            assert rules(field) == ["self || !oldSelf"]  # true may not go back to false
            assert field["default"] is False
        else:
            assert "self == oldSelf" in rules(field), f"spec.{name} is not immutable"
    (presence,) = rules(spec)
    optional = [
        n for n, f in spec["properties"].items() if n not in spec.get("required", []) and "default" not in f
    ]
    terms = presence.split(" && ")
    assert sorted(terms) == sorted(f"has(self.{n}) == has(oldSelf.{n})" for n in optional)


@ALL
def test_every_cel_rule_is_well_formed(kind: names.Kind) -> None:
    for path, node in walk(schema(load(kind))):
        for entry in node.get("x-kubernetes-validations") or []:
            rule = entry["rule"]
            assert entry.get("message"), f"{path}: a rule without a message"
            assert rule.count("(") == rule.count(")"), f"{path}: unbalanced {rule}"
            identifiers = set(re.findall(r"\b(self|oldSelf)\b", rule))
            assert identifiers and identifiers <= {"self", "oldSelf"}, f"{path}: {rule}"
            assert not re.search(r"[^=!<>]=[^=]", rule.replace("==", "").replace("!=", "")), rule


@ALL
def test_status_has_phase_conditions_times_and_result(kind: names.Kind) -> None:
    status = schema(load(kind))["properties"]["status"]["properties"]
    assert status["phase"]["enum"] == ["Pending", "Running", "Succeeded", "Failed", "Unknown"]
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map" and conditions["x-kubernetes-list-map-keys"] == [
        "type"
    ]
    item = conditions["items"]
    assert item["properties"]["type"]["enum"] == CONDITION_TYPES
    assert set(item["properties"]) == {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }
    for field in ("startTime", "completionTime"):
        assert status[field]["format"] == "date-time"
    assert "observedGeneration" in status and "result" in status
    if kind.kind == "TestRun":
        assert {"passed", "failed", "skipped", "summary"} <= set(status["result"]["properties"])


def resolve(schema_node: dict[str, Any], json_path: str) -> bool:
    """Whether a printer column's simple jsonPath names a field the schema declares."""
    node = schema_node
    for raw in re.findall(r"\.((?:[^.\\\[]|\\.)+)", json_path.split("[?", maxsplit=1)[0]):
        part = raw.replace("\\.", ".")
        if node.get("type") == "object" and part in (node.get("properties") or {}):
            node = node["properties"][part]
            continue
        # metadata is not described by CRD schemas
        return part in ("metadata", "labels", "creationTimestamp") or "/" in part
    return True


@ALL
def test_printer_columns_point_at_declared_fields(kind: names.Kind) -> None:
    columns = version(load(kind))["additionalPrinterColumns"]
    names_seen = [c["name"] for c in columns]
    assert len(names_seen) == len(set(names_seen))
    assert names_seen[0] == "Phase" and names_seen[-1] == "Age"
    for column in columns:
        assert column["type"] in {"string", "integer", "date", "number", "boolean"}
        assert resolve(schema(load(kind)), column["jsonPath"]), column


def test_migration_names_its_secret_without_a_namespace() -> None:
    ref = schema(load(names.KIND_BY_NAME["DatabaseMigration"]))["properties"]["spec"]["properties"][
        "databaseSecretRef"
    ]
    assert set(ref["properties"]) == {"name"} and ref["required"] == ["name"]


def validator(kind: names.Kind) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(schema(load(kind)))


GOOD = {
    "BuildRequest": {
        "image": "registry.example/builder:1",
        "command": ["make"],
        "args": ["all"],
        "source": {"git": {"url": "https://git.example/app.git", "revision": "v1.2.3"}},
        "env": [{"name": "GOFLAGS", "value": "-mod=vendor"}],
        "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": 1}},
        "timeoutSeconds": 600,
        "retryLimit": 1,
    },
    "TestRun": {"image": "registry.example/tests:1", "args": ["-q"], "cancel": True},
    "DatabaseMigration": {"image": "registry.example/migrate:1", "databaseSecretRef": {"name": "orders-db"}},
}


@ALL
def test_good_specs_validate(kind: names.Kind) -> None:
    obj = {
        "apiVersion": names.API_VERSION,
        "kind": kind.kind,
        "metadata": {"name": "x"},
        "spec": GOOD[kind.kind],
    }
    validator(kind).validate(obj)


@pytest.mark.parametrize(
    ("spec_change", "why"),
    [
        ({"image": ""}, "image"),
        ({"image": "has space"}, "image"),
        ({"timeoutSeconds": 0}, "timeoutSeconds"),
        ({"timeoutSeconds": 86401}, "timeoutSeconds"),
        ({"retryLimit": 11}, "retryLimit"),
        ({"source": {"git": {"url": "--upload-pack=evil"}}}, "url"),
        ({"source": {"git": {"url": "https://x", "revision": "-evil"}}}, "revision"),
        ({"env": [{"name": "1BAD"}]}, "name"),
        ({"resources": {"limits": {"memory": "lots"}}}, "memory"),
        ({"command": ["x"] * 33}, "command"),
    ],
)
def test_bad_build_specs_are_rejected(spec_change: dict[str, Any], why: str) -> None:
    kind = names.KIND_BY_NAME["BuildRequest"]
    obj = {
        "apiVersion": names.API_VERSION,
        "kind": kind.kind,
        "spec": {**GOOD["BuildRequest"], **spec_change},
    }
    errors = list(validator(kind).iter_errors(obj))
    assert errors and any(why in "/".join(map(str, e.absolute_path)) or why in e.message for e in errors)


def test_a_migration_without_a_database_is_rejected() -> None:
    kind = names.KIND_BY_NAME["DatabaseMigration"]
    errors = list(validator(kind).iter_errors({"spec": {"image": "x"}}))
    assert any("databaseSecretRef" in e.message for e in errors)


@ALL
def test_the_chart_ships_the_same_crds(kind: names.Kind) -> None:
    chart_copy = CRD_DIR.parents[1] / "charts" / "remora" / "crds" / f"{kind.singular}.yaml"
    if not chart_copy.exists():
        pytest.skip("the chart has no copy of the CRDs")
    assert chart_copy.read_bytes() == (CRD_DIR / f"{kind.singular}.yaml").read_bytes(), (
        f"{chart_copy} differs from operators/crds/: copy it again"
    )
