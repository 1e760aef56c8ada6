"""inject(pod, catalog, namespace) -> the pod with one sidecar per requested capability.

Steps, each small: check the pod's shape, decide (policy), render the wanted sidecars,
merge them into the pod's containers, add the token volume if the pod has none for them,
record what was done in remora.dev/status. The input is never changed: every level on
the way to a change is copied, everything else is shared with the input, so `patch` can
skip unchanged subtrees by identity.

Idempotent: a sidecar already present and equal (up to apiserver defaults) stays as it
is; one that differs from the catalog in force is replaced, with a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from common.names import STATUS_ANNOTATION
from common.version import INJECTOR_VERSION
from webhook.catalog import Catalog
from webhook.mutate.compare import same_sidecar
from webhook.mutate.policy import Denied, check_requested, requested_capabilities, skip_reason
from webhook.mutate.render import SIDECAR_PREFIX, TOKEN_VOLUME, render, sidecar_name, token_volume
from webhook.namespaces import Namespace

Pod = dict[str, Any]


class BadPod(ValueError):
    """The pod cannot be read where injection needs to; `field` is the path, the message says why."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}" if field else problem)
        self.field = field
        self.problem = problem

    def under(self, prefix: str) -> str:
        """The message with the field written under `prefix` (e.g. request.object)."""
        return f"{prefix}.{self.field} {self.problem}" if self.field else f"{prefix} {self.problem}"


@dataclass
class Injection:
    pod: Pod
    capabilities: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: str | None = None
    # The RFC 6902 patch from the input, when injection could write it down directly (else None).
    ops: list[dict[str, Any]] | None = None


def inject(
    pod: Pod, catalog: Catalog, namespace: Namespace | None = None, *, native: bool = True
) -> Injection:
    """The pod with its capability sidecars; raises Denied or BadPod."""
    check_shape(pod)
    requested = requested_capabilities(pod)
    reason = skip_reason(pod, namespace, requested)
    if reason is not None:
        return Injection(pod, skipped=reason)
    check_requested(requested, catalog, namespace)

    meta: dict[str, Any] = pod.get("metadata") or {}
    spec: dict[str, Any] = pod["spec"]
    previous = _read_status(meta)
    token_mount = spec.get("automountServiceAccountToken") is False
    wanted = _wanted(catalog, tuple(requested), native, token_mount)
    # Sidecars this injector put there before for capabilities the pod no longer asks for.
    retired = (
        {sidecar_name(name) for name in _strings(previous.get("capabilities"))} - wanted.keys()
        if previous
        else set()
    )
    merge = _Merge(wanted, retired, previous.get("catalogHash"), catalog.hash)

    new_spec = dict(spec)
    init = merge.update(spec.get("initContainers") or [])
    containers = merge.update(spec["containers"])
    missing = [container for name, container in wanted.items() if name not in merge.present]
    if native:
        init = _front(init, missing, wanted)
    else:
        containers = [*containers, *missing]
    _set_if_changed(new_spec, spec, "initContainers", init)
    _set_if_changed(new_spec, spec, "containers", containers)
    _set_if_changed(new_spec, spec, "volumes", _volumes(spec.get("volumes") or [], token_mount))

    status = {"capabilities": requested, "catalogHash": catalog.hash, "version": INJECTOR_VERSION}
    new_meta = meta
    if previous != status:
        annotations = {**(meta.get("annotations") or {}), STATUS_ANNOTATION: orjson.dumps(status).decode()}
        new_meta = {**meta, "annotations": annotations}
    if new_meta is meta and new_spec == spec:
        return Injection(pod, capabilities=requested, warnings=merge.warnings)
    injection = Injection({**pod, "metadata": new_meta, "spec": new_spec}, requested, merge.warnings)
    if not previous and not merge.present and new_meta is not meta:
        injection.ops = _first_injection_ops(meta, new_meta, spec, new_spec)
    return injection


# The common case, a pod injected for the first time, gets its patch written down directly:
# only additions, known here, at a fraction of what the general diff (patch.py) costs. It
# must equal patch(pod, mutated, INJECTION_SCOPE) exactly (a property test holds it to that).
_STATUS_PATH: Final = "/metadata/annotations/" + STATUS_ANNOTATION.replace("~", "~0").replace("/", "~1")
_SPEC_LISTS: Final = ("initContainers", "containers", "volumes")
_ITEM_PATHS: Final = {key: f"/spec/{key}/" for key in _SPEC_LISTS}
_MISSING: Final = object()


def _first_injection_ops(meta: Pod, new_meta: Pod, spec: Pod, new_spec: Pod) -> list[dict[str, Any]] | None:
    """The patch of a first injection, or None when its shape is not the usual one."""
    annotations = meta.get("annotations")
    if type(annotations) is not dict or STATUS_ANNOTATION in annotations:
        return None
    ops: list[dict[str, Any]] = [
        {"op": "add", "path": _STATUS_PATH, "value": new_meta["annotations"][STATUS_ANNOTATION]}
    ]
    for key in _SPEC_LISTS:
        old, new = spec.get(key, _MISSING), new_spec.get(key, _MISSING)
        if old is new:
            continue
        if type(new) is not list:
            return None
        if old is _MISSING or old is None:  # a list where there was none: set as a whole
            ops.append({"op": "add" if old is _MISSING else "replace", "path": f"/spec/{key}", "value": new})
            continue
        if type(old) is not list or len(new) <= len(old):
            return None
        grown = len(new) - len(old)
        # Items are objects (check_shape), so list equality is the diff's notion of "the same".
        if new[: len(old)] == old:  # appended
            start = len(old)
        elif new[grown:] == old and new[0] != old[0]:  # put in front
            start = 0
        else:
            return None
        prefix = _ITEM_PATHS[key]
        for index in range(start, start + grown):
            ops.append({"op": "add", "path": prefix + str(index), "value": new[index]})
    return ops


