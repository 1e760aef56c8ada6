"""`remora check` without a cluster: read manifests, find pods and pod templates, judge them at a level.

The same `pods.pod_of` and registry as the webhook decide; this module only adds reading YAML
(multi-document, Lists) with bounds, and one finding per forbidden field naming the object and
the container.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from common.yamlio import BadYAML, load_documents
from webhook.validate.pods import BadObject, PodSource, pod_of
from webhook.validate.registry import DEFAULT_REGISTRY, Evaluation, Registry

MAX_BYTES: Final = 8 * 1024 * 1024
MAX_DOCUMENTS: Final = 10_000
_CONTAINER_PATH: Final = re.compile(r"spec\.(initContainers|containers|ephemeralContainers)\[(\d+)\]")


class UnreadableInput(ValueError):
    """The input cannot be read as Kubernetes manifests; one line says why."""


@dataclass(frozen=True, slots=True)
class Finding:
    obj: str  # "Deployment/web"
    container: str | None
    field: str
    message: str
    check_id: str
    reason: str

    def line(self) -> str:
        where = f'container "{self.container}": ' if self.container is not None else ""
        return f"{self.obj}: {where}{self.field}: {self.message} ({self.reason})"


@dataclass(frozen=True, slots=True)
class Report:
    checked: int  # objects with a pod or pod template
    denied: int
    findings: tuple[Finding, ...]


def read_documents(data: bytes, source: str) -> list[Any]:
    """Every document of a (multi-document) YAML or JSON text, bounded in size and nesting."""
    if len(data) > MAX_BYTES:
        raise UnreadableInput(f"{source}: {len(data)} bytes, over the limit of {MAX_BYTES}")
    try:
        documents = load_documents(data, max_bytes=MAX_BYTES)
    except BadYAML as exc:
        raise UnreadableInput(f"{source}: {exc}") from None
    if len(documents) > MAX_DOCUMENTS:
        raise UnreadableInput(f"{source}: more than {MAX_DOCUMENTS} documents")
    return documents


def objects(documents: list[Any], source: str) -> Iterator[dict[str, Any]]:
    """Every object, with the items of Lists (kind: List, PodList, ...) taken out."""
    for index, document in enumerate(documents):
        if not isinstance(document, dict):
            raise UnreadableInput(f"{source}: document {index + 1} is not a mapping (a Kubernetes object)")
        kind = document.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and "items" in document:
            items = document["items"]
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items or []):
                raise UnreadableInput(f"{source}: document {index + 1}: items must be a list of objects")
            yield from items or []
        else:
            yield document


def check(documents: list[Any], level: str, source: str, registry: Registry = DEFAULT_REGISTRY) -> Report:
    checked = denied = 0
    findings: list[Finding] = []
    for obj in objects(documents, source):
        label = _label(obj)
        try:
            pod = pod_of(obj)
        except BadObject as exc:
            raise UnreadableInput(f"{source}: {label}: {exc}") from None
        if pod is None:
            continue
        checked += 1
        evaluation = registry.evaluate(level, pod.meta, pod.spec)
        if not evaluation.allowed:
            denied += 1
            findings.extend(_findings(label, pod, evaluation))
    return Report(checked, denied, tuple(findings))


def _findings(label: str, pod: PodSource, evaluation: Evaluation) -> Iterator[Finding]:
    for violation in evaluation.violations:
        result = violation.result
        causes = result.causes or ()
        if not causes:
            yield Finding(label, None, pod.field("spec"), result.detail, violation.check_id, result.reason)
        for cause in causes:
            yield Finding(
                label,
                _container_name(pod, cause.field),
                pod.field(cause.field),
                cause.message,
                violation.check_id,
                result.reason or "unknown forbidden reason",
            )


def _container_name(pod: PodSource, field: str) -> str | None:
    match = _CONTAINER_PATH.match(field)
    if not match:
        return None
    containers = pod.spec.get(match.group(1)) or []
    index = int(match.group(2))
    name = containers[index].get("name") if index < len(containers) else None
    return str(name) if name else f"#{index}"


def _label(obj: dict[str, Any]) -> str:
    kind = obj.get("kind") if isinstance(obj.get("kind"), str) else "object"
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    name = name if isinstance(name, str) and name else "(unnamed)"
    return f"{kind}/{namespace}/{name}" if isinstance(namespace, str) and namespace else f"{kind}/{name}"
