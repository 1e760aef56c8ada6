"""Pods the injector produces (tests/golden/inject/*.injected.yaml, paired with their inputs) and `hardened`.

DESIGN.md: injected sidecars meet the hardened level. The agent containers in the golden inputs
are the users' own and need not, so two claims are tested on every golden pair, with the same
registry the webhook uses:

- every container the injector added meets `hardened` (judged in the injected pod's spec, with
  the user's containers left out);
- injection never costs a pod its level: if the input pod meets a level, the injected pod does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from common.names import CAPABILITIES, CAPABILITIES_ANNOTATION, INJECTION_LABEL, LEVELS
from webhook.validate.pods import PodSource, pod_of
from webhook.validate.registry import DEFAULT_REGISTRY

GOLDEN = Path(__file__).resolve().parents[3] / "golden" / "inject"
INJECTED = sorted(GOLDEN.glob("*.injected.yaml"))
CONTAINER_LISTS = ("initContainers", "containers")


def _pods(path: Path) -> list[PodSource]:
    return [s for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict) and (s := pod_of(d))]


def _names(spec: dict[str, Any]) -> set[str]:
    return {c.get("name") for key in CONTAINER_LISTS for c in spec.get(key) or []}


def _sidecars_only(injected: PodSource, original: PodSource) -> dict[str, Any]:
    """The injected pod spec with only the containers the injector added."""
    theirs = _names(dict(original.spec))
    spec = dict(injected.spec)
    for key in CONTAINER_LISTS:
        spec[key] = [c for c in spec.get(key) or [] if c.get("name") not in theirs]
    return spec


def test_the_injector_golden_files_exist() -> None:
    if not INJECTED:
        pytest.skip(f"no injected golden files in {GOLDEN} yet (the injector's tests write them)")


@pytest.mark.parametrize("path", INJECTED, ids=lambda p: p.name)
def test_injected_sidecars_meet_hardened(path: Path) -> None:
    originals = _pods(path.with_name(path.name.replace(".injected.yaml", ".yaml")))
    injected = _pods(path)
    assert len(originals) == len(injected), f"{path.name}: the pair holds different numbers of pods"
    for before, after in zip(originals, injected, strict=True):
        spec = _sidecars_only(after, before)
        evaluation = DEFAULT_REGISTRY.evaluate("hardened", after.meta, spec)
        assert evaluation.allowed, f"{path.name}: {after.kind} {after.name}: {evaluation.message()}"


@pytest.mark.parametrize("path", INJECTED, ids=lambda p: p.name)
def test_injection_never_costs_a_pod_its_level(path: Path) -> None:
    originals = _pods(path.with_name(path.name.replace(".injected.yaml", ".yaml")))
    for before, after in zip(originals, _pods(path), strict=True):
        for level in LEVELS:
            if DEFAULT_REGISTRY.evaluate(level, before.meta, before.spec).allowed:
                evaluation = DEFAULT_REGISTRY.evaluate(level, after.meta, after.spec)
                assert evaluation.allowed, f"{path.name}: {after.kind} {after.name}: {evaluation.message()}"


@pytest.mark.parametrize("native", [True, False], ids=["native-sidecars", "plain-containers"])
def test_sidecars_the_injector_adds_meet_hardened(native: bool) -> None:
    """Independent of the golden files: inject every capability into a hardened agent pod."""
    from validate_support import hardened_pod

    from webhook.catalog import default_catalog
    from webhook.mutate.inject import inject
    from webhook.namespaces import Namespace

    pod = hardened_pod()
    pod["metadata"]["annotations"] = {CAPABILITIES_ANNOTATION: ",".join(CAPABILITIES)}
    namespace = Namespace("team", labels={INJECTION_LABEL: "enabled"})
    injected = inject(pod, default_catalog(), namespace, native=native).pod
    spec = injected["spec"]
    assert len(spec.get("initContainers", [])) + len(spec["containers"]) == 1 + len(CAPABILITIES)
    evaluation = DEFAULT_REGISTRY.evaluate("hardened", injected["metadata"], spec)
    assert evaluation.allowed, evaluation.message()
