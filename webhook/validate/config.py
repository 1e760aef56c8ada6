"""The validation configuration file: default levels, exemptions, workload enforcement, owner rules.

    apiVersion: remora.dev/v1alpha1
    kind: ValidationConfiguration
    defaults:            # levels for namespaces without the remora.dev/<mode> label ("" = mode off)
      enforce: ""
      warn: ""
      audit: ""
    workloads:
      enforce: false     # pod templates of Deployments, Jobs, ...: warn only unless true
    exemptions:          # as upstream's PodSecurity admission configuration
      namespaces: []     # e.g. [kube-system]
      usernames: []      # requesting users whose pods are not checked
      runtimeClasses: [] # pods with one of these spec.runtimeClassName are not checked
    owners:
      jobControllerUsernames: [...]          # may create Job pods with blockOwnerDeletion=true
      garbageCollectorUsernames: [...]       # may remove owner references (orphaning)

Every field is optional; an unknown key or a value of the wrong type is an error naming it, since
a typo in a security setting must not pass silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from common.names import API_VERSION, LEVELS
from webhook.validate.owners import OwnerConfig
from webhook.validate.policy import Exemptions, Levels, PolicyConfig

KIND: Final = "ValidationConfiguration"
MAX_BYTES: Final = 64 * 1024


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class ValidationConfig:
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    owners: OwnerConfig = field(default_factory=OwnerConfig)


def load(path: str | Path) -> ValidationConfig:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: {len(data)} bytes, over the limit of {MAX_BYTES}")
    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML: {str(exc).splitlines()[0]}") from None
    try:
        return parse(document)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse(document: Any) -> ValidationConfig:
    if document is None:
        return ValidationConfig()
    root = _mapping(
        document, "the configuration", {"apiVersion", "kind", "defaults", "workloads", "exemptions", "owners"}
    )
    if root.get("apiVersion", API_VERSION) != API_VERSION:
        raise ConfigError(f"apiVersion must be {API_VERSION!r}")
    if root.get("kind", KIND) != KIND:
        raise ConfigError(f"kind must be {KIND!r}")
    defaults = _mapping(root.get("defaults"), "defaults", {"enforce", "warn", "audit"})
    workloads = _mapping(root.get("workloads"), "workloads", {"enforce"})
    exemptions = _mapping(root.get("exemptions"), "exemptions", {"namespaces", "usernames", "runtimeClasses"})
    owners = _mapping(root.get("owners"), "owners", {"jobControllerUsernames", "garbageCollectorUsernames"})
    enforce_workloads = workloads.get("enforce", False)
    if not isinstance(enforce_workloads, bool):
        raise ConfigError("workloads.enforce must be true or false")
    policy = PolicyConfig(
        defaults=Levels(
            **{mode: _level(defaults.get(mode), f"defaults.{mode}") for mode in ("enforce", "warn", "audit")}
        ),
        exemptions=Exemptions(
            namespaces=_strings(exemptions.get("namespaces"), "exemptions.namespaces"),
            usernames=_strings(exemptions.get("usernames"), "exemptions.usernames"),
            runtime_classes=_strings(exemptions.get("runtimeClasses"), "exemptions.runtimeClasses"),
        ),
        enforce_workloads=enforce_workloads,
    )
    default_owners = OwnerConfig()
    owner_config = OwnerConfig(
        job_controller_usernames=_strings(
            owners.get("jobControllerUsernames"),
            "owners.jobControllerUsernames",
            default_owners.job_controller_usernames,
        ),
        garbage_collector_usernames=_strings(
            owners.get("garbageCollectorUsernames"),
            "owners.garbageCollectorUsernames",
            default_owners.garbage_collector_usernames,
        ),
    )
    return ValidationConfig(policy=policy, owners=owner_config)


def _mapping(value: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping")
    unknown = sorted(str(key) for key in value if key not in allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
    return value


def _level(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if value not in LEVELS:
        raise ConfigError(f"{where} must be one of {', '.join(LEVELS)} or empty, not {value!r}")
    return str(value)


def _strings(value: Any, where: str, default: frozenset[str] = frozenset()) -> frozenset[str]:
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f"{where} must be a list of non-empty strings")
    return frozenset(value)
