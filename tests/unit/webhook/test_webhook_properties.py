"""Properties of injection and of the patch, over generated pods and JSON values (hypothesis)."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.names import STATUS_ANNOTATION
from webhook.catalog import default_catalog
from webhook.mutate import TOKEN_VOLUME, inject, patch
from webhook.mutate.patch import INJECTION_SCOPE
from webhook.namespaces import Namespace

CATALOG = default_catalog()
NAMESPACE = Namespace("team-a", {"remora.dev/injection": "enabled"})
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=10)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)
# Keys unknown to Remora (think: fields a newer Kubernetes added) that must survive untouched.
unknown_fields = st.dictionaries(
    st.sampled_from(["x-new", "futureField", "a/b~c", ""]), json_values, max_size=3
)


@st.composite
def containers(draw: st.DrawFn, names: list[str]) -> list[dict[str, Any]]:
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=3))
    return [
        {"name": name, "image": draw(st.text(min_size=1, max_size=6)), **draw(unknown_fields)}
        for name in chosen
    ]


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    capabilities = draw(st.lists(st.sampled_from(["build", "test", "migrate"]), max_size=3))
    annotations = draw(st.dictionaries(st.sampled_from(["a", "b/c", "x~y"]), st.text(max_size=5), max_size=2))
    if capabilities or draw(st.booleans()):
        annotations["remora.dev/capabilities"] = ",".join(capabilities)
    spec: dict[str, Any] = {
        "containers": draw(containers(["agent", "helper", "remora-build"]))
        or [{"name": "agent", "image": "a"}],
        **draw(unknown_fields),
    }
    init = draw(containers(["setup", "remora-test", "own-sidecar"]))
    if init or draw(st.booleans()):
        spec["initContainers"] = init
    if draw(st.booleans()):
        spec["volumes"] = [
            {"name": n, "emptyDir": {}} for n in draw(st.lists(st.sampled_from(["w", TOKEN_VOLUME])))
        ]
    automount = draw(st.sampled_from([None, True, False]))
    if automount is not None:
        spec["automountServiceAccountToken"] = automount
    metadata: dict[str, Any] = {"name": "agent", **draw(unknown_fields)}
    if annotations or draw(st.booleans()):
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, **draw(unknown_fields)}


@SETTINGS
@given(pods(), st.booleans())
def test_inject_twice_is_inject_once(pod: dict[str, Any], native: bool) -> None:
    once = inject(pod, CATALOG, NAMESPACE, native=native)
    twice = inject(once.pod, CATALOG, NAMESPACE, native=native)
    assert twice.pod == once.pod
    assert twice.warnings == []


@SETTINGS
@given(pods(), st.booleans())
def test_the_patch_applied_to_the_original_gives_the_mutated_pod(pod: dict[str, Any], native: bool) -> None:
    original = copy.deepcopy(pod)
    mutated = inject(pod, CATALOG, NAMESPACE, native=native).pod
    ops = patch(pod, mutated)
    assert jsonpatch.apply_patch(pod, ops) == mutated
    scoped = patch(pod, mutated, INJECTION_SCOPE)  # what the webhook sends
    assert jsonpatch.apply_patch(pod, scoped) == mutated
    assert len(scoped) == len(ops)
    assert pod == original  # neither inject nor patch touched the input


@SETTINGS
@given(pods(), st.booleans())
def test_no_field_of_the_original_is_lost_or_changed_except_by_injection(
    pod: dict[str, Any], native: bool
) -> None:
    mutated = inject(pod, CATALOG, NAMESPACE, native=native).pod
    for key, value in pod.items():
        if key not in ("metadata", "spec"):
            assert mutated[key] == value
    for key, value in pod["metadata"].items():
        if key != "annotations":
            assert mutated["metadata"][key] == value
    for key, value in (pod["metadata"].get("annotations") or {}).items():
        if key != STATUS_ANNOTATION:
            assert mutated["metadata"]["annotations"][key] == value
    touched = {"initContainers", "containers", "volumes"}
    for key, value in pod["spec"].items():
        if key not in touched:
            assert mutated["spec"][key] == value
    for key in ("initContainers", "containers"):
        own = [c for c in pod["spec"].get(key, []) if not c["name"].startswith("remora-")]
        kept = [c for c in mutated["spec"].get(key, []) if not c["name"].startswith("remora-")]
        assert kept == own  # the pod's own containers: all there, unchanged, same order
    own_volumes = [v for v in pod["spec"].get("volumes", []) if v["name"] != TOKEN_VOLUME]
    assert [v for v in mutated["spec"].get("volumes", []) if v["name"] != TOKEN_VOLUME] == own_volumes


@settings(max_examples=150, deadline=None)
@given(json_values, json_values)
def test_patch_turns_any_json_value_into_any_other(a: Any, b: Any) -> None:
    doc = {"root": a}
    assert jsonpatch.apply_patch(doc, patch(doc, {"root": b})) == {"root": b}


@settings(max_examples=100, deadline=None)
@given(st.lists(json_values, max_size=6), st.data())
def test_patch_of_list_edits_applies(items: list[Any], data: st.DataObject) -> None:
    edited = list(items)
    for _ in range(data.draw(st.integers(0, 4))):
        where = data.draw(st.integers(0, len(edited)))
        if edited and data.draw(st.booleans()):
            del edited[min(where, len(edited) - 1)]
        else:
            edited.insert(where, data.draw(json_values))
    doc = {"items": items}
    assert jsonpatch.apply_patch(doc, patch(doc, {"items": edited})) == {"items": edited}


def test_patch_of_equal_values_is_empty_and_keys_are_escaped() -> None:
    assert patch({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2}]}) == []
    assert patch({"m": {}}, {"m": {"a/b~c": 1}}) == [{"op": "add", "path": "/m/a~1b~0c", "value": 1}]
