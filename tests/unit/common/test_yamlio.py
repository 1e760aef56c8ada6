"""Bounded YAML: documents deeper than the cap are refused by name, however deep they go."""

from __future__ import annotations

import pytest

from common.jsonio import MAX_DEPTH
from common.yamlio import BadYAML, load_documents


def nested(levels: int) -> str:
    """A mapping holding `levels - 1` nested flow lists: `levels` containers in all."""
    return "a: " + "[" * (levels - 1) + "]" * (levels - 1) + "\n"


def test_nesting_up_to_the_cap_is_read() -> None:
    [document] = load_documents(nested(MAX_DEPTH))
    assert list(document) == ["a"]


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 300, 2_000])  # 300: past orjson's own cap (254)
def test_nesting_past_the_cap_is_named(levels: int) -> None:
    with pytest.raises(BadYAML, match=f"^YAML nests deeper than {MAX_DEPTH} levels$"):
        load_documents(nested(levels))


def test_aliases_are_refused() -> None:
    with pytest.raises(BadYAML, match="aliases are not supported"):
        load_documents("a: &x [1]\nb: *x\n")
