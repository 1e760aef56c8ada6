"""Names fixed by the design contract (DESIGN.md): API group, kinds, labels and annotations."""

from __future__ import annotations

from typing import Final

GROUP: Final = "remora.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

# Namespace label that turns injection on ("enabled") or off ("disabled").
INJECTION_LABEL: Final = "remora.dev/injection"
# Pod annotation listing the capabilities an agent pod wants, comma separated.
CAPABILITIES_ANNOTATION: Final = "remora.dev/capabilities"
# Pod label that opts one pod out of injection when "false".
INJECT_LABEL: Final = "remora.dev/inject"
# Namespace annotation limiting which capabilities its pods may ask for.
ALLOWED_CAPABILITIES_ANNOTATION: Final = "remora.dev/allowed-capabilities"
# Pod annotation the injector writes: JSON with capabilities, catalog hash and injector version.
STATUS_ANNOTATION: Final = "remora.dev/status"
# Namespace labels choosing the validating policy level per mode.
ENFORCE_LABEL: Final = "remora.dev/enforce"
WARN_LABEL: Final = "remora.dev/warn"
AUDIT_LABEL: Final = "remora.dev/audit"
LEVELS: Final = ("baseline", "restricted", "hardened")
# Label on capability resources naming the agent pod that owns the work.
AGENT_LABEL: Final = "remora.dev/agent"
# Label on everything the capability operators create.
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "remora"
# Injected sidecars are named SIDECAR_PREFIX + capability ("remora-build").
SIDECAR_PREFIX: Final = "remora-"
# The capability catalog: a ConfigMap in the release namespace.
CATALOG_CONFIGMAP: Final = "remora-capabilities"
CATALOG_KEY: Final = "catalog.yaml"


class Kind:
    """One capability custom resource kind and the names the API serves it under."""

    __slots__ = ("capability", "kind", "plural", "short_name", "singular")

    def __init__(self, capability: str, kind: str, plural: str, singular: str, short_name: str) -> None:
        self.capability = capability
        self.kind = kind
        self.plural = plural
        self.singular = singular
        self.short_name = short_name

    def __repr__(self) -> str:
        return f"Kind({self.kind})"


KINDS: Final = (
    Kind("build", "BuildRequest", "buildrequests", "buildrequest", "br"),
    Kind("test", "TestRun", "testruns", "testrun", "tr"),
    Kind("migrate", "DatabaseMigration", "databasemigrations", "databasemigration", "dbm"),
)
KIND_BY_CAPABILITY: Final = {k.capability: k for k in KINDS}
KIND_BY_NAME: Final = {k.kind: k for k in KINDS}
CAPABILITIES: Final = tuple(k.capability for k in KINDS)


def parse_capability_list(value: str) -> list[str]:
    """Split "build, test,,build" into ["build", "test"]: trimmed, de-duplicated, order kept."""
    seen: dict[str, None] = {}
    for part in value.split(","):
        name = part.strip()
        if name:
            seen.setdefault(name, None)
    return list(seen)
