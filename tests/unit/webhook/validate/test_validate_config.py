"""The validation configuration file: every field, and a clear error for each kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from webhook.validate.config import ConfigError, ValidationConfig, load, parse
from webhook.validate.owners import OwnerConfig

EXAMPLE = """
apiVersion: remora.dev/v1alpha1
kind: ValidationConfiguration
defaults:
  enforce: baseline
  warn: restricted
  audit: hardened
workloads:
  enforce: true
exemptions:
  namespaces: [kube-system]
  usernames: ["system:serviceaccount:ci:deployer"]
  runtimeClasses: [kata]
owners:
  jobControllerUsernames: ["system:kube-controller-manager"]
"""


def test_a_full_configuration(tmp_path: Path) -> None:
    path = tmp_path / "validation.yaml"
    path.write_text(EXAMPLE)
    config = load(path)
    assert config.policy.defaults.enforce == "baseline"
    assert config.policy.defaults.audit == "hardened"
    assert config.policy.enforce_workloads is True
    assert config.policy.exemptions.namespaces == frozenset({"kube-system"})
    assert config.policy.exemptions.runtime_classes == frozenset({"kata"})
    assert config.owners.job_controller_usernames == frozenset({"system:kube-controller-manager"})
    assert config.owners.garbage_collector_usernames == OwnerConfig().garbage_collector_usernames


def test_empty_means_defaults() -> None:
    assert parse(None) == ValidationConfig()
    assert parse({"defaults": {"enforce": ""}}).policy.defaults.enforce is None


def test_the_shipped_example_is_valid() -> None:
    example = Path(__file__).resolve().parents[4] / "examples" / "validation-config.yaml"
    assert load(example).policy.exemptions.namespaces


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([], "the configuration must be a mapping"),
        ({"kind": "Other"}, "kind must be"),
        ({"apiVersion": "v1"}, "apiVersion must be"),
        ({"defualts": {}}, "unknown field 'defualts'"),
        ({"defaults": {"enforce": "strict"}}, "defaults.enforce must be one of"),
        ({"defaults": {"block": "baseline"}}, "unknown field 'block'"),
        ({"workloads": {"enforce": "yes"}}, "workloads.enforce must be true or false"),
        ({"exemptions": {"namespaces": "kube-system"}}, "exemptions.namespaces must be a list"),
        ({"exemptions": {"usernames": [""]}}, "exemptions.usernames must be a list of non-empty strings"),
        ({"owners": []}, "owners must be a mapping"),
    ],
)
def test_mistakes_are_named(document: object, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        parse(document)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("defaults: [")
    with pytest.raises(ConfigError, match=r"broken.yaml: not YAML"):
        load(broken)
    huge = tmp_path / "huge.yaml"
    huge.write_text("#" * 70_000)
    with pytest.raises(ConfigError, match="over the limit"):
        load(huge)
