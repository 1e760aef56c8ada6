"""Heuristics that tell a helper (a would-be sidecar) from a main application.

A helper is recognised by whole words in its container name, its image's repository
name, or a workload's name and identifying labels: `fluent-bit`, `envoy`, `promtail`.
Words match on token boundaries ("log-shipper" matches "logging-log-shipper", "api"
does not match "rapid"), and the few words that are common English or product names
elsewhere (vector, proxy alone in an image path) are listed where they are unambiguous.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from common import names
from lint.model import Container, Workload, as_list, as_str

# Helper words -> what the helper does, for messages.
HELPER_WORDS: Final[dict[str, str]] = {
    "fluentd": "log shipper",
    "fluent-bit": "log shipper",
    "fluentbit": "log shipper",
    "filebeat": "log shipper",
    "logstash": "log shipper",
    "promtail": "log shipper",
    "logging": "log shipper",
    "log-shipper": "log shipper",
    "log-forwarder": "log shipper",
    "log-collector": "log shipper",
    "envoy": "proxy",
    "proxy": "proxy",
    "proxyv2": "proxy",
    "istio-proxy": "proxy",
    "linkerd-proxy": "proxy",
    "oauth2-proxy": "proxy",
    "cloud-sql-proxy": "proxy",
    "cloudsql-proxy": "proxy",
    "otel-collector": "telemetry agent",
    "opentelemetry-collector": "telemetry agent",
    "otelcol": "telemetry agent",
    "jaeger-agent": "telemetry agent",
    "datadog-agent": "telemetry agent",
    "statsd-exporter": "telemetry agent",
    "telegraf": "telemetry agent",
    "vault-agent": "secrets agent",
}
# Words that name a helper only when they are the whole name (a "vector" database is not a log shipper).
EXACT_HELPER_WORDS: Final[dict[str, str]] = {"vector": "log shipper", "fluent": "log shipper"}
MAIN_WORDS: Final = ("frontend", "backend", "api", "app", "web", "webapp", "server", "ui", "www", "site")
# Labels whose values name what a workload is.
IDENTITY_LABELS: Final = (
    "app",
    "name",
    "component",
    "tier",
    "role",
    "k8s-app",
    "app.kubernetes.io/name",
    "app.kubernetes.io/component",
    "app.kubernetes.io/instance",
)
REMORA_SIDECAR = "Remora capability operator"

_SPLIT = re.compile(r"[^a-z0-9]+")


def tokens(text: str) -> list[str]:
    return [t for t in _SPLIT.split(text.lower()) if t]


def image_name(image: str) -> str:
    """The repository's last path element: 'docker.io/fluent/fluent-bit:2.2@sha256:..' -> 'fluent-bit'."""
    image = image.split("@", 1)[0]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[0].lower()


def _phrases(text: str) -> set[str]:
    """Every run of up to three consecutive tokens, joined by '-': the phrases a word can match."""
    found = tokens(text)
    return {"-".join(found[i : i + width]) for width in (1, 2, 3) for i in range(len(found) - width + 1)}


def _canonical(word: str) -> str:
    return "-".join(tokens(word))


_HELPER_PHRASES: Final = {_canonical(word): role for word, role in HELPER_WORDS.items()}
_MAIN_PHRASES: Final = {_canonical(word): word for word in MAIN_WORDS}


@lru_cache(maxsize=8192)
def _helper_role_of(text: str) -> str | None:
    phrases = _phrases(text)
    for phrase, role in _HELPER_PHRASES.items():
        if phrase in phrases:
            return role
    return EXACT_HELPER_WORDS.get(text.lower())


def helper_role(*texts: str) -> str | None:
    """What helper any of `texts` names ('log shipper', 'proxy', ...), or None."""
    for text in texts:
        role = _helper_role_of(text) if text else None
        if role:
            return role
    return None


def is_remora_sidecar(container: Container) -> bool:
    """A capability operator: named as the injector names them (remora-<capability>), or run
    as `remora operator <capability>` (how the catalog starts them)."""
    name = container.name.lower()
    if any(
        name in (names.SIDECAR_PREFIX + cap, f"{names.SIDECAR_PREFIX}{cap}-operator")
        for cap in names.CAPABILITIES
    ):
        return True
    command = [as_str(part) for part in as_list(container.body.get("command"))]
    command += [as_str(part) for part in as_list(container.body.get("args"))]
    return len(command) >= 2 and command[0].rsplit("/", 1)[-1] == "remora" and command[1] == "operator"


def container_helper_role(container: Container) -> str | None:
    """What helper this container is, by its name and image, or None for an app container."""
    if is_remora_sidecar(container):
        return REMORA_SIDECAR
    return helper_role(container.name, image_name(container.image))


def sidecars(workload: Workload) -> list[tuple[Container, str]]:
    """The sidecars of a pod: native ones (whatever they are) and plain containers that are helpers.

    A pod whose only container is a helper is that helper's own workload, not a sidecar.
    """
    native, plain_helpers, app_count = [], [], 0
    for container in workload.containers():
        role = container_helper_role(container)
        if container.role == "sidecar":
            native.append((container, role or "sidecar"))
        elif container.role == "app":
            app_count += 1
            if role:
                plain_helpers.append((container, role))
    if len(plain_helpers) == app_count:
        plain_helpers = []  # every regular container is a helper: nothing here to be a sidecar of
    return native + plain_helpers


def workload_helper_role(workload: Workload) -> str | None:
    """What helper a whole workload is: by its name, its identifying labels, or all its app containers."""
    texts = [workload.name, *(workload.labels.get(key, "") for key in IDENTITY_LABELS)]
    role = helper_role(*texts)
    if role:
        return role
    app = [c for c in workload.containers() if c.role == "app"]
    roles = {helper_role(c.name, image_name(c.image)) for c in app}
    if app and None not in roles:
        return sorted(r for r in roles if r)[0]
    return None


def main_app_word(workload: Workload) -> str | None:
    """The word that marks a workload as a main application (frontend, api, ...), or None."""
    texts = [workload.name, *(workload.labels.get(key, "") for key in IDENTITY_LABELS)]
    for text in texts:
        phrases = _phrases(text)
        for phrase, word in _MAIN_PHRASES.items():
            if phrase in phrases:
                return word
    return None
