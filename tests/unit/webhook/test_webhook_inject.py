"""inject(pod, catalog, namespace): who gets which sidecars, what they look like, and idempotence."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from webhook_support import agent_pod, apiserver_defaults

from common.names import STATUS_ANNOTATION
from common.version import INJECTOR_VERSION
from webhook.catalog import Catalog, catalog_from_document, default_catalog
from webhook.mutate import TOKEN_VOLUME, Denied, inject, should_inject
from webhook.namespaces import Namespace

CATALOG = default_catalog()


def namespace(labels: dict[str, str] | None = None, **annotations: str) -> Namespace:
    return Namespace(
        "team-a",
        labels={"remora.dev/injection": "enabled"} if labels is None else labels,
        annotations={k.replace("_", "-"): v for k, v in annotations.items()},
    )


def allowed(caps: str) -> Namespace:
    return Namespace("team-a", {"remora.dev/injection": "enabled"}, {"remora.dev/allowed-capabilities": caps})


def names(containers: list[dict[str, Any]]) -> list[str]:
    return [c["name"] for c in containers]


def changed_catalog(image: str) -> Catalog:
    document = {
        "apiVersion": "remora.dev/v1alpha1",
        "kind": "CapabilityCatalog",
        "capabilities": {
            name: {
                "kind": cap.kind,
                "image": image,
                "command": list(cap.command),
                "resources": cap.resources,
            }
            for name, cap in CATALOG.capabilities.items()
        },
    }
    return catalog_from_document(document, "test catalog")


@pytest.mark.parametrize(
    ("pod", "ns", "expected"),
    [
        (agent_pod(), None, True),
        (agent_pod(), namespace(), True),
        (agent_pod(), namespace(labels={}), False),
        (agent_pod(), namespace(labels={"remora.dev/injection": "disabled"}), False),
        (agent_pod(capabilities=None), namespace(), False),
        (agent_pod(capabilities=" , "), namespace(), False),
    ],
)
def test_should_inject_follows_the_namespace_label_and_the_annotation(
    pod: dict[str, Any], ns: Namespace | None, expected: bool
) -> None:
    assert should_inject(pod, ns) is expected


def test_the_opt_out_label_wins() -> None:
    pod = agent_pod()
    pod["metadata"]["labels"]["remora.dev/inject"] = "false"
    result = inject(pod, CATALOG, namespace())
    assert result.pod is pod
    assert result.skipped and "opts out" in result.skipped


def test_native_sidecars_go_first_as_init_containers_with_restart_always() -> None:
    own_init = {"name": "setup", "image": "busybox"}
    pod = agent_pod(initContainers=[own_init])
    result = inject(pod, CATALOG, namespace())
    init = result.pod["spec"]["initContainers"]
    assert names(init) == ["remora-build", "remora-test", "setup"]
    assert all(c["restartPolicy"] == "Always" for c in init[:2])
    assert names(result.pod["spec"]["containers"]) == ["agent"]


def test_plain_containers_mode_appends_regular_containers() -> None:
    result = inject(agent_pod(), CATALOG, namespace(), native=False)
    assert names(result.pod["spec"]["containers"]) == ["agent", "remora-build", "remora-test"]
    assert "initContainers" not in result.pod["spec"]
    assert all("restartPolicy" not in c for c in result.pod["spec"]["containers"])


def test_a_sidecar_carries_downward_api_env_catalog_resources_and_a_hardened_context() -> None:
    sidecar = inject(agent_pod("build"), CATALOG, None).pod["spec"]["initContainers"][0]
    entry = CATALOG.capabilities["build"]
    assert sidecar["image"] == entry.image
    assert sidecar["command"] == list(entry.command)
    assert sidecar["resources"] == entry.resources
    assert sidecar["resources"]["limits"]["memory"]
    env = {e["name"]: e for e in sidecar["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["REMORA_CAPABILITY"]["value"] == "build"
    context = sidecar["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] > 0
    assert context["runAsGroup"] > 0
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in context


def test_without_an_automounted_token_the_sidecars_alone_get_a_projected_one() -> None:
    result = inject(agent_pod(automountServiceAccountToken=False), CATALOG, namespace())
    spec = result.pod["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == TOKEN_VOLUME)
    sources = volume["projected"]["sources"]
    assert sources[0]["serviceAccountToken"]["path"] == "token"
    for sidecar in spec["initContainers"]:
        assert sidecar["volumeMounts"] == [
            {
                "name": TOKEN_VOLUME,
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                "readOnly": True,
            }
        ]
    assert all(m["name"] != TOKEN_VOLUME for m in spec["containers"][0]["volumeMounts"])
    assert spec["automountServiceAccountToken"] is False


def test_with_an_automounted_token_no_extra_volume_is_added() -> None:
    result = inject(agent_pod(), CATALOG, namespace())
    assert names(result.pod["spec"]["volumes"]) == ["work"]
    assert all("volumeMounts" not in c for c in result.pod["spec"]["initContainers"])


def test_the_status_annotation_records_capabilities_catalog_hash_and_version() -> None:
    result = inject(agent_pod("test,build"), CATALOG, namespace())
    status = orjson.loads(result.pod["metadata"]["annotations"][STATUS_ANNOTATION])
    assert status == {
        "capabilities": ["test", "build"],
        "catalogHash": CATALOG.hash,
        "version": INJECTOR_VERSION,
    }
    assert names(result.pod["spec"]["initContainers"]) == ["remora-test", "remora-build"]


def test_the_input_pod_is_never_changed() -> None:
    pod = agent_pod(automountServiceAccountToken=False, initContainers=[{"name": "setup", "image": "x"}])
    before = copy.deepcopy(pod)
    inject(pod, CATALOG, namespace())
    assert pod == before


def test_injecting_an_injected_pod_changes_nothing() -> None:
    once = inject(agent_pod(automountServiceAccountToken=False), CATALOG, namespace()).pod
    twice = inject(once, CATALOG, namespace())
    assert twice.pod is once
    assert twice.warnings == []


def test_reinvocation_after_apiserver_defaulting_changes_nothing_and_warns_nothing() -> None:
    once = inject(agent_pod(), CATALOG, namespace()).pod
    defaulted = apiserver_defaults(once)
    again = inject(defaulted, CATALOG, namespace())
    assert again.pod is defaulted
    assert again.warnings == []


def test_canonical_quantities_from_the_apiserver_are_the_same_sidecar() -> None:
    once = inject(agent_pod("build"), CATALOG, namespace()).pod
    sidecar = once["spec"]["initContainers"][0]
    sidecar["resources"] = {"requests": {"cpu": "0.02", "memory": "65536Ki"}, "limits": {"memory": "0.125Gi"}}
    assert inject(once, CATALOG, namespace()).pod is once


def test_a_changed_catalog_replaces_the_sidecar_and_says_so() -> None:
    once = inject(agent_pod("build"), CATALOG, namespace()).pod
    new_catalog = changed_catalog("registry.example/remora:0.2.0")
    result = inject(once, new_catalog, namespace())
    sidecars = result.pod["spec"]["initContainers"]
    assert names(sidecars) == ["remora-build"]
    assert sidecars[0]["image"] == "registry.example/remora:0.2.0"
    assert result.warnings == [
        f"remora: sidecar remora-build replaced: the capability catalog changed "
        f"(catalog {CATALOG.hash} -> {new_catalog.hash})"
    ]
    assert (
        orjson.loads(result.pod["metadata"]["annotations"][STATUS_ANNOTATION])["catalogHash"]
        == new_catalog.hash
    )


def test_a_pod_cannot_smuggle_settings_into_a_remora_sidecar() -> None:
    pod = agent_pod("build")
    rendered = inject(pod, CATALOG, namespace()).pod["spec"]["initContainers"][0]
    tampered = copy.deepcopy(rendered)
    tampered["securityContext"]["privileged"] = True
    tampered["image"] = "evil.example/shell"
    pod["spec"]["initContainers"] = [tampered]
    result = inject(pod, CATALOG, namespace())
    assert result.pod["spec"]["initContainers"] == [rendered]
    assert result.warnings and "remora-build replaced" in result.warnings[0]


def test_a_capability_no_longer_requested_loses_its_sidecar() -> None:
    once = inject(agent_pod("build,test"), CATALOG, namespace()).pod
    once["metadata"]["annotations"]["remora.dev/capabilities"] = "build"
    result = inject(once, CATALOG, namespace())
    assert names(result.pod["spec"]["initContainers"]) == ["remora-build"]
    assert any("remora-test removed" in w for w in result.warnings)


def test_a_users_own_container_named_like_a_sidecar_is_not_removed() -> None:
    pod = agent_pod("build", initContainers=[{"name": "remora-test", "image": "mine"}])
    result = inject(pod, CATALOG, namespace())
    assert names(result.pod["spec"]["initContainers"]) == ["remora-build", "remora-test"]


def test_duplicate_capabilities_give_one_sidecar() -> None:
    result = inject(agent_pod("build, build"), CATALOG, namespace())
    assert names(result.pod["spec"]["initContainers"]) == ["remora-build"]


def test_an_unknown_capability_is_denied_listing_the_catalog() -> None:
    with pytest.raises(Denied) as caught:
        inject(agent_pod("build,deploy"), CATALOG, namespace())
    assert str(caught.value) == (
        "unknown capability 'deploy' in remora.dev/capabilities; the catalog offers: build, migrate, test"
    )


def test_a_capability_the_namespace_does_not_allow_is_denied_listing_what_is_allowed() -> None:
    with pytest.raises(Denied) as caught:
        inject(agent_pod("build,migrate,test"), CATALOG, allowed("build, test"))
    assert str(caught.value) == (
        "capability 'migrate' not allowed in namespace team-a (remora.dev/allowed-capabilities); "
        "allowed: build, test"
    )
    with pytest.raises(Denied, match="allowed: none"):
        inject(agent_pod("build"), CATALOG, allowed(""))


def test_allowed_capabilities_that_are_asked_for_are_injected() -> None:
    result = inject(agent_pod("build"), CATALOG, allowed("build,test"))
    assert names(result.pod["spec"]["initContainers"]) == ["remora-build"]


def test_a_sidecar_switched_from_plain_to_native_mode_stays_where_it_is() -> None:
    plain = inject(agent_pod("build"), CATALOG, namespace(), native=False).pod
    result = inject(plain, CATALOG, namespace(), native=True)
    assert names(result.pod["spec"]["containers"]) == ["agent", "remora-build"]
    assert result.pod["spec"]["containers"][1]["restartPolicy"] == "Always"
    assert "initContainers" not in result.pod["spec"]


def test_garbage_in_the_status_annotation_is_ignored() -> None:
    pod = agent_pod("build")
    pod["metadata"]["annotations"][STATUS_ANNOTATION] = '{"capabilities": [1, {"a": 2}, "test"]'
    result = inject(pod, CATALOG, namespace())
    assert names(result.pod["spec"]["initContainers"]) == ["remora-build"]
    pod["metadata"]["annotations"][STATUS_ANNOTATION] = '{"capabilities": [1, {"a": 2}, "test"]}'
    assert names(inject(pod, CATALOG, namespace()).pod["spec"]["initContainers"]) == ["remora-build"]
