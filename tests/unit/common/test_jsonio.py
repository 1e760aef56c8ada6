import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.jsonio import MAX_DEPTH, BadJSON, loads_bounded, nesting_depth

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@given(json_values)
def test_round_trips_what_orjson_writes(value: object) -> None:
    assert loads_bounded(orjson.dumps(value)) == value


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{", "malformed JSON"),
        (b'{"a": NaN}', "malformed JSON"),
        (b'{"a": Infinity}', "malformed JSON"),
        (b'"\\ud800"', "malformed JSON"),
        (b'{"a": "\xff"}', "malformed JSON"),
        (b"", "malformed JSON"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "deeper than"),
    ],
)
def test_bad_input_is_named(body: bytes, words: str) -> None:
    with pytest.raises(BadJSON, match=words):
        loads_bounded(body)


def test_size_cap_is_checked_before_parsing() -> None:
    with pytest.raises(BadJSON, match="over the limit of 10"):
        loads_bounded(b"[" + b"1," * 10 + b"1]", max_bytes=10)


def test_depth_cap_is_inclusive() -> None:
    exactly = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert loads_bounded(exactly) is not None


def test_nesting_depth_stops_early_past_the_limit() -> None:
    deep: list[object] = []
    node = deep
    for _ in range(5000):
        child: list[object] = []
        node.append(child)
        node = child
    assert nesting_depth(deep, 10) == 11
    assert nesting_depth({"a": [1, {"b": 2}]}, 10) == 3
    assert nesting_depth(7, 10) == 0
