"""Injection without a cluster: Pods and workload pod templates in YAML, as `remora inject` does it.

The same `inject` the webhook runs, applied to every Pod and every pod template found in
the documents (Lists included); other objects pass through untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from common.names import ALLOWED_CAPABILITIES_ANNOTATION, INJECTION_LABEL
from common.yamlio import BadYAML, load_documents
from webhook.catalog import Catalog
from webhook.mutate.inject import BadPod, inject
from webhook.mutate.policy import Denied
from webhook.namespaces import Namespace

MAX_BYTES: Final = 8 * 1024 * 1024

# kind -> keys from the object to its pod template ({metadata, spec}); a Pod is its own.
TEMPLATE_PATHS: Final[dict[str, tuple[str, ...]]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "PodTemplate": ("template",),
}


class UnreadableInput(ValueError):
    """The input cannot be read as manifests; one line saying where and why."""


@dataclass
class Outcome:
    documents: list[Any]
    denials: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    injected: int = 0


def read_documents(data: bytes | str, source: str) -> list[Any]:
    try:
        documents = load_documents(data, max_bytes=MAX_BYTES)
    except BadYAML as exc:
        raise UnreadableInput(f"{source}: {exc}") from None
    for index, document in enumerate(documents, start=1):
        if not isinstance(document, dict) or not isinstance(document.get("kind"), str):
            raise UnreadableInput(
                f"{source}: document {index} is not a Kubernetes object (a mapping with a kind)"
            )
    return documents


def offline_namespace(allowed: str | None, name: str = "") -> Namespace | None:
    """The namespace `--namespace-allowed` stands for: injection on, these capabilities allowed."""
    if allowed is None:
        return None
    return Namespace(
        name=name or "default",
        labels={INJECTION_LABEL: "enabled"},
        annotations={ALLOWED_CAPABILITIES_ANNOTATION: allowed},
    )


def inject_documents(
    documents: list[Any], catalog: Catalog, *, allowed: str | None = None, native: bool = True
) -> Outcome:
    outcome = Outcome(documents=[])
    for document in documents:
        outcome.documents.append(_inject_object(document, catalog, allowed, native, outcome))
    return outcome


def _inject_object(
    obj: dict[str, Any], catalog: Catalog, allowed: str | None, native: bool, outcome: Outcome
) -> Any:
    kind = obj.get("kind", "")
    if kind.endswith("List") and isinstance(obj.get("items"), list):
        items = [
            _inject_object(item, catalog, allowed, native, outcome) if isinstance(item, dict) else item
            for item in obj["items"]
        ]
        return {**obj, "items": items}
    path = TEMPLATE_PATHS.get(kind)
    if path is None:
        return obj
    label = _label(obj)
    template = _follow(obj, path)
    if not isinstance(template, dict):
        raise UnreadableInput(f"{label}: {'.'.join(path)} must be an object")
    meta = _metadata(obj)
    namespace = offline_namespace(allowed, str(meta.get("namespace") or ""))
    pod_like = {"metadata": template.get("metadata") or {}, "spec": template.get("spec")}
    try:
        injection = inject(pod_like, catalog, namespace, native=native)
    except Denied as exc:
        outcome.denials.append(f"{label}: {exc}")
        return obj
    except BadPod as exc:
        where = ".".join(path) if path else ""
        raise UnreadableInput(f"{label}: {exc.under(where) if where else exc}") from None
    outcome.warnings.extend(f"{label}: {warning}" for warning in injection.warnings)
    if injection.pod is pod_like:
        return obj
    outcome.injected += 1
    injected = injection.pod
    return _replace(obj, path, {**template, **injected, "spec": _readable(injected["spec"])})


def _readable(spec: dict[str, Any]) -> dict[str, Any]:
    """For people reading the YAML: init containers listed before containers, as they run."""
    keys = list(spec)
    if "initContainers" not in spec or keys.index("initContainers") < keys.index("containers"):
        return spec
    keys.remove("initContainers")
    keys.insert(keys.index("containers"), "initContainers")
    return {key: spec[key] for key in keys}


def _follow(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _replace(obj: dict[str, Any], path: tuple[str, ...], value: dict[str, Any]) -> dict[str, Any]:
    if not path:
        return value
    return {**obj, path[0]: _replace(obj[path[0]], path[1:], value)}


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _label(obj: dict[str, Any]) -> str:
    meta = _metadata(obj)
    name = meta.get("name") or meta.get("generateName") or "(unnamed)"
    namespace = meta.get("namespace")
    return f"{obj.get('kind')} {namespace + '/' if namespace else ''}{name}"


def iter_pods(documents: list[Any]) -> Iterator[dict[str, Any]]:
    """Every pod-like {metadata, spec} in the documents (for tests and other offline tools)."""
    for document in documents:
        if not isinstance(document, dict):
            continue
        kind = document.get("kind", "")
        if kind.endswith("List") and isinstance(document.get("items"), list):
            yield from iter_pods(document["items"])
            continue
        path = TEMPLATE_PATHS.get(kind)
        if path is not None:
            template = _follow(document, path)
            if isinstance(template, dict):
                yield template
