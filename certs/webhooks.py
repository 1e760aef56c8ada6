"""Read and write the caBundle of Remora's Mutating- and ValidatingWebhookConfigurations.

The rotation is the only writer of caBundle. It writes with a JSON patch that first
tests the resourceVersion and each webhook's name, so a configuration that changed
since it was read (a `helm upgrade` reordering webhooks, say) is never patched blindly:
the patch fails, the caller re-reads and tries again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from cryptography import x509

from certs import bundle
from certs.issue import CertError
from common.kube import ApiError, request

API: Final = "/apis/admissionregistration.k8s.io/v1"
KINDS: Final = ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")
MAX_ATTEMPTS: Final = 5


class WebhookError(Exception):
    """The webhook configurations cannot be found or patched; the message says which and why."""


@dataclass(frozen=True)
class Target:
    """Which configurations are Remora's: by name (both kinds) or by label selector."""

    names: tuple[str, ...] = ()
    selector: str | None = None

    def __post_init__(self) -> None:
        if not self.names and not self.selector:
            raise ValueError("name the webhook configurations or give a label selector")


@dataclass(frozen=True)
class WebhookConfig:
    resource: str  # plural, one of KINDS
    name: str
    resource_version: str
    # (webhook name, caBundle as stored (base64) or None)
    webhooks: tuple[tuple[str, str | None], ...]
    uses_cert_manager: bool = False

    @property
    def label(self) -> str:
        kind = "Mutating" if self.resource.startswith("mutating") else "Validating"
        return f"{kind}WebhookConfiguration {self.name}"


def find(api: Any, target: Target) -> list[WebhookConfig]:
    """Every configuration the target names; WebhookError when none exists."""
    found: list[WebhookConfig] = []
    for resource in KINDS:
        if target.selector:
            listed = request(api, "GET", f"{API}/{resource}", query={"labelSelector": target.selector})
            found += [_decode(resource, item) for item in listed.get("items") or []]
        for name in target.names:
            try:
                found.append(_decode(resource, request(api, "GET", f"{API}/{resource}/{quote(name)}")))
            except ApiError as exc:
                if not exc.not_found:
                    raise
    unique = {(c.resource, c.name): c for c in found}
    if not unique:
        raise WebhookError(f"no webhook configuration found for {_describe(target)}")
    return sorted(unique.values(), key=lambda c: (c.resource, c.name))


def disagreements(configs: list[WebhookConfig], wanted: list[x509.Certificate]) -> list[str]:
    """One line per webhook whose caBundle is not exactly the wanted set of CAs."""
    problems: list[str] = []
    for config in configs:
        for name, value in config.webhooks:
            if not value:
                problems.append(f"{config.label}: webhook {name} has no caBundle")
                continue
            try:
                live = bundle.parse_base64(value)
            except CertError as exc:
                problems.append(f"{config.label}: webhook {name}: {exc}")
                continue
            if not bundle.same(live, wanted):
                problems.append(f"{config.label}: webhook {name} trusts other CAs than the stored bundle")
    return problems


def live_bundles(configs: list[WebhookConfig]) -> dict[str, list[x509.Certificate] | str]:
    """Each webhook's trusted CAs, or a line saying why there are none."""
    out: dict[str, list[x509.Certificate] | str] = {}
    for config in configs:
        for name, value in config.webhooks:
            key = f"{config.label}/{name}"
            if not value:
                out[key] = "no caBundle"
                continue
            try:
                out[key] = bundle.parse_base64(value)
            except CertError as exc:
                out[key] = str(exc)
    return out


def patch_ops(config: WebhookConfig, ca_bundle_b64: str) -> list[dict[str, Any]]:
    """A JSON patch writing caBundle into every webhook, guarded by tests on what was read."""
    ops: list[dict[str, Any]] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": config.resource_version}
    ]
    for index, (name, current) in enumerate(config.webhooks):
        if current == ca_bundle_b64:
            continue
        ops.append({"op": "test", "path": f"/webhooks/{index}/name", "value": name})
        ops.append({"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": ca_bundle_b64})
    return ops


def publish(api: Any, target: Target, certs: list[x509.Certificate]) -> list[str]:
    """Write the bundle into every webhook that lacks it; returns the configurations changed.

    Configurations that cert-manager's CA injector manages are left to it.
    """
    if not certs:
        raise WebhookError("refusing to publish an empty CA bundle")
    encoded = bundle.encode_base64(certs)
    changed: list[str] = []
    for attempt in range(MAX_ATTEMPTS):
        pending = [
            c
            for c in find(api, target)
            if not c.uses_cert_manager and any(v != encoded for _, v in c.webhooks)
        ]
        if not pending:
            return changed
        raced = False
        for config in pending:
            try:
                request(
                    api,
                    "PATCH",
                    f"{API}/{config.resource}/{quote(config.name)}",
                    body=patch_ops(config, encoded),
                    content_type="application/json-patch+json",
                )
                changed.append(config.label)
            except ApiError as exc:
                # A failed "test" op is 422 (Invalid) or 409; either way, the object moved.
                if exc.status in (409, 422) or exc.not_found:
                    raced = True
                    continue
                raise WebhookError(f"patching {config.label}: {exc}") from None
        if not raced:
            return changed
        if attempt == MAX_ATTEMPTS - 1:
            break
    raise WebhookError(f"the webhook configurations kept changing; gave up after {MAX_ATTEMPTS} attempts")


def _decode(resource: str, obj: dict[str, Any]) -> WebhookConfig:
    meta = obj.get("metadata") or {}
    hooks: list[tuple[str, str | None]] = []
    for hook in obj.get("webhooks") or []:
        client = hook.get("clientConfig") or {}
        value = client.get("caBundle")
        hooks.append((str(hook.get("name", "")), value if isinstance(value, str) and value else None))
    annotations = meta.get("annotations") or {}
    return WebhookConfig(
        resource=resource,
        name=str(meta.get("name", "")),
        resource_version=str(meta.get("resourceVersion", "")),
        webhooks=tuple(hooks),
        uses_cert_manager="cert-manager.io/inject-ca-from" in annotations,
    )


def _describe(target: Target) -> str:
    parts = []
    if target.names:
        parts.append("name " + ", ".join(target.names))
    if target.selector:
        parts.append(f"label selector {target.selector!r}")
    return " or ".join(parts)
