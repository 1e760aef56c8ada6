"""Who gets sidecars, and which ones they may have: pure functions of the pod and its namespace."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from common.names import (
    ALLOWED_CAPABILITIES_ANNOTATION,
    CAPABILITIES_ANNOTATION,
    INJECT_LABEL,
    INJECTION_LABEL,
    parse_capability_list,
)
from webhook.catalog import Catalog
from webhook.namespaces import Namespace


class Denied(Exception):
    """The pod asks for something it may not have; the message says what and what is allowed."""


def skip_reason(
    pod: Mapping[str, Any], namespace: Namespace | None, requested: list[str] | None = None
) -> str | None:
    """Why this pod gets no sidecars, or None if it should get them.

    `namespace` None means the namespace is not known here (offline use, or a webhook
    without a namespace view): the webhook configuration's namespaceSelector decided.
    `requested` saves reading the capabilities annotation again when the caller has it.
    """
    meta = pod.get("metadata") or {}
    if namespace is not None and namespace.labels.get(INJECTION_LABEL) != "enabled":
        return f"namespace {namespace.name} does not have {INJECTION_LABEL}=enabled"
    if (meta.get("labels") or {}).get(INJECT_LABEL) == "false":
        return f"the pod opts out with {INJECT_LABEL}=false"
    if not (requested_capabilities(pod) if requested is None else requested):
        return f"the pod has no {CAPABILITIES_ANNOTATION} annotation"
    return None


def should_inject(pod: Mapping[str, Any], namespace: Namespace | None) -> bool:
    return skip_reason(pod, namespace) is None


def requested_capabilities(pod: Mapping[str, Any]) -> list[str]:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(CAPABILITIES_ANNOTATION)
    return list(_parse(value)) if isinstance(value, str) else []


@lru_cache(maxsize=1024)
def _parse(value: str) -> tuple[str, ...]:
    # The same few annotation values arrive again and again: parse each once.
    return tuple(parse_capability_list(value))


def allowed_capabilities(namespace: Namespace | None) -> list[str] | None:
    """The namespace's allow-list, or None when it sets none."""
    if namespace is None:
        return None
    value = namespace.annotations.get(ALLOWED_CAPABILITIES_ANNOTATION)
    return list(_parse(value)) if isinstance(value, str) else None


def check_requested(requested: Iterable[str], catalog: Catalog, namespace: Namespace | None) -> None:
    """Raise Denied for a capability the catalog lacks or the namespace does not allow."""
    requested = list(requested)
    unknown = [name for name in requested if name not in catalog.capabilities]
    if unknown:
        raise Denied(
            f"unknown {_plural('capability', unknown)} {_names(unknown)} in {CAPABILITIES_ANNOTATION}; "
            f"the catalog offers: {', '.join(catalog.names())}"
        )
    allowed = allowed_capabilities(namespace)
    if allowed is None or namespace is None:
        return
    refused = [name for name in requested if name not in allowed]
    if refused:
        offered = [name for name in catalog.names() if name in allowed]
        raise Denied(
            f"{_plural('capability', refused)} {_names(refused)} not allowed in namespace {namespace.name} "
            f"({ALLOWED_CAPABILITIES_ANNOTATION}); allowed: {', '.join(offered) or 'none'}"
        )


def _names(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names)


def _plural(word: str, items: list[str]) -> str:
    return word if len(items) == 1 else word[:-1] + "ies"
