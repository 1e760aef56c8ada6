"""Namespace labels to levels, and the memo the handler asks on every request."""

from __future__ import annotations

from typing import Any

import pytest

from common.names import AUDIT_LABEL, ENFORCE_LABEL, WARN_LABEL
from webhook.validate.policy import Levels, PolicyConfig, PolicyMemo, namespace_policy

CONFIG = PolicyConfig(defaults=Levels(audit="baseline"))


@pytest.mark.parametrize(
    "labels",
    [
        None,
        {},
        {ENFORCE_LABEL: "hardened", WARN_LABEL: "restricted"},
        {ENFORCE_LABEL: "strict", AUDIT_LABEL: ""},
        {ENFORCE_LABEL: ["restricted"]},  # not a string: cannot be a key, cannot be a level
        {WARN_LABEL: 3},
    ],
)
def test_the_memo_answers_what_namespace_policy_answers(labels: dict[str, Any] | None) -> None:
    memo = PolicyMemo(CONFIG)
    assert memo(labels) == namespace_policy(labels, CONFIG)
    assert memo(labels) == namespace_policy(labels, CONFIG)  # remembered, or computed again


def test_an_invalid_label_fails_closed_with_a_warning() -> None:
    policy = PolicyMemo(CONFIG)({ENFORCE_LABEL: "strict"})
    assert policy.levels == Levels(enforce="restricted", audit="baseline")
    assert "remora.dev/enforce='strict'" in policy.problems[0]


def test_the_memo_stays_bounded() -> None:
    memo = PolicyMemo(CONFIG)
    for index in range(PolicyMemo.LIMIT * 2):
        memo({ENFORCE_LABEL: f"level-{index}"})
    assert len(memo._known) <= PolicyMemo.LIMIT
