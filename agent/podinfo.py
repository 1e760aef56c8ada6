"""What the agent knows about its own pod: name, namespace, UID and the capabilities it may use.

Capabilities come from the pod's annotations through a downward-API file. The kubelet
writes that file one `key="value"` line per annotation, the value quoted the way Go's
strconv.Quote does it, so the parser below undoes exactly those escapes.

"What its sidecars can do" is the requested list (remora.dev/capabilities) narrowed to
what the injector reports it injected (remora.dev/status), when that report is there.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson

from common.names import CAPABILITIES_ANNOTATION, KIND_BY_CAPABILITY, STATUS_ANNOTATION, parse_capability_list

log = logging.getLogger("remora.agent")

MAX_ANNOTATIONS_FILE_BYTES: Final = 1024 * 1024  # the API caps all annotations of an object at 256 KiB
_SIMPLE_ESCAPES: Final = {
    "a": 7,
    "b": 8,
    "f": 12,
    "n": 10,
    "r": 13,
    "t": 9,
    "v": 11,
    "\\": 92,
    '"': 34,
    "'": 39,
}
_HEX_ESCAPE_DIGITS: Final = {"x": 2, "u": 4, "U": 8}


class PodInfoError(ValueError):
    """The pod's own information cannot be read or used; the message names the problem."""


@dataclass(frozen=True)
class PodIdentity:
    name: str
    namespace: str
    uid: str


def read_annotations_file(path: str | Path) -> dict[str, str]:
    try:
        raw = Path(path).read_bytes()[: MAX_ANNOTATIONS_FILE_BYTES + 1]
    except OSError as exc:
        raise PodInfoError(f"cannot read annotations file {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_ANNOTATIONS_FILE_BYTES:
        raise PodInfoError(f"annotations file {path} is larger than {MAX_ANNOTATIONS_FILE_BYTES} bytes")
    try:
        return parse_annotations(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise PodInfoError(f"annotations file {path} is not UTF-8") from None
    except PodInfoError as exc:
        raise PodInfoError(f"annotations file {path}: {exc}") from None


def parse_annotations(text: str) -> dict[str, str]:
    """Parse the downward API's `key="go-quoted value"` lines (blank lines are skipped)."""
    annotations: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, quoted = line.partition("=")
        if not sep or not key:
            raise PodInfoError(f'line {number} is not key="value"')
        try:
            annotations[key] = go_unquote(quoted)
        except PodInfoError as exc:
            raise PodInfoError(f"line {number} ({key}): {exc}") from None
    return annotations


def go_unquote(quoted: str) -> str:
    """Undo Go's strconv.Quote: a double-quoted string with backslash escapes."""
    if len(quoted) < 2 or quoted[0] != '"' or quoted[-1] != '"':
        raise PodInfoError("the value is not a double-quoted string")
    body = quoted[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        char = body[i]
        if char == '"':
            raise PodInfoError("unescaped quote inside the value")
        if char != "\\":
            out += char.encode("utf-8")
            i += 1
            continue
        if i + 1 >= len(body):
            raise PodInfoError("the value ends in a lone backslash")
        code = body[i + 1]
        if code in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[code])
            i += 2
        elif code in _HEX_ESCAPE_DIGITS:
            width = _HEX_ESCAPE_DIGITS[code]
            value = _number(body[i + 2 : i + 2 + width], width, 16)
            # \x is one raw byte (Go quotes invalid UTF-8 that way); \u and \U are code points.
            out += bytes([value]) if code == "x" else _code_point(value)
            i += 2 + width
        elif code in "01234567":
            out.append(_number(body[i + 1 : i + 4], 3, 8) & 0xFF)
            i += 4
        else:
            raise PodInfoError(f"unknown escape \\{code}")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise PodInfoError("the value is not UTF-8 once unquoted") from None


def _number(digits: str, width: int, base: int) -> int:
    try:
        if len(digits) != width:
            raise ValueError
        return int(digits, base)
    except ValueError:
        raise PodInfoError(f"bad escape digits {digits!r}") from None


def _code_point(value: int) -> bytes:
    try:
        return chr(value).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        raise PodInfoError(f"escape names no character: U+{value:X}") from None


def capabilities_from_annotations(annotations: Mapping[str, str]) -> list[str]:
    """The capabilities this pod asked for and (per the injector's status) got sidecars for."""
    requested = parse_capability_list(annotations.get(CAPABILITIES_ANNOTATION, ""))
    if not requested:
        raise PodInfoError(f"the pod has no {CAPABILITIES_ANNOTATION} annotation naming capabilities")
    injected = _injected(annotations.get(STATUS_ANNOTATION))
    if injected is None:
        log.warning(
            "no usable %s annotation: assuming sidecars for %s", STATUS_ANNOTATION, ", ".join(requested)
        )
        return known_capabilities(requested)
    missing = [c for c in requested if c not in injected]
    if missing:
        log.warning("no sidecar was injected for %s: not claiming that work", ", ".join(missing))
    usable = [c for c in requested if c in injected]
    if not usable:
        raise PodInfoError(f"no sidecar was injected for any requested capability ({', '.join(requested)})")
    return known_capabilities(usable)


def known_capabilities(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in KIND_BY_CAPABILITY]
    if unknown:
        raise PodInfoError(
            f"unknown capability {unknown[0]!r} (this agent knows {', '.join(sorted(KIND_BY_CAPABILITY))})"
        )
    if not names:
        raise PodInfoError("no capabilities given")
    return names


def _injected(raw: str | None) -> set[str] | None:
    if raw is None:
        return None
    try:
        status = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    caps = status.get("capabilities") if isinstance(status, dict) else None
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        return None
    return set(caps)
