"""Individual checks: the visitor reaches every container list, messages and causes name fields."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from validate_support import container, hardened_pod

from webhook.validate.checks import ALL_CHECKS
from webhook.validate.checks.base import container_path, containers_setting, end_visit, start_visit
from webhook.validate.registry import DEFAULT_REGISTRY

# A container-level violation per check, and the pod-spec change that causes it in one container.
CONTAINER_VIOLATIONS: dict[str, dict[str, Any]] = {
    "privileged": {"privileged": True},
    "capabilities_baseline": {"capabilities": {"add": ["SYS_ADMIN"]}},
    "procMount": {"procMount": "Unmasked"},
    "seccompProfile_baseline": {"seccompProfile": {"type": "Unconfined"}},
    "seLinuxOptions": {"seLinuxOptions": {"type": "spc_t"}},
    "appArmorProfile": {"appArmorProfile": {"type": "Unconfined"}},
    "windowsHostProcess": {"windowsOptions": {"hostProcess": True}},
    "allowPrivilegeEscalation": {"allowPrivilegeEscalation": True},
    "runAsNonRoot": {"runAsNonRoot": False},
    "runAsUser": {"runAsUser": 0},
    "readOnlyRootFilesystem": {"readOnlyRootFilesystem": False},
}


def _with_ephemeral(security: dict[str, Any]) -> dict[str, Any]:
    pod = hardened_pod()
    debugger = container("debugger", **security)
    del debugger["resources"]
    pod["spec"]["ephemeralContainers"] = [debugger]
    return pod


def _failed(level: str, pod: dict[str, Any]) -> dict[str, Any]:
    evaluation = DEFAULT_REGISTRY.evaluate(level, pod["metadata"], pod["spec"])
    return {v.check_id: v.result for v in evaluation.violations}


@pytest.mark.parametrize("check_id", sorted(CONTAINER_VIOLATIONS))
@pytest.mark.parametrize("list_name", ["initContainers", "containers", "ephemeralContainers"])
def test_every_container_list_is_visited(check_id: str, list_name: str) -> None:
    level = next(c.level for c in ALL_CHECKS if c.id == check_id)
    pod = hardened_pod()
    bad = container("x", **CONTAINER_VIOLATIONS[check_id])
    if list_name == "ephemeralContainers":
        del bad["resources"]
    pod["spec"][list_name] = [*pod["spec"].get(list_name, []), bad]
    result = _failed(level, pod)[check_id]
    assert '"x"' in result.detail
    index = len(pod["spec"][list_name]) - 1
    assert any(cause.field.startswith(f"spec.{list_name}[{index}].") for cause in result.causes)


def test_an_allowed_pod_produces_no_violation_at_any_level() -> None:
    pod = hardened_pod()
    for level in ("baseline", "restricted", "hardened"):
        assert _failed(level, pod) == {}


def test_upstream_style_message_for_several_checks() -> None:
    pod = hardened_pod()
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    pod["spec"]["hostNetwork"] = True
    evaluation = DEFAULT_REGISTRY.evaluate("restricted", pod["metadata"], pod["spec"])
    assert evaluation.message() == (
        'violates PodSecurity "restricted:latest": host namespaces (hostNetwork=true), '
        "allowPrivilegeEscalation != false "
        '(container "app" must set securityContext.allowPrivilegeEscalation=false)'
    )
    assert [c.field for c in evaluation.causes()] == [
        "spec.hostNetwork",
        "spec.containers[0].securityContext.allowPrivilegeEscalation",
    ]


def test_plural_containers_in_details() -> None:
    pod = hardened_pod()
    pod["spec"]["containers"] = [container("a", privileged=True), container("b", privileged=True)]
    detail = _failed("baseline", pod)["privileged"].detail
    assert detail == 'containers "a", "b" must not set securityContext.privileged=true'


def test_user_namespace_relaxes_baseline_proc_mount_and_restricted_run_as_checks() -> None:
    pod = hardened_pod(hostUsers=False)
    del pod["spec"]["securityContext"]["runAsNonRoot"]
    pod["spec"]["securityContext"]["runAsUser"] = 0
    pod["spec"]["containers"][0]["securityContext"]["procMount"] = "Unmasked"
    assert "procMount" not in _failed("baseline", pod)
    restricted = _failed("restricted", pod)
    assert set(restricted) == {"procMount_restricted"}
    assert {"runAsUser_hardened", "procMount_restricted"} <= set(_failed("hardened", pod))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}]}, set()),
        ({"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}, {"sysctls"}),
        ({"seLinuxOptions": {"type": "container_engine_t"}}, set()),
        ({"seLinuxOptions": {"user": "root"}}, {"seLinuxOptions"}),
    ],
)
def test_pod_level_security_context_values(change: dict[str, Any], expected: set[str]) -> None:
    pod = hardened_pod()
    pod["spec"]["securityContext"].update(change)
    assert set(_failed("baseline", pod)) == expected


@pytest.mark.parametrize(
    ("volume", "allowed"),
    [
        ({"name": "v", "emptyDir": {}}, True),
        ({"name": "v", "image": {"reference": "registry.example/data:1"}}, True),
        ({"name": "v"}, True),  # no source: the API defaults it to emptyDir
        ({"name": "v", "nfs": {"server": "s", "path": "/"}}, False),
        ({"name": "v", "gitRepo": {"repository": "r"}}, False),
    ],
)
def test_restricted_volume_types(volume: dict[str, Any], allowed: bool) -> None:
    pod = hardened_pod(volumes=[volume])
    assert ("restrictedVolumes" not in _failed("restricted", pod)) is allowed


@pytest.mark.parametrize("limit", ["128Mi", "1G", "0.5Gi", 1048576, "1e9"])
def test_memory_limit_quantities_accepted(limit: object) -> None:
    pod = hardened_pod()
    pod["spec"]["containers"][0]["resources"]["limits"]["memory"] = limit
    assert "memoryLimits" not in _failed("hardened", pod)


@pytest.mark.parametrize("limit", ["0", "0Mi", 0, "lots", "-1Gi", ""])
def test_memory_limit_quantities_refused(limit: object) -> None:
    pod = hardened_pod()
    pod["spec"]["containers"][0]["resources"]["limits"]["memory"] = limit
    result = _failed("hardened", pod)["memoryLimits"]
    assert result.causes[0].field == "spec.containers[0].resources.limits.memory"


def test_ephemeral_containers_need_no_memory_limit() -> None:
    assert _failed("hardened", _with_ephemeral({})) == {}


def test_hardened_runs_as_ids_inherit_from_the_pod_or_not() -> None:
    pod = hardened_pod()
    del pod["spec"]["securityContext"]["runAsGroup"]
    pod["spec"]["initContainers"] = [container("init", runAsGroup=5)]
    result = _failed("hardened", pod)["runAsGroup_hardened"]
    assert result.detail == 'pod or container "app" must set securityContext.runAsGroup to a non-zero ID'


def test_container_path_names_the_very_object() -> None:
    pod = hardened_pod()
    twin = copy.deepcopy(pod["spec"]["containers"][0])
    pod["spec"]["containers"].append(twin)
    assert container_path(pod["spec"], twin) == "spec.containers[1]"


# Values of the wrong type never reach the checks through the webhook (they are refused by the shape
# check first), but the checks do not rely on that: each fails closed on a value it cannot judge.
ODD_VALUES = [
    ("hostNamespaces", lambda spec: spec.update(hostNetwork="yes")),
    ("privileged", lambda spec: spec["containers"][0]["securityContext"].update(privileged="true")),
    ("windowsHostProcess", lambda spec: spec["securityContext"].update(windowsOptions={"hostProcess": 1})),
    ("runAsNonRoot", lambda spec: spec["securityContext"].update(runAsNonRoot="true")),
    ("runAsNonRoot", lambda spec: spec["containers"][0]["securityContext"].update(runAsNonRoot=1)),
    ("runAsUser", lambda spec: spec["containers"][0]["securityContext"].update(runAsUser="0")),
    (
        "capabilities_restricted",
        lambda spec: spec["containers"][0]["securityContext"].update(capabilities={"drop": "ALL"}),
    ),
    ("hostPorts", lambda spec: spec["containers"][0].update(ports=[{"hostPort": "80"}])),
    ("procMount_restricted", lambda spec: spec["containers"][0]["securityContext"].update(procMount=0)),
]


@pytest.mark.parametrize(
    ("check_id", "tweak"), ODD_VALUES, ids=[f"{c}-{i}" for i, (c, _) in enumerate(ODD_VALUES)]
)
def test_checks_fail_closed_on_values_they_cannot_judge(check_id: str, tweak: Any) -> None:
    pod = hardened_pod()
    tweak(pod["spec"])
    check = next(c for c in ALL_CHECKS if c.id == check_id)
    assert not check(pod["metadata"], pod["spec"]).allowed


@pytest.mark.parametrize(
    ("field", "value"),
    [("runAsUser", "1000"), ("runAsGroup", True), ("runAsUser", 0)],
)
def test_hardened_ids_must_be_real_non_zero_integers(field: str, value: Any) -> None:
    pod = hardened_pod()
    pod["spec"]["securityContext"][field] = value
    check = next(c for c in ALL_CHECKS if c.id == f"{field}_hardened")
    assert not check(pod["metadata"], pod["spec"]).allowed


def test_containers_setting_keeps_order_counts_null_and_matches_inside_and_outside_a_visit() -> None:
    spec: dict[str, Any] = {
        "initContainers": [{"name": "a", "securityContext": {"privileged": None}}],
        "containers": [{"name": "b"}, {"name": "c", "securityContext": {"privileged": True}}],
        "ephemeralContainers": [{"name": "d", "securityContext": {"runAsUser": 0}}],
    }
    outside = [c["name"] for c, _ in containers_setting(spec, "privileged")]
    token = start_visit(spec)
    try:
        inside = [c["name"] for c, _ in containers_setting(spec, "privileged")]
        assert containers_setting(spec, "procMount") == []
    finally:
        end_visit(token)
    assert outside == inside == ["a", "c"]
