"""The hardened level: generated PSA-style fixtures, kept in tests/golden/psa-hardened/.

Each fixture tweaks one minimal hardened pod for one check; a pass/ fixture must be allowed at
`hardened`, a fail/ fixture denied *by its own check only*. The folder must match the generator
exactly (a missing, extra or stale file fails); REMORA_REGENERATE=1 rewrites it.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
import yaml
from hardened_fixtures import CASES, GOLDEN_DIR, check_of, fixtures
from test_psa import PSA_DIR, review_body

from common.names import ENFORCE_LABEL
from webhook import admission
from webhook.namespaces import Namespace, StaticNamespaces
from webhook.validate.handler import Validator
from webhook.validate.pods import pod_of
from webhook.validate.registry import DEFAULT_REGISTRY

GENERATED = fixtures()
VALIDATOR = Validator(StaticNamespaces.of(Namespace("hardened", labels={ENFORCE_LABEL: "hardened"})))


def dump(pod: dict) -> str:
    return yaml.safe_dump(pod, sort_keys=True)


def test_golden_folder_matches_the_generator() -> None:
    if os.environ.get("REMORA_REGENERATE"):
        for stale in GOLDEN_DIR.glob("*/*.yaml"):
            stale.unlink()
        for relative, pod in GENERATED.items():
            target = GOLDEN_DIR / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(dump(pod))
    on_disk = {str(p.relative_to(GOLDEN_DIR)) for p in GOLDEN_DIR.glob("*/*.yaml")}
    missing = sorted(set(GENERATED) - on_disk)
    extra = sorted(on_disk - set(GENERATED))
    assert not missing, f"missing fixture files (REMORA_REGENERATE=1 writes them): {missing}"
    assert not extra, f"fixture files no generator case produces: {extra}"
    stale = [rel for rel, pod in GENERATED.items() if (GOLDEN_DIR / rel).read_text() != dump(pod)]
    assert not stale, f"fixture files out of date with the generator: {stale}"


def test_every_hardened_check_has_pass_and_fail_cases() -> None:
    hardened_ids = {c.id for c in DEFAULT_REGISTRY.checks_for("hardened") if c.level == "hardened"}
    assert hardened_ids == set(CASES)
    for check_id, (passing, failing) in CASES.items():
        assert passing and failing, check_id


@pytest.mark.parametrize("relative", sorted(GENERATED))
def test_golden_fixture(relative: str) -> None:
    path = GOLDEN_DIR / relative
    pod = yaml.safe_load(path.read_text())
    answer = admission.review(review_body(pod, "hardened"), VALIDATOR)
    response = orjson.loads(answer.body)["response"]
    expected = relative.startswith("pass/")
    assert response["allowed"] is expected, response.get("status", {}).get("message")
    source = pod_of(pod)
    assert source is not None
    failed = [v.check_id for v in DEFAULT_REGISTRY.evaluate("hardened", source.meta, source.spec).violations]
    assert failed == ([] if expected else [check_of(relative)])


@pytest.mark.parametrize("path", sorted(PSA_DIR.glob("*/fail/*.yaml")), ids=lambda p: "/".join(p.parts[-3:]))
def test_hardened_is_stricter_than_every_upstream_level(path: Path) -> None:
    pod = yaml.safe_load(path.read_text())
    response = orjson.loads(admission.review(review_body(pod, "hardened"), VALIDATOR).body)["response"]
    assert response["allowed"] is False
