"""The upstream Pod Security fixtures, judged through the webhook's own path: 100% agreement.

Every file in shared/conformance/psa/{baseline,restricted}/{pass,fail}/*.yaml becomes an
AdmissionReview (CREATE Pod, in a namespace labelled remora.dev/enforce=<level>), is answered by
`webhook.admission.review` with the `Validator` the server runs, and must be allowed (pass/) or
denied (fail/). The folder is read at test time, never copied; if it is missing the test fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
import yaml

from common.names import ENFORCE_LABEL
from webhook import admission
from webhook.namespaces import Namespace, StaticNamespaces
from webhook.validate.handler import Validator

LEVELS = ("baseline", "restricted")


def shared_dir() -> Path:
    env = os.environ.get("REMORA_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared"


PSA_DIR = shared_dir() / "conformance" / "psa"


def fixtures() -> list[Path]:
    return sorted(PSA_DIR.glob("*/*/*.yaml"))


def review_body(pod: dict, namespace: str) -> bytes:
    return orjson.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "7f0b5b8e-conformance",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": namespace,
                "operation": "CREATE",
                "userInfo": {"username": "conformance"},
                "object": pod,
                "dryRun": False,
            },
        }
    )


VALIDATOR = Validator(
    StaticNamespaces.of(*(Namespace(f"psa-{level}", labels={ENFORCE_LABEL: level}) for level in LEVELS))
)


def judge(path: Path) -> dict:
    level = path.parts[-3]
    pod = yaml.safe_load(path.read_text())
    answer = admission.review(review_body(pod, f"psa-{level}"), VALIDATOR)
    assert answer.status == 200, answer.body
    return orjson.loads(answer.body)["response"]


def test_fixture_folder_is_present_and_complete() -> None:
    if not PSA_DIR.is_dir():
        pytest.fail(f"the upstream fixtures are missing: {PSA_DIR} (set REMORA_SHARED to the shared/ folder)")
    for level in LEVELS:
        for outcome in ("pass", "fail"):
            assert list((PSA_DIR / level / outcome).glob("*.yaml")), f"no fixtures in {level}/{outcome}"


@pytest.mark.parametrize("path", fixtures(), ids=lambda p: "/".join(p.parts[-3:]))
def test_fixture(path: Path) -> None:
    response = judge(path)
    expected = path.parts[-2] == "pass"
    message = response.get("status", {}).get("message", "")
    assert response["allowed"] is expected, f"{path.name}: {message or 'allowed'}"
    if not expected:
        level = path.parts[-3]
        assert message.startswith(f'violates PodSecurity "{level}:latest": ')
        assert response["status"]["details"]["causes"], "a denial lists the forbidden fields"


def test_agreement_is_total() -> None:
    """One summary figure: every fixture agrees (guards against a silently empty parametrization)."""
    paths = fixtures()
    assert len(paths) > 100
    disagreements = [p.name for p in paths if judge(p)["allowed"] is not (p.parts[-2] == "pass")]
    assert disagreements == []
