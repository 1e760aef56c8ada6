"""Item -> resource (names, ownership, spec) and resource -> outcome, as pure functions."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from agent import protocol
from agent.podinfo import PodIdentity
from agent.resources import (
    ITEM_ID_ANNOTATION,
    LEASE_TOKEN_ANNOTATION,
    MAX_NAME,
    desired_resource,
    item_of,
    outcome_of,
    resource_name,
)
from common.names import AGENT_LABEL, KIND_BY_CAPABILITY

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
POD = PodIdentity("agent-7d9f", "team-a", "uid-1")
item_ids = st.from_regex(protocol.ITEM_ID_PATTERN, fullmatch=True)


@given(item_ids)
def test_names_are_dns_labels_and_deterministic(item_id: str) -> None:
    name = resource_name(item_id)
    assert DNS_LABEL.fullmatch(name) and len(name) <= MAX_NAME
    assert resource_name(item_id) == name


@given(item_ids, item_ids)
def test_distinct_ids_get_distinct_names(a: str, b: str) -> None:
    if a != b:
        assert resource_name(a) != resource_name(b)


def test_readable_ids_stay_readable() -> None:
    assert resource_name("build-42") == "build-42"
    assert resource_name("Build_42").startswith("build-42-")
    assert resource_name("a" * 80).startswith("a" * 30)


def test_the_resource_is_owned_by_the_pod_but_not_controlled() -> None:
    kind = KIND_BY_CAPABILITY["migrate"]
    res = desired_resource(kind, "m:1", {"database": {"secretName": "db"}}, POD, "tok")
    assert res["kind"] == "DatabaseMigration" and res["apiVersion"] == "remora.dev/v1alpha1"
    meta = res["metadata"]
    assert meta["namespace"] == "team-a" and meta["labels"] == {AGENT_LABEL: "agent-7d9f"}
    (owner,) = meta["ownerReferences"]
    assert owner == {"apiVersion": "v1", "kind": "Pod", "name": "agent-7d9f", "uid": "uid-1"}
    assert "controller" not in owner and "blockOwnerDeletion" not in owner
    assert res["spec"] == {"database": {"secretName": "db"}, "cancel": False}
    assert item_of(res) == ("m:1", "tok")
    assert meta["annotations"] == {ITEM_ID_ANNOTATION: "m:1", LEASE_TOKEN_ANNOTATION: "tok"}


def test_outcomes_follow_the_phase() -> None:
    base = {"kind": "TestRun", "metadata": {"name": "t", "namespace": "n"}}
    assert outcome_of(base) is None
    assert outcome_of({**base, "status": {"phase": "Running"}}) is None
    for phase, outcome in (("Succeeded", "succeeded"), ("Failed", "failed"), ("Unknown", "unknown")):
        result = outcome_of({**base, "status": {"phase": phase, "result": {"passed": 3}, "conditions": []}})
        assert result is not None
        assert result[0] == outcome
        assert result[1]["result"] == {"passed": 3} and result[1]["resource"]["name"] == "t"
