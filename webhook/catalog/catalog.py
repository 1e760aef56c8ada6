"""The capability catalog: what sidecar each capability gets, checked before it is used.

A catalog is YAML (see default-catalog.yaml beside this file). Loading it validates it
against schema.json and a few rules a schema cannot say, and gives it a stable content
hash: the same catalog, however its YAML is written, always has the same hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Final

import jsonschema
import orjson

from common.names import KIND_BY_CAPABILITY
from common.yamlio import BadYAML, load_documents

MAX_CATALOG_BYTES: Final = 1024 * 1024
BUILT_IN: Final = "built-in default catalog"


class CatalogError(ValueError):
    """A catalog that cannot be used; the message names the source and the field."""


@dataclass(frozen=True, eq=False)
class Capability:
    """One catalog entry: the sidecar that serves a capability (compared by identity, cheap to key on)."""

    name: str
    kind: str
    image: str
    command: tuple[str, ...]
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    resources: dict[str, dict[str, str]] = field(default_factory=dict)
    image_pull_policy: str | None = None
    run_as_user: int = 65532
    run_as_group: int = 65532
    # Where the operator serves /readyz; None: the sidecar gets no probes.
    probe_port: int | None = None


@dataclass(frozen=True, eq=False)
class Catalog:
    """A checked catalog; compared by identity (each load is a new one), so it can key caches."""

    capabilities: dict[str, Capability]
    hash: str
    source: str

    def names(self) -> list[str]:
        return sorted(self.capabilities)


def parse_catalog(text: str | bytes, source: str) -> Catalog:
    """A checked Catalog from YAML text, or CatalogError naming the source and the first problem."""
    try:
        documents = load_documents(text, max_bytes=MAX_CATALOG_BYTES)
    except BadYAML as exc:
        raise CatalogError(f"{source}: {exc}") from None
    if len(documents) != 1:
        raise CatalogError(f"{source}: a catalog is exactly one YAML document, found {len(documents)}")
    return catalog_from_document(documents[0], source)


def catalog_from_document(document: Any, source: str) -> Catalog:
    problem = _schema_problem(document) or _rule_problem(document)
    if problem:
        raise CatalogError(f"{source}: {problem}")
    capabilities = {name: _capability(name, entry) for name, entry in document["capabilities"].items()}
    return Catalog(capabilities=capabilities, hash=content_hash(document), source=source)


def content_hash(document: Any) -> str:
    """sha256 over the canonical JSON of the catalog (sorted keys), shortened to 16 hex digits."""
    canonical = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:16]


@cache
def default_catalog() -> Catalog:
    text = resources.files(__package__).joinpath("default-catalog.yaml").read_bytes()
    return parse_catalog(text, BUILT_IN)


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(resources.files(__package__).joinpath("schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _schema_problem(document: Any) -> str | None:
    errors = sorted(_validator().iter_errors(document), key=lambda e: (list(e.absolute_path), e.message))
    if not errors:
        return None
    best = jsonschema.exceptions.best_match(errors)
    where = _field(best.absolute_path)
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{where}: {_short(best.message)}{more}"


def _rule_problem(document: dict[str, Any]) -> str | None:
    """What the schema cannot say: each capability reconciles its own kind, on its own probe port."""
    ports: dict[int, str] = {}
    for name, entry in sorted(document["capabilities"].items()):
        expected = KIND_BY_CAPABILITY[name].kind
        if entry["kind"] != expected:
            return f"capabilities.{name}.kind: capability {name!r} reconciles {expected}, not {entry['kind']}"
        port = entry.get("probePort")
        if port is not None:
            # The sidecars of one pod share its network: two on one port cannot both start.
            if port in ports:
                return f"capabilities.{name}.probePort: {port} is already the probe port of {ports[port]!r}"
            ports[port] = name
    return None


def _capability(name: str, entry: dict[str, Any]) -> Capability:
    return Capability(
        name=name,
        kind=entry["kind"],
        image=entry["image"],
        command=tuple(entry["command"]),
        args=tuple(entry.get("args", ())),
        env=tuple((item["name"], item["value"]) for item in entry.get("env", ())),
        resources={part: dict(values) for part, values in entry["resources"].items()},
        image_pull_policy=entry.get("imagePullPolicy"),
        run_as_user=entry.get("runAsUser", 65532),
        run_as_group=entry.get("runAsGroup", 65532),
        probe_port=entry.get("probePort"),
    )


def _field(path: Any) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in path]
    return "".join(parts).lstrip(".") or "the catalog"


def _short(message: str) -> str:
    return message if len(message) <= 200 else message[:197] + "..."