_WANTED: dict[tuple[Catalog, tuple[str, ...], bool, bool], dict[str, Pod]] = {}


def _wanted(catalog: Catalog, requested: tuple[str, ...], native: bool, token_mount: bool) -> dict[str, Pod]:
    """Sidecar name -> container, in request order; shared and read-only, like `render`'s."""
    key = (catalog, requested, native, token_mount)
    wanted = _WANTED.get(key)
    if wanted is None:
        if len(_WANTED) >= 1024:  # keyed by catalog identity: a reload starts afresh
            _WANTED.clear()
        wanted = _WANTED[key] = {
            sidecar_name(name): render(catalog.capabilities[name], native=native, token_mount=token_mount)
            for name in requested
        }
    return wanted


class _Merge:
    """Replaces stale sidecars and drops retired ones in a container list, noting what it saw."""

    def __init__(self, wanted: dict[str, Pod], retired: set[str], old_hash: Any, new_hash: str) -> None:
        self.wanted = wanted
        self.retired = retired
        self.old_hash = old_hash
        self.new_hash = new_hash
        self.present: set[str] = set()
        self.warnings: list[str] = []

    def update(self, items: list[Pod]) -> list[Pod]:
        result: list[Pod] | None = None  # copied on the first change only
        for index, container in enumerate(items):
            name = container.get("name")
            replacement: Pod | None = container
            if name in self.wanted:
                self.present.add(name)
                if not same_sidecar(container, self.wanted[name]):
                    replacement = self.wanted[name]
                    self.warnings.append(self._replaced(name))
            elif name in self.retired:
                replacement = None
                self.warnings.append(f"remora: sidecar {name} removed: its capability is no longer requested")
            if replacement is not container and result is None:
                result = list(items[:index])
            if result is not None and replacement is not None:
                result.append(replacement)
        return items if result is None else result

    def _replaced(self, name: str) -> str:
        if isinstance(self.old_hash, str) and self.old_hash != self.new_hash:
            why = f"the capability catalog changed (catalog {self.old_hash} -> {self.new_hash})"
        else:
            why = f"it differed from the capability catalog in force (catalog {self.new_hash})"
        return f"remora: sidecar {name} replaced: {why}"


def _front(init: list[Pod], missing: list[Pod], wanted: dict[str, Pod]) -> list[Pod]:
    """New native sidecars go first, among Remora's own in request order, before the pod's init containers."""
    if not missing:
        return init
    if not init or not str(init[0].get("name", "")).startswith(SIDECAR_PREFIX):
        return [*missing, *init]  # the usual case: no Remora sidecar there yet
    lead = 0
    while lead < len(init) and str(init[lead].get("name", "")).startswith(SIDECAR_PREFIX):
        lead += 1
    order = list(wanted)
    ours = sorted([*init[:lead], *missing], key=lambda c: _rank(order, c.get("name")))
    return [*ours, *init[lead:]]


def _rank(order: list[str], name: Any) -> int:
    return order.index(name) if name in order else len(order)


def _volumes(volumes: list[Pod], token_mount: bool) -> list[Pod]:
    names = [volume.get("name") for volume in volumes]
    if token_mount:
        wanted = token_volume()
        if TOKEN_VOLUME not in names:
            return [*volumes, wanted]
        index = names.index(TOKEN_VOLUME)
        if volumes[index] != wanted:
            return [*volumes[:index], wanted, *volumes[index + 1 :]]
        return volumes
    if TOKEN_VOLUME in names:  # the pod mounts its own token again: the sidecars use that one
        return [volume for volume in volumes if volume.get("name") != TOKEN_VOLUME]
    return volumes


def _set_if_changed(new: Pod, old: Mapping[str, Any], key: str, value: list[Pod]) -> None:
    current = old.get(key)
    if value is current or (not value and not current):
        return
    if value:
        new[key] = value
    else:
        new.pop(key, None)


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _read_status(meta: Mapping[str, Any]) -> dict[str, Any]:
    raw = (meta.get("annotations") or {}).get(STATUS_ANNOTATION)
    if not isinstance(raw, str):
        return {}
    try:
        status = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return status if isinstance(status, dict) else {}


def check_shape(pod: Any) -> None:
    """Raise BadPod naming the first field injection reads that has the wrong JSON type."""
    if type(pod) is not dict:
        raise BadPod("", "must be a JSON object")
    meta = pod.get("metadata")
    if meta is not None:
        _expect(meta, dict, "metadata")
        _expect(meta.get("labels"), dict, "metadata.labels", optional=True)
        _expect(meta.get("annotations"), dict, "metadata.annotations", optional=True)
    spec = pod.get("spec")
    if type(spec) is not dict:
        raise BadPod("spec", _must_be(dict, spec))
    for key in ("initContainers", "containers", "volumes"):
        items = spec.get(key)
        if items is None and key != "containers":
            continue
        if type(items) is not list:
            raise BadPod(f"spec.{key}", _must_be(list, items))
        for index, item in enumerate(items):
            if type(item) is not dict or type(item.get("name")) is not str:
                _expect(item, dict, f"spec.{key}[{index}]")
                _expect(item.get("name"), str, f"spec.{key}[{index}].name")


_WHAT: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}


def _expect(value: Any, kind: type, where: str, *, optional: bool = False) -> None:
    if (value is None and optional) or type(value) is kind:
        return
    raise BadPod(where, _must_be(kind, value))


def _must_be(kind: type, value: Any) -> str:
    return f"must be {_WHAT[kind]}" + ("" if value is not None else ", it is missing")


__all__ = ["BadPod", "Denied", "Injection", "check_shape", "inject"]
