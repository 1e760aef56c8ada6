"""Both fast nesting checks agree with walking the parsed value, strings and escapes included."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common import jsonio
from common.jsonio import BadJSON, loads_bounded, nesting_depth, nests_deeper_than

# Strings full of the characters that could fool a byte-level count.
tricky_text = st.text(alphabet='{}[]"\\/,:ab\n\u2028', max_size=8)
values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | tricky_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(tricky_text, children, max_size=3),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(values, st.integers(0, 12), st.booleans())
def test_the_byte_check_matches_the_walk(value: Any, limit: int, indent: bool) -> None:
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else 0)
    assert nests_deeper_than(text, limit) == (nesting_depth(value, limit) > limit)


@settings(max_examples=300, deadline=None)
@given(values, st.integers(0, 12))
def test_the_serializer_check_matches_the_walk(value: Any, limit: int) -> None:
    assert jsonio._serializer_says_deeper(value, limit) == (nesting_depth(value, limit) > limit)


def test_the_serializer_check_is_exact_at_the_default_cap() -> None:
    assert jsonio._ORJSON_DEPTH > jsonio.MAX_DEPTH
    cap = jsonio.MAX_DEPTH
    for depth in (cap - 1, cap, cap + 1):
        value: Any = "leaf"
        for _ in range(depth):
            value = [value]
        expected = nesting_depth(value, cap + 10) > cap
        assert jsonio._serializer_says_deeper(value, cap) is expected
        assert nests_deeper_than(orjson.dumps(value), cap) is expected


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"1", 0),
        (b"[]", 1),
        (b'{"a": "[[[[["}', 1),
        (b'["\\"]]]]", [{}]]', 3),
        (b'["\\\\", [[]]]', 3),
        (b'[{"k\\"[": ["\\u005b"]}]', 3),
    ],
)
def test_known_depths(text: bytes, depth: int) -> None:
    assert not nests_deeper_than(text, depth)
    assert nests_deeper_than(text, depth - 1) if depth else True


def test_loads_bounded_names_the_cap() -> None:
    with pytest.raises(BadJSON, match="nests deeper than 3 levels"):
        loads_bounded(b"[[[[1]]]]", max_depth=3)
    assert loads_bounded("[[[1]]]", max_depth=3) == [[[1]]]
