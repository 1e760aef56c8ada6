"""JSON in and out with bounds: every external body goes through `loads_bounded`.

orjson rejects invalid UTF-8, lone surrogates, NaN and Infinity on its own; this module
adds the size and nesting caps and turns every failure into one `BadJSON` that names it.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

MAX_BODY_BYTES: Final = 3 * 1024 * 1024
MAX_DEPTH: Final = 64

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
    depth = nesting_depth(value, max_depth)
    if depth > max_depth:
        raise BadJSON(f"JSON nests deeper than {max_depth} levels")
    return value


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
