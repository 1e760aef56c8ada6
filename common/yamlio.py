"""YAML in with bounds, for manifests and configuration files.

Documents come back as plain JSON values (dicts, lists, str, int, float, bool, None):
YAML aliases are refused (they let a few bytes expand into gigabytes), timestamps stay
strings as Kubernetes reads them, and the same size and nesting caps as JSON apply.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
import yaml

from common.jsonio import MAX_DEPTH, BadJSON, loads_bounded, nesting_depth

MAX_YAML_BYTES: Final = 8 * 1024 * 1024


class BadYAML(ValueError):
    """The text is not acceptable YAML; the message says why, in one line."""


class _Loader(yaml.SafeLoader):
    """SafeLoader without aliases and without timestamp or binary conversion."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise BadYAML(f"YAML aliases are not supported (line {mark.line + 1})")
        return super().compose_node(parent, index)


# Kubernetes reads `2024-01-01` as a string; keep it one so every document is plain JSON.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_documents(
    text: str | bytes, *, max_bytes: int = MAX_YAML_BYTES, max_depth: int = MAX_DEPTH
) -> list[Any]:
    """Every non-empty document of a (multi-document) YAML text, as plain JSON values."""
    if len(text) > max_bytes:
        raise BadYAML(f"input is {len(text)} bytes, over the limit of {max_bytes}")
    try:
        documents = [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
    except yaml.YAMLError as exc:
        raise BadYAML(_describe(exc)) from None
    except RecursionError:
        raise BadYAML(f"YAML nests deeper than {max_depth} levels") from None
    try:
        # One trip through JSON proves the value is plain JSON and applies the nesting cap.
        return [loads_bounded(orjson.dumps(doc), max_bytes=1 << 62, max_depth=max_depth) for doc in documents]
    except (TypeError, orjson.JSONEncodeError) as exc:
        # orjson's serializer has a nesting cap of its own (254 levels), above the usual max_depth.
        if any(nesting_depth(doc, max_depth) > max_depth for doc in documents):
            raise BadYAML(f"YAML nests deeper than {max_depth} levels") from None
        raise BadYAML(f"YAML holds a value JSON cannot: {exc}") from None
    except BadJSON as exc:
        raise BadYAML(str(exc).replace("JSON", "YAML")) from None


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes a shared object out in full each time: no anchors, no aliases,
    so that what Remora prints reads back through `load_documents`."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_documents(documents: list[Any]) -> str:
    """YAML, one document per value, keys in the order they came."""
    return "---\n".join(
        yaml.dump(
            doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1 << 16, allow_unicode=True
        )
        for doc in documents
    )


def _describe(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return f"invalid YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
