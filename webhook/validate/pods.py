"""Find the pod (metadata + spec) inside an object: a Pod itself or a workload's pod template.

The webhook and `remora check` both go through `pod_of`, so both read the same pod from the
same object and report fields with the same paths (`spec.template.spec.containers[0]...`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from webhook.validate import shape
from webhook.validate.checks.base import CONTAINER_LISTS, Obj, obj

# (API group, kind) -> where the pod template sits inside the object.
TEMPLATE_PATHS: Final[Mapping[tuple[str, str], tuple[str, ...]]] = {
    ("apps", "Deployment"): ("spec", "template"),
    ("apps", "StatefulSet"): ("spec", "template"),
    ("apps", "DaemonSet"): ("spec", "template"),
    ("apps", "ReplicaSet"): ("spec", "template"),
    ("", "ReplicationController"): ("spec", "template"),
    ("batch", "Job"): ("spec", "template"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
    ("", "PodTemplate"): ("template",),
}
# Kinds whose template may legitimately be absent (nothing to check then).
OPTIONAL_TEMPLATE: Final = frozenset({("", "ReplicationController")})


class BadObject(ValueError):
    """The object cannot be read as a Pod or a pod template; the message names the field."""


@dataclass(slots=True)  # one per request: a frozen dataclass's __init__ costs more
class PodSource:
    kind: str
    name: str
    meta: Obj
    spec: Obj
    # Where the pod sits in the object: "" for a Pod, "spec.template." for a Deployment, ...
    prefix: str

    @property
    def is_template(self) -> bool:
        return self.kind != "Pod"

    def field(self, path: str) -> str:
        """A check's pod-relative path (`spec.containers[0]...`) as a path in the whole object."""
        return self.prefix + path


def group_of(api_version: Any) -> str:
    """ "apps/v1" -> "apps", "v1" -> ""."""
    text = api_version if isinstance(api_version, str) else ""
    return text.rpartition("/")[0]


def supported(group: str, kind: str) -> bool:
    return (group == "" and kind == "Pod") or (group, kind) in TEMPLATE_PATHS


def pod_of(
    document: Any, group: str | None = None, kind: str | None = None, *, check_shape: bool = True
) -> PodSource | None:
    """The pod inside `document`, None when its kind has no pod (or an optional template is absent).

    `group`/`kind` default to the document's own apiVersion/kind; the webhook passes the
    request's. Raises BadObject when the object or a field the policy reads is malformed; with
    `check_shape=False` only the structure down to the pod spec is checked now, and `check_shape`
    (below) is left to the caller.
    """
    if type(document) is not dict:
        raise BadObject(f"the object must be a JSON object, got {type(document).__name__}")
    kind = kind if kind is not None else document.get("kind")
    group = group if group is not None else group_of(document.get("apiVersion"))
    if not isinstance(kind, str) or not kind:
        raise BadObject("the object has no kind")
    meta = _object(document.get("metadata"), "metadata")
    name = _name(meta)
    if group == "" and kind == "Pod":
        source = PodSource(kind, name, meta, _object(document.get("spec"), "spec"), "")
    elif (group, kind) in TEMPLATE_PATHS:
        template, prefix = _template(document, TEMPLATE_PATHS[(group, kind)])
        if template is None:
            if (group, kind) in OPTIONAL_TEMPLATE:
                return None
            raise BadObject(f"{prefix.rstrip('.')} is missing: a {kind} needs a pod template")
        source = PodSource(
            kind,
            name,
            _object(template.get("metadata"), f"{prefix}metadata"),
            _object(template.get("spec"), f"{prefix}spec"),
            prefix,
        )
    else:
        return None
    if check_shape:
        shape_problem(source, raise_it=True)
    return source


def shape_problem(source: PodSource, *, raise_it: bool = False) -> str | None:
    """What is wrong with the types of the fields the policy reads, if anything."""
    try:
        shape.check_pod(source.meta, source.spec, source.prefix)
    except shape.BadShape as exc:
        if raise_it:
            raise BadObject(str(exc)) from None
        return str(exc)
    return None


def significant_update(new: PodSource, old: PodSource) -> bool:
    """Whether a pod UPDATE changes anything the policy looks at.

    As upstream does, updates that only touch metadata or container images are not re-evaluated,
    so an existing pod that predates a stricter label can still be labelled, annotated or have its
    image bumped. AppArmor annotations are policy inputs and count as a change.
    """
    try:
        if _apparmor(new.meta) != _apparmor(old.meta):
            return True
        return _without_images(new.spec) != _without_images(old.spec)
    except (AttributeError, TypeError):
        return True  # unreadable: judge it in full


def _apparmor(meta: Obj) -> dict[str, Any]:
    annotations = obj(meta.get("annotations"))
    return {k: v for k, v in annotations.items() if k.startswith("container.apparmor.security.beta.")}


def _without_images(spec: Obj) -> dict[str, Any]:
    stripped = dict(spec)
    for list_name in CONTAINER_LISTS:
        containers = spec.get(list_name)
        if containers:
            stripped[list_name] = [{k: v for k, v in c.items() if k != "image"} for c in containers]
    return stripped


def _template(document: Obj, path: tuple[str, ...]) -> tuple[Obj | None, str]:
    node: Any = document
    walked: list[str] = []
    for key in path:
        walked.append(key)
        node = _object(node.get(key), ".".join(walked), optional=True)
        if node is None:
            return None, ".".join(walked) + "."
    return node, ".".join(path) + "."


def _object(value: Any, where: str, *, optional: bool = False) -> Any:
    if value is None:
        return None if optional else {}
    if type(value) is not dict:
        raise BadObject(f"{where} must be an object, got {type(value).__name__}")
    return value


def _name(meta: Obj) -> str:
    name = meta.get("name") or meta.get("generateName") or ""
    return name if isinstance(name, str) else ""
