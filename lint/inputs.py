"""Read manifests: files, folders (recursively) and stdin; multi-document YAML and Lists.

Anything unreadable raises InputError with one line that names the file (and the
document) and the problem. Sizes, nesting and YAML alias expansion are bounded, so a
hostile file cannot make the linter hang or eat the machine.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from common import jsonio
from lint.model import Resource, Source

MAX_FILE_BYTES: Final = 16 * 1024 * 1024
MAX_FILES: Final = 10_000
MAX_TOTAL_BYTES: Final = 256 * 1024 * 1024
# Nodes a document may expand to through YAML aliases ("billion laughs" stops here).
MAX_DEPTH: Final = jsonio.MAX_DEPTH
MAX_NODES: Final = 1_000_000
MANIFEST_SUFFIXES: Final = (".yaml", ".yml", ".json")
STDIN: Final = "-"

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class InputError(Exception):
    """The input cannot be read; the message is one line naming the file and the problem."""


def load(paths: Sequence[str]) -> list[Resource]:
    """Every object in the files and folders named, Lists expanded, in a stable order."""
    resources: list[Resource] = []
    total = 0
    for path in _expand(paths):
        text = _read(path)
        total += len(text)
        if total > MAX_TOTAL_BYTES:
            raise InputError(f"{_name(path)}: the inputs add up to more than {MAX_TOTAL_BYTES // 2**20} MiB")
        resources.extend(load_text(text, path))
    return resources


def load_text(text: str, path: str) -> list[Resource]:
    """The objects of one YAML (or JSON) stream; `path` only names it in errors and sources."""
    resources: list[Resource] = []
    for number, (node, document) in enumerate(_documents(text, path), start=1):
        if document is None:  # an empty document, e.g. after a trailing '---'
            continue
        line = node.start_mark.line + 1
        where = f"{_name(path)}: document {number} (line {line})"
        resources.extend(_objects(document, node, path, where))
    return resources


def _expand(paths: Sequence[str]) -> list[str]:
    files: list[str] = []
    for path in paths:
        if path == STDIN:
            files.append(path)
        elif os.path.isdir(path):
            found = sorted(
                str(p) for p in Path(path).rglob("*") if p.suffix.lower() in MANIFEST_SUFFIXES and p.is_file()
            )
            if not found:
                raise InputError(f"{path}: folder holds no .yaml, .yml or .json files")
            files.extend(found)
        elif os.path.exists(path):
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
        if len(files) > MAX_FILES:
            raise InputError(f"{path}: more than {MAX_FILES} files to read; name fewer")
    return files


def _read(path: str) -> str:
    try:
        if path == STDIN:
            data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{_name(path)}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{_name(path)}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    if b"\x00" in data:
        raise InputError(f"{_name(path)}: binary data, not a YAML or JSON manifest")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{_name(path)}: not UTF-8 text (bad byte at offset {exc.start})") from None


def _name(path: str) -> str:
    return "<stdin>" if path == STDIN else path


def _documents(text: str, path: str) -> Iterator[tuple[yaml.Node, Any]]:
    """(node, decoded document) for each document of the stream; nodes know their lines."""
    _check_depth(text, path)
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            _check_size(node, _name(path), node.start_mark.line + 1)
            yield node, loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise InputError(f"{_name(path)}: invalid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise InputError(f"{_name(path)}: YAML nests too deeply to read") from None
    finally:
        loader.dispose()


_OPEN: Final = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSE: Final = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def _check_depth(text: str, path: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH from the parser's events, before any tree is built:
    the C composer recurses per level and overflows the stack near 50,000 levels."""
    parser = _Loader(text)
    depth = 0
    try:
        while parser.check_event():
            event = parser.get_event()
            if isinstance(event, _OPEN):
                depth += 1
                if depth > MAX_DEPTH:
                    line = event.start_mark.line + 1 if event.start_mark else 0
                    raise InputError(f"{_name(path)}: nests deeper than {MAX_DEPTH} levels at line {line}")
            elif isinstance(event, _CLOSE):
                depth -= 1
    except yaml.YAMLError as exc:
        if isinstance(exc, yaml.MarkedYAMLError) and "nesting depth" in str(exc.problem or ""):
            # libyaml (PyYAML >= 6.0.4) stops at its own depth cap while it looks ahead
            mark = exc.problem_mark
            raise InputError(
                f"{_name(path)}: nests deeper than {MAX_DEPTH} levels at line {mark.line + 1 if mark else 0}"
            ) from None
        raise InputError(f"{_name(path)}: invalid YAML: {_yaml_problem(exc)}") from None
    finally:
        parser.dispose()


def _check_size(root: yaml.Node, path: str, line: int) -> None:
    """Count the nodes a document expands to, aliases included, and stop at MAX_NODES."""
    count, stack = 0, [root]
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise InputError(f"{path}: document at line {line} expands to more than {MAX_NODES} nodes")
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append(key)
                stack.append(value)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed"
        if mark is not None:
            return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
        return problem
    return str(exc).splitlines()[0] if str(exc) else "malformed"


def _objects(document: Any, node: yaml.Node, path: str, where: str) -> Iterator[Resource]:
    """The object a document holds, or the items of a List (nested Lists included), each
    with the line it starts on."""
    if not isinstance(document, dict):
        raise InputError(f"{where}: a {_type_name(document)}, not a Kubernetes object")
    kind, api_version = document.get("kind"), document.get("apiVersion")
    if not isinstance(kind, str) or not kind:
        raise InputError(f"{where}: object has no kind")
    if not isinstance(api_version, str) or not api_version:
        raise InputError(f"{where}: {kind} has no apiVersion")
    if kind == "List" or (kind.endswith("List") and "items" in document):
        items = document.get("items")
        if items is None:
            return
        if not isinstance(items, list):
            raise InputError(f"{where}: {kind} items is a {_type_name(items)}, not a list")
        item_nodes = _items_node(node)
        for index, item in enumerate(items):
            item_node = item_nodes[index] if index < len(item_nodes) else node
            yield from _objects(item, item_node, path, f"{where}, item {index + 1}")
        return
    if not isinstance(document.get("metadata", {}), dict):
        raise InputError(f"{where}: {kind} metadata is a {_type_name(document['metadata'])}, not a mapping")
    yield Resource(document, Source(_name(path), node.start_mark.line + 1))


def _items_node(node: yaml.Node) -> list[yaml.Node]:
    """The nodes of a List's items, for their lines ([] when the shape is unexpected)."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if (
                isinstance(key, yaml.ScalarNode)
                and key.value == "items"
                and isinstance(value, yaml.SequenceNode)
            ):
                return list(value.value)
    return []


def _type_name(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__
