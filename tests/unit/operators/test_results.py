"""Results from termination messages: external input, bounded, never a failed reconcile."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operators.results import summary_result, test_result


def test_counts_and_summary_are_read() -> None:
    message = '{"passed": 3, "failed": 0, "skipped": 1, "summary": "all good"}'
    assert test_result(message) == {"passed": 3, "failed": 0, "skipped": 1, "summary": "all good"}


def test_missing_counts_are_zero() -> None:
    assert test_result('{"passed": 2}') == {"passed": 2, "failed": 0, "skipped": 0}


def test_no_message_is_no_result() -> None:
    assert test_result(None) is None
    assert test_result("  ") is None
    assert summary_result(None) is None


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ("not json", "malformed JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"passed": -1}', "passed must be an integer"),
        ('{"failed": true}', "failed must be an integer"),
        ('{"skipped": 1.5}', "skipped must be an integer"),
        ('{"passed": 10000000000}', "passed must be an integer"),
        ('{"summary": 3}', "summary must be a string"),
        ('{"a": {"b": {"c": {"d": {"e": 1}}}}}', "nests deeper"),
        ("x" * 5000, "over the limit"),
    ],
)
def test_bad_messages_become_a_summary_that_says_why(message: str, why: str) -> None:
    result = test_result(message)
    assert result is not None
    assert why in result["summary"]


def test_long_summaries_are_cut() -> None:
    result = test_result('{"summary": "' + "s" * 3000 + '"}')
    assert result is not None and len(result["summary"]) == 1024
    plain = summary_result("d" * 5000)
    assert plain is not None and len(plain["summary"]) == 1024


@given(st.text(max_size=5000))
def test_any_message_gives_a_bounded_result_or_none(message: str) -> None:
    for read in (test_result, summary_result):
        result = read(message)
        assert result is None or len(result.get("summary", "")) <= 1024
