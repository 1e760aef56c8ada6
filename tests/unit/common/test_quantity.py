"""Kubernetes quantities: the suffixes, the exponent form, and everything that is not one."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common import quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", "0.1"),
        ("1", "1"),
        ("1.5", "1.5"),
        (".5", "0.5"),
        ("2", "2"),
        ("128Mi", str(128 * 2**20)),
        ("1Gi", str(2**30)),
        ("1G", "1000000000"),
        ("512k", "512000"),
        ("1e3", "1000"),
        ("5E-3", "0.005"),
        ("250u", "0.000250"),
        (2, "2"),
        (0.5, "0.5"),
    ],
)
def test_parse(text: object, value: str) -> None:
    assert quantity.parse(text) == Decimal(value)


@pytest.mark.parametrize(
    "text", ["", "lots", "1.2.3", "1Qi", "Mi", "1 Gi", "1e99999999", True, None, [], "9" * 100]
)
def test_not_a_quantity(text: object) -> None:
    assert quantity.parse(text) is None


def test_format() -> None:
    assert quantity.format_cpu(Decimal("0.05")) == "50m"
    assert quantity.format_cpu(Decimal("1")) == "1 core"
    assert quantity.format_cpu(Decimal("62.5")) == "62.5 cores"
    assert quantity.format_memory(Decimal(64 * 2**20)) == "64Mi"
    assert quantity.format_memory(Decimal(64 * 2**20 * 1000)) == "62.5Gi"
    assert quantity.format_memory(Decimal(512)) == "512"


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["m", "", "k", "Ki", "Mi", "Gi"]))
def test_round_trip_of_integers_with_suffixes(number: int, suffix: str) -> None:
    parsed = quantity.parse(f"{number}{suffix}")
    assert parsed is not None and parsed >= 0


@given(st.text(max_size=20))
def test_parse_never_raises(text: str) -> None:
    quantity.parse(text)
