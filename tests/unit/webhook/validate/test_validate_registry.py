"""The registry itself: unique ids, valid levels, sound overrides, every check module listed."""

from __future__ import annotations

import ast
import dataclasses
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.names import LEVELS
from webhook.validate import checks
from webhook.validate.checks import ALL_CHECKS
from webhook.validate.checks.base import ALLOWED, Check, CheckResult
from webhook.validate.registry import DEFAULT_REGISTRY, Registry, RegistryError, levels_table, validate

CHECKS_DIR = Path(checks.__file__).parent


def test_all_checks_form_a_valid_registry() -> None:
    validate(ALL_CHECKS)
    ids = [check.id for check in ALL_CHECKS]
    assert len(ids) == len(set(ids))
    assert all(check.level in LEVELS for check in ALL_CHECKS)


def test_every_check_module_is_listed_and_documents_its_fields() -> None:
    modules = [m.name for m in pkgutil.iter_modules([str(CHECKS_DIR)]) if not m.name.startswith("_")]
    modules.remove("base")
    listed = {check.fn.__module__.rsplit(".", 1)[1] for check in ALL_CHECKS}
    assert listed == set(modules), "a check module is missing from ALL_CHECKS (or listed twice)"
    for name in modules:
        doc = ast.get_docstring(ast.parse((CHECKS_DIR / f"{name}.py").read_text())) or ""
        assert "Restricted fields" in doc and "Allowed values" in doc, f"{name}.py must open with its fields"


def _noop(meta: object, spec: object) -> CheckResult:
    return ALLOWED


@pytest.mark.parametrize(
    ("checks_", "problem"),
    [
        ((Check("a", "baseline", _noop), Check("a", "restricted", _noop)), "registered twice"),
        ((Check("a", "privileged", _noop),), "level 'privileged'"),
        ((Check("", "baseline", _noop),), "empty id"),
        ((Check("a", "restricted", _noop, overrides=("nope",)),), "unknown check 'nope'"),
        ((Check("a", "baseline", _noop), Check("b", "baseline", _noop, overrides=("a",))), "lower level"),
    ],
)
def test_invalid_registries_are_rejected(checks_: tuple[Check, ...], problem: str) -> None:
    with pytest.raises(RegistryError, match=problem):
        Registry(checks_)


def test_levels_are_cumulative_minus_overrides() -> None:
    table = levels_table()
    baseline, restricted, hardened = (set(table[level]) for level in LEVELS)
    assert (
        "hostPathVolumes" in baseline and "hostPathVolumes" not in restricted
    )  # restrictedVolumes overrides
    assert "seccompProfile_baseline" not in restricted and "seccompProfile_restricted" in restricted
    assert "capabilities_baseline" not in restricted and "capabilities_restricted" not in hardened
    assert "procMount" in baseline and "procMount" not in restricted and "procMount_restricted" in restricted
    assert "runAsUser" in restricted and "runAsUser" not in hardened and "runAsUser_hardened" in hardened
    assert len(baseline) == 12 and len(restricted) == 12 + 7 - 4  # 4 baseline checks overridden
    assert hardened >= restricted - {"runAsUser", "capabilities_restricted"}


def test_order_is_stable_by_level_then_id() -> None:
    ids = [check.id for check in DEFAULT_REGISTRY.checks_for("hardened")]
    ranks = [LEVELS.index(check.level) for check in DEFAULT_REGISTRY.checks_for("hardened")]
    assert ranks == sorted(ranks)
    for rank in set(ranks):
        group = [i for i, r in zip(ids, ranks, strict=True) if r == rank]
        assert group == sorted(group)


def test_windows_pods_skip_exactly_the_linux_only_checks() -> None:
    linux = {c.id for c in DEFAULT_REGISTRY.checks_for("restricted")}
    windows = {c.id for c in DEFAULT_REGISTRY.checks_for("restricted", windows=True)}
    assert linux - windows == {
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "seccompProfile_restricted",
    }
    hardened_windows = {c.id for c in DEFAULT_REGISTRY.checks_for("hardened", windows=True)}
    assert "memoryLimits" in hardened_windows and "readOnlyRootFilesystem" not in hardened_windows


def test_unknown_level_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown level"):
        DEFAULT_REGISTRY.checks_for("privileged")


