"""JSON in and out with bounds: every external body goes through `loads_bounded`.

orjson rejects invalid UTF-8, lone surrogates, NaN and Infinity on its own; this module
adds the size and nesting caps and turns every failure into one `BadJSON` that names it.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Final

import orjson

MAX_BODY_BYTES: Final = 3 * 1024 * 1024
# Deep enough for any real object (a CRD's schema nests two levels per property level), and
# shallow enough that code recursing over a value stays far from Python's recursion limit.
MAX_DEPTH: Final = 200

dumps = orjson.dumps


class BadJSON(ValueError):
    """The input is not acceptable JSON; the message says why, in one line."""


def loads_bounded(body: bytes | str, *, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    if len(body) > max_bytes:
        raise BadJSON(f"body is {len(body)} bytes, over the limit of {max_bytes}")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadJSON(f"malformed JSON: {_first_line(str(exc))}") from None
    verdict = _serializer_says_deeper(value, max_depth) if 0 <= max_depth < _ORJSON_DEPTH else None
    if verdict is None:  # a limit the serializer cannot count to, or it failed for another reason
        verdict = nests_deeper_than(body if isinstance(body, bytes) else body.encode(), max_depth)
    if verdict:
        raise BadJSON(f"JSON nests deeper than {max_depth} levels")
    return value


# The fast check lets orjson count: its serializer refuses nesting beyond a fixed depth
# (probed below, 254 today). Serializing the value at the bottom of `depth - limit` lists
# fails exactly when the value nests deeper than `limit`; it costs one orjson.dumps, about
# a quarter of orjson.loads, where walking the value in Python costs twice orjson.loads.
def _probe_orjson_depth() -> int:
    """The deepest nesting orjson.dumps accepts, or 0 if it has no limit below 4096."""
    value: Any = []
    for depth in range(1, 4097):
        try:
            orjson.dumps(value)
        except orjson.JSONEncodeError:
            return depth - 1
        value = [value]
    return 0


_ORJSON_DEPTH: Final = _probe_orjson_depth()


class _Chains(threading.local):
    """Per thread, per limit: the prebuilt lists the value is put at the bottom of."""

    def __init__(self) -> None:
        self.by_limit: dict[int, tuple[list[Any], list[Any]]] = {}


_CHAINS: Final = _Chains()


def _serializer_says_deeper(value: Any, limit: int) -> bool | None:
    chain = _CHAINS.by_limit.get(limit)
    if chain is None:
        bottom: list[Any] = [None]
        top = bottom
        for _ in range(_ORJSON_DEPTH - limit - 1):
            top = [top]
        chain = _CHAINS.by_limit[limit] = (top, bottom)
    top, bottom = chain
    bottom[0] = value
    try:
        orjson.dumps(top)
    except orjson.JSONEncodeError as exc:
        return True if "ecursion" in str(exc) else None
    finally:
        bottom[0] = None
    return False


# For the depth of valid JSON only brackets outside strings matter, and their kind does not:
# keep `{`, `}` and `"` (mapping `[`/`]` to `{`/`}`), drop string contents, then peel the
# innermost empty pairs one level per pass. All of it runs in C (bytes.translate/replace):
# about 4x cheaper than walking the parsed value for a typical Pod review.
_BRACKETS: Final = bytes.maketrans(b"[]", b"{}")
_NOT_BRACKET_OR_QUOTE: Final = bytes(b for b in range(256) if b not in b'{}[]"')
_STRING: Final = re.compile(rb'"[^"]*"')
_ESCAPE: Final = re.compile(rb"\\.", re.DOTALL)


def nests_deeper_than(text: bytes, limit: int) -> bool:
    """Whether valid JSON `text` nests containers more than `limit` levels deep."""
    if b'\\"' in text:
        text = _ESCAPE.sub(b"", text)  # an escaped quote must not end its string (other escapes cannot)
    skeleton = text.translate(_BRACKETS, _NOT_BRACKET_OR_QUOTE)
    if b'"' in skeleton:
        # Removing adjacent quotes drops empty strings or merges neighbours; both keep strings strings.
        skeleton = skeleton.replace(b'""', b"")
        if b'"' in skeleton:
            skeleton = _STRING.sub(b"", skeleton)
    for _ in range(limit):
        if not skeleton:
            return False
        skeleton = skeleton.replace(b"{}", b"")
    return bool(skeleton)


def nesting_depth(value: Any, limit: int) -> int:
    """Depth of containers in `value`, counting stops once `limit` is exceeded (iterative, no recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return deepest


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else "unknown error"
