"""What the linter reasons about: objects, findings, and a normalized view of workloads.

Inputs are untrusted YAML, so every accessor here tolerates a field of the wrong type
(a list where a mapping belongs, a number where a string belongs) by treating it as
absent: a malformed manifest gets no findings from a rule, never a crash.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from common import names


class Severity(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


def as_dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def str_map(value: Any) -> dict[str, str]:
    """Labels or annotations: only string keys with string values count."""
    return {k: v for k, v in as_dict(value).items() if isinstance(k, str) and isinstance(v, str)}


@dataclass(frozen=True, order=True)
class ObjectRef:
    kind: str
    namespace: str  # "" for cluster-scoped objects or when the manifest names none
    name: str

    def __str__(self) -> str:
        if self.namespace:
            return f"{self.kind} {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Source:
    """Where an object came from: a file and the 1-based line its document (or List item) starts on."""

    path: str
    line: int


@dataclass(frozen=True)
class Resource:
    body: Mapping[str, Any]
    source: Source | None = None

    @property
    def kind(self) -> str:
        return as_str(self.body.get("kind"))

    @property
    def metadata(self) -> Mapping[str, Any]:
        return as_dict(self.body.get("metadata"))

    @property
    def name(self) -> str:
        return as_str(self.metadata.get("name")) or as_str(self.metadata.get("generateName"))

    @property
    def namespace(self) -> str:
        return as_str(self.metadata.get("namespace"))

    @property
    def labels(self) -> dict[str, str]:
        return str_map(self.metadata.get("labels"))

    @property
    def annotations(self) -> dict[str, str]:
        return str_map(self.metadata.get("annotations"))

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.kind, self.namespace, self.name)

    def controller_owner(self) -> ObjectRef | None:
        for owner in map(as_dict, as_list(self.metadata.get("ownerReferences"))):
            if owner.get("controller") is True:
                return ObjectRef(as_str(owner.get("kind")), self.namespace, as_str(owner.get("name")))
        return None


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    objects: tuple[ObjectRef, ...]
    message: str
    why: str
    fix: str
    details: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # preformatted lines (a small table) shown under the message
    sources: tuple[Source, ...] = ()


ContainerRole = Literal["init", "sidecar", "app", "ephemeral"]


@dataclass(frozen=True)
class Container:
    """One container of a pod spec and the part it plays: a native sidecar is an init
    container with restartPolicy Always; an app container is a plain (regular) container."""

    name: str
    image: str
    role: ContainerRole
    body: Mapping[str, Any]

    @property
    def ports(self) -> set[int]:
        return {
            p["containerPort"]
            for p in map(as_dict, as_list(self.body.get("ports")))
            if isinstance(p.get("containerPort"), int)
        }


def containers(spec: Mapping[str, Any]) -> Iterator[Container]:
    """Every container of a pod spec (init, regular, ephemeral), so no rule forgets one."""
    for body in map(as_dict, as_list(spec.get("initContainers"))):
        role: ContainerRole = "sidecar" if body.get("restartPolicy") == "Always" else "init"
        yield Container(as_str(body.get("name")), as_str(body.get("image")), role, body)
    for body in map(as_dict, as_list(spec.get("containers"))):
        yield Container(as_str(body.get("name")), as_str(body.get("image")), "app", body)
    for body in map(as_dict, as_list(spec.get("ephemeralContainers"))):
        yield Container(as_str(body.get("name")), as_str(body.get("image")), "ephemeral", body)


WORKLOAD_KINDS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")


@dataclass(frozen=True)
class Workload:
    """A pod template and what owns it, whatever the kind.

    `spec` is the pod spec as it runs: the template's, or, when a live pod of this
    workload was mutated by the injector, that pod's (the injected sidecars are only
    there). `replicas` is None when the count is not fixed (a DaemonSet: one per node).
    """

    resource: Resource
    labels: dict[str, str]  # the object's labels and its pod template's, template winning
    annotations: dict[str, str]  # the pod template's (or the Pod's) annotations
    spec: Mapping[str, Any]
    replicas: int | None
    job_like: bool

    @property
    def ref(self) -> ObjectRef:
        return self.resource.ref

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def namespace(self) -> str:
        return self.resource.namespace

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def service_account(self) -> str:
        # serviceAccount is the deprecated spelling, still honoured by the API server.
        return (
            as_str(self.spec.get("serviceAccountName"))
            or as_str(self.spec.get("serviceAccount"))
            or "default"
        )

    @property
    def capabilities(self) -> list[str]:
        value = self.annotations.get(names.CAPABILITIES_ANNOTATION)
        return names.parse_capability_list(value) if value else []

    def containers(self) -> Iterator[Container]:
        return containers(self.spec)


@dataclass(frozen=True, order=True)
class AccessQuestion:
    """Can this service account do `verb` on this resource in this namespace?"""

    namespace: str
    service_account: str
    verb: str
    group: str
    resource: str
    subresource: str = ""

    def describe(self) -> str:
        what = self.resource + (f"/{self.subresource}" if self.subresource else "")
        group = self.group or "core"
        return f"{self.verb} {what} ({group})"


@dataclass(frozen=True)
class AccessAnswer:
    allowed: bool | None  # None: the cluster could not say (the review itself failed)
    reason: str = ""


@dataclass
class Inventory:
    """The set of objects the rules judge.

    `live` is True when read from a cluster: then every namespace the workloads live in
    is known, and `access` holds the answers to the access questions the rules asked
    (None offline, where access cannot be judged).
    """

    resources: list[Resource]
    live: bool = False
    access: dict[AccessQuestion, AccessAnswer] | None = None
    workloads: list[Workload] = field(init=False)
    _by_ref: dict[ObjectRef, Resource] = field(init=False, repr=False)
    _by_namespace: dict[str, list[Workload]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.workloads = normalize_workloads(self.resources)
        self._by_ref = {}
        for resource in self.resources:
            self._by_ref.setdefault(resource.ref, resource)
        self._by_namespace = {}
        for workload in self.workloads:
            self._by_namespace.setdefault(workload.namespace, []).append(workload)

    def of_kind(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r.kind == kind]

    def namespace(self, name: str) -> Resource | None:
        return self._by_ref.get(ObjectRef("Namespace", "", name))

    def find(self, ref: ObjectRef) -> Resource | None:
        """The object with this kind, namespace and name (the first given, if given twice)."""
        return self._by_ref.get(ref)

    def workloads_in(self, namespace: str) -> list[Workload]:
        return self._by_namespace.get(namespace, [])


def normalize_workloads(resources: list[Resource]) -> list[Workload]:
    """One Workload per top-level pod template; objects controlled by another input are folded in.

    A ReplicaSet of a Deployment or the Pods of a Job are not judged twice; a live pod
    that carries the injector's status annotation lends its spec to its top-level owner.
    The same object given twice (two overlays of one Deployment, say) is judged twice.
    """
    by_ref = {r.ref: r for r in resources if r.kind in WORKLOAD_KINDS}

    def top_owner(resource: Resource) -> ObjectRef:
        ref, owner, seen = resource.ref, resource.controller_owner(), {resource.ref}
        while owner is not None and owner in by_ref:
            if owner in seen:
                return resource.ref  # an ownership cycle (never valid): judge each on its own
            seen.add(owner)
            ref, owner = owner, by_ref[owner].controller_owner()
        return ref

    injected_spec: dict[ObjectRef, Mapping[str, Any]] = {}
    for resource in sorted(by_ref.values(), key=lambda r: r.ref):
        if resource.kind == "Pod" and names.STATUS_ANNOTATION in resource.annotations:
            injected_spec.setdefault(top_owner(resource), as_dict(resource.body.get("spec")))

    workloads = []
    for resource in resources:
        ref = resource.ref
        if resource.kind not in WORKLOAD_KINDS or top_owner(resource) != ref:
            continue
        workload = _template_workload(resource)
        if ref in injected_spec:
            workload = replace(workload, spec=injected_spec[ref])
        workloads.append(workload)
    return workloads


def _template_workload(resource: Resource) -> Workload:
    spec = as_dict(resource.body.get("spec"))
    kind = resource.kind
    if kind == "Pod":
        owner = resource.controller_owner()
        job_like = owner is not None and owner.kind == "Job"
        return Workload(resource, resource.labels, resource.annotations, spec, 1, job_like)
    if kind == "CronJob":
        job_spec = as_dict(as_dict(spec.get("jobTemplate")).get("spec"))
        return _from_template(resource, as_dict(job_spec.get("template")), _count(job_spec, "parallelism"))
    if kind == "Job":
        return _from_template(resource, as_dict(spec.get("template")), _count(spec, "parallelism"))
    if kind == "DaemonSet":
        return _from_template(resource, as_dict(spec.get("template")), None)
    return _from_template(resource, as_dict(spec.get("template")), _count(spec, "replicas"))


def _from_template(resource: Resource, template: Mapping[str, Any], replicas: int | None) -> Workload:
    meta = as_dict(template.get("metadata"))
    labels = {**resource.labels, **str_map(meta.get("labels"))}
    job_like = resource.kind in ("Job", "CronJob")
    return Workload(
        resource, labels, str_map(meta.get("annotations")), as_dict(template.get("spec")), replicas, job_like
    )


def _count(spec: Mapping[str, Any], key: str) -> int:
    value = spec.get(key, 1)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 1
