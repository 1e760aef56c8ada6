"""Injection gives a pod exactly the catalog's sidecars, whatever the pod says about them.

Properties over generated pods: look-alike annotations, containers squatting a sidecar's name
with any securityContext, image and command, and forged remora.dev/status annotations never
change what is injected. A capability outside the namespace's allow-list is always refused.
A webhook that watches namespaces refuses capability pods in a namespace it could not read,
because it has no allow-list for it. (The end-to-end versions of these, through the real
apiserver, are in tests/e2e/test_security.py.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.names import ALLOWED_CAPABILITIES_ANNOTATION, CAPABILITIES, INJECTION_LABEL, STATUS_ANNOTATION
from webhook.catalog import default_catalog
from webhook.mutate import Mutator
from webhook.mutate.inject import inject
from webhook.mutate.policy import Denied
from webhook.mutate.render import render, sidecar_name
from webhook.namespaces import Namespace, StaticNamespaces

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "unit" / "webhook"))
from webhook_support import agent_pod, review  # noqa: E402

CATALOG = default_catalog()
TEAM = Namespace("team-a", {INJECTION_LABEL: "enabled"}, {ALLOWED_CAPABILITIES_ANNOTATION: "build,test"})

words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-./_0123456789", min_size=1, max_size=30)
annotation_keys = st.one_of(
    st.builds(lambda w: f"remora.dev/{w}", words), st.builds(lambda w: f"{w}.remora.dev/build", words)
).filter(lambda key: key not in ("remora.dev/capabilities", STATUS_ANNOTATION))
security_contexts = st.fixed_dictionaries(
    {},
    optional={
        "privileged": st.booleans(),
        "runAsUser": st.integers(0, 70000),
        "allowPrivilegeEscalation": st.booleans(),
        "capabilities": st.fixed_dictionaries(
            {"add": st.lists(st.sampled_from(["SYS_ADMIN", "NET_RAW", "ALL"]))}
        ),
    },
)
squatters = st.fixed_dictionaries(
    {"name": st.sampled_from(["remora-build", "remora-test"]), "image": words},
    optional={
        "command": st.lists(words, max_size=3),
        "securityContext": security_contexts,
        "restartPolicy": st.just("Always"),
        "env": st.lists(st.fixed_dictionaries({"name": words, "value": words}), max_size=2),
    },
)


@settings(max_examples=200, deadline=None)
@given(
    extra=st.dictionaries(annotation_keys, words, max_size=6),
    init_squat=st.lists(squatters, max_size=2, unique_by=lambda c: c["name"]),
    regular_squat=st.lists(squatters, max_size=2, unique_by=lambda c: c["name"]),
    forged_status=st.booleans(),
    automount=st.sampled_from([None, False, True]),
)
def test_whatever_the_pod_says_its_sidecars_are_the_catalogs(
    extra: dict[str, str],
    init_squat: list[dict[str, Any]],
    regular_squat: list[dict[str, Any]],
    forged_status: bool,
    automount: bool | None,
) -> None:
    pod = agent_pod("build,test")
    pod["metadata"]["annotations"] |= extra
    if forged_status:
        status = {"capabilities": ["build", "test"], "catalogHash": CATALOG.hash, "version": "0.1.0"}
        pod["metadata"]["annotations"][STATUS_ANNOTATION] = json.dumps(status)
    regular_names = {c["name"] for c in regular_squat}
    pod["spec"]["initContainers"] = [c for c in init_squat if c["name"] not in regular_names]
    pod["spec"]["containers"] += [{k: v for k, v in c.items() if k != "restartPolicy"} for c in regular_squat]
    if automount is not None:
        pod["spec"]["automountServiceAccountToken"] = automount
    result = inject(pod, CATALOG, TEAM).pod
    containers = [*(result["spec"].get("initContainers") or []), *result["spec"]["containers"]]
    token_mount = automount is False
    for capability in ("build", "test"):
        wanted = render(CATALOG.capabilities[capability], native=True, token_mount=token_mount)
        (sidecar,) = [c for c in containers if c["name"] == sidecar_name(capability)]
        # Where a regular container squatted the name, the catalog's sidecar takes its place there.
        assert sidecar == wanted
    assert result["spec"].get("serviceAccountName") == pod["spec"].get("serviceAccountName")
    assert result["spec"].get("automountServiceAccountToken") == pod["spec"].get(
        "automountServiceAccountToken"
    )


@settings(max_examples=200, deadline=None)
@given(
    asked=st.lists(st.sampled_from([*CAPABILITIES, "deploy", "BUILD", " migrate", "build;test"]), min_size=1)
)
def test_a_capability_outside_the_allow_list_is_always_refused(asked: list[str]) -> None:
    value = ",".join(asked)
    wanted = {part.strip() for part in value.split(",") if part.strip()}
    pod = agent_pod(value)
    if wanted <= {"build", "test"}:
        result = inject(pod, CATALOG, TEAM).pod
        names = {c["name"] for c in result["spec"].get("initContainers") or []}
        assert names >= {sidecar_name(c) for c in wanted}
        assert not names & {sidecar_name("migrate")}
    else:
        with pytest.raises(Denied):
            inject(pod, CATALOG, TEAM)


def test_a_watching_webhook_refuses_capabilities_in_a_namespace_it_could_not_read() -> None:
    strict = Mutator(default_catalog, StaticNamespaces(), unknown_namespace_denied=True)
    result = strict(review(agent_pod("migrate"), namespace="fresh")["request"])
    assert result["allowed"] is False
    assert result["status"]["code"] == 403
    assert "namespace 'fresh' is not known to the webhook yet; retry" in result["status"]["message"]
    # A pod that asks for nothing is not held up.
    assert strict(review(agent_pod(None), namespace="fresh")["request"])["allowed"] is True
    # An unreadable pod is still a 400 naming the field.
    bad = strict(review({"metadata": [], "spec": {}}, namespace="fresh")["request"])
    assert bad["status"]["code"] == 400 and "metadata" in bad["status"]["message"]
    # Without a namespace view at all (offline, --no-cluster), the namespaceSelector decided.
    offline = Mutator(default_catalog, StaticNamespaces())
    assert offline(review(agent_pod("migrate"), namespace="fresh")["request"])["allowed"] is True