def test_a_result_without_reason_gets_the_fallback() -> None:
    def silent(meta: object, spec: object) -> CheckResult:
        return CheckResult(False)

    registry = Registry((Check("silent", "baseline", silent),))
    evaluation = registry.evaluate("baseline", {}, {})
    assert evaluation.message() == 'violates PodSecurity "baseline:latest": unknown forbidden reason'


# Values that pass and values that fail, for every field a skippable check reads (and a few it
# does not), so that a wrong `only_if_set` shows up as a verdict that differs from a full run.
_POD_FIELDS = {
    "hostNetwork": [True, False],
    "hostPID": [True],
    "hostIPC": [True],
    "hostUsers": [False, True],
    "volumes": [[{"name": "h", "hostPath": {"path": "/"}}], [{"name": "e", "emptyDir": {}}], []],
    "os": [{"name": "windows"}, {"name": "linux"}],
}
_POD_SECURITY = {
    "sysctls": [[{"name": "kernel.shm_rmid_forced"}], [{"name": "kernel.msgmax"}]],
    "seLinuxOptions": [{"type": "spc_t"}, {"type": "container_t"}, {"user": "root"}],
    "seccompProfile": [{"type": "Unconfined"}, {"type": "RuntimeDefault"}],
    "windowsOptions": [{"hostProcess": True}, {"hostProcess": False}],
    "appArmorProfile": [{"type": "Unconfined"}],
    "runAsUser": [0, 1000],
    "runAsGroup": [0, 1000],
    "runAsNonRoot": [True, False],
}
_CONTAINER = {
    "ports": [[{"containerPort": 80, "hostPort": 80}], [{"containerPort": 80}]],
    "readinessProbe": [{"httpGet": {"port": 80, "host": "10.0.0.1"}}, {"httpGet": {"port": 80}}],
    "lifecycle": [{"preStop": {"tcpSocket": {"port": 80, "host": "example.com"}}}],
    "startupProbe": [{"tcpSocket": {"port": 80}}],
    "resources": [{"limits": {"memory": "64Mi"}}],
}
_CONTAINER_SECURITY = {
    "privileged": [True, False, None],
    "procMount": ["Unmasked", "Default"],
    "capabilities": [
        {"add": ["SYS_ADMIN"]},
        {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
        {"drop": ["ALL"]},
    ],
    "seLinuxOptions": [{"type": "spc_t"}, {"level": "s0"}],
    "seccompProfile": [{"type": "Unconfined"}, {"type": "Localhost", "localhostProfile": "p"}],
    "windowsOptions": [{"hostProcess": True}],
    "runAsUser": [0, 1000],
    "allowPrivilegeEscalation": [False, True],
    "readOnlyRootFilesystem": [True],
}


def _some(fields: dict[str, list[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {}, optional={key: st.sampled_from(values) for key, values in fields.items()}
    )


@st.composite
def _pods(draw: st.DrawFn) -> dict[str, Any]:
    def container(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "image": "i",
            **draw(_some(_CONTAINER)),
            "securityContext": draw(_some(_CONTAINER_SECURITY)),
        }

    spec: dict[str, Any] = {**draw(_some(_POD_FIELDS)), "securityContext": draw(_some(_POD_SECURITY))}
    for list_name in ("initContainers", "containers", "ephemeralContainers"):
        spec[list_name] = [container(f"{list_name}-{i}") for i in range(draw(st.integers(0, 2)))]
    return spec


_NEVER_SKIPPING = Registry(tuple(dataclasses.replace(check, only_if_set=frozenset()) for check in ALL_CHECKS))


@settings(max_examples=400, deadline=None)
@given(spec=_pods(), level=st.sampled_from(LEVELS))
def test_skipping_checks_for_unset_fields_never_changes_a_verdict(spec: dict[str, Any], level: str) -> None:
    assert DEFAULT_REGISTRY.evaluate(level, {}, spec) == _NEVER_SKIPPING.evaluate(level, {}, spec)


def test_a_check_is_skipped_only_when_the_pod_sets_none_of_its_fields() -> None:
    calls: list[str] = []

    def seen(meta: object, spec: object) -> CheckResult:
        calls.append("ran")
        return ALLOWED

    registry = Registry((Check("watching", "baseline", seen, only_if_set=frozenset({"privileged"})),))
    registry.evaluate("baseline", {}, {"containers": [{"name": "a"}]})
    assert calls == []
    registry.evaluate(
        "baseline", {}, {"containers": [{"name": "a", "securityContext": {"privileged": None}}]}
    )
    assert calls == ["ran"]
