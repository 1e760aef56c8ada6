"""agent/openapi.yaml and the broker say the same thing: same routes, same codes, answers fit the schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import TOKEN, LiveBroker
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from starlette.routing import Route

from agent import protocol
from agent.broker.app import create_app
from agent.broker.store import Store

SPEC_PATH = Path(__file__).parents[3] / "agent" / "openapi.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
REGISTRY: Registry[Any] = Registry().with_resource("urn:broker", DRAFT202012.create_resource(SPEC))


def schema_check(ref: str, value: Any) -> None:
    validator = Draft202012Validator({"$ref": f"urn:broker#/components/{ref}"}, registry=REGISTRY)
    errors = sorted(validator.iter_errors(value), key=str)
    assert not errors, f"{ref}: {errors[0].message} at {list(errors[0].absolute_path)}"


def test_the_document_is_openapi_3_1() -> None:
    assert SPEC["openapi"].startswith("3.1")
    assert SPEC["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_routes_match_the_document(tmp_path: Path) -> None:
    app = create_app(Store(tmp_path / "db"), "x")
    served = {
        (method.lower(), route.path.replace("{item_id}", "{id}"))
        for route in app.routes
        if isinstance(route, Route)
        for method in (route.methods or set())
        if method != "HEAD"
    }
    documented = {
        (method, path)
        for path, ops in SPEC["paths"].items()
        for method in ops
        if method in ("get", "put", "post", "delete", "patch")
    }
    assert served == documented


def test_error_codes_match_the_document() -> None:
    codes = {v for k, v in vars(protocol).items() if k.startswith("E_")}
    assert set(SPEC["components"]["schemas"]["ErrorCode"]["enum"]) == codes


def test_answers_fit_the_schemas(live_broker: LiveBroker) -> None:
    with httpx.Client(base_url=live_broker.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        created = http.put("/v1/items/a-1", json={"capability": "build", "parameters": {"x": [1]}})
        assert created.status_code == 201
        schema_check("schemas/Item", created.json()["item"])
        claim = http.post("/v1/claims", json={"agent": "pod-1", "capabilities": ["build"], "max_items": 5})
        for item in claim.json()["items"]:
            schema_check("schemas/ClaimedItem", item)
        token = claim.json()["items"][0]["lease"]["token"]
        http.post("/v1/items/a-1/cancel", json={"reason": "r"})
        extended = http.post("/v1/items/a-1/extend", json={"token": token})
        schema_check("schemas/Item", extended.json()["item"])
        done = http.post("/v1/items/a-1/outcome", json={"token": token, "outcome": "failed", "details": {}})
        schema_check("schemas/Item", done.json()["item"])
        listing = http.get("/v1/items").json()
        for item in listing["items"]:
            schema_check("schemas/Item", item)
        for bad in (
            http.put("/v1/items/a-1", content=b"{"),
            http.get("/v1/items/nope"),
            http.post("/v1/items/a-1/extend", json={"token": token}),
            http.get("/v1/items", headers={"Authorization": "Bearer wrong"}),
        ):
            assert bad.status_code >= 400
            schema_check("schemas/Error", bad.json())


@pytest.mark.parametrize("name", ["ItemId", "Capability", "AgentName"])
def test_name_patterns_match_the_protocol_module(name: str) -> None:
    pattern = {
        "ItemId": protocol.ITEM_ID_PATTERN,
        "Capability": protocol.CAPABILITY_PATTERN,
        "AgentName": protocol.AGENT_PATTERN,
    }[name]
    assert SPEC["components"]["schemas"][name]["pattern"] == f"^{pattern.pattern}$"
