"""The /validate handler: owner-reference rules, then the SecurityContext level, for one request.

`Validator` implements webhook.admission.AdmissionHandler: it takes the review's `request` dict
and returns the response fields. It reads namespaces from the watched cache (never an API call
per request) and calls the API only to confirm that a new object's owner exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from webhook import admission
from webhook.namespaces import Namespaces
from webhook.validate import owners
from webhook.validate.config import ValidationConfig
from webhook.validate.pods import BadObject, PodSource, pod_of, shape_problem, significant_update
from webhook.validate.policy import PolicyMemo, decide, exemption
from webhook.validate.registry import DEFAULT_REGISTRY, Registry

POD_SUBRESOURCES: Final = frozenset({"", "ephemeralcontainers"})


class _NoOwnerLookup:
    """Stands in when the validator has no API access: owner checks then fail closed."""

    def served_versions(self, group: str) -> frozenset[str]:
        raise owners.LookupUnavailable("the webhook has no API access to look the owner up")

    def uid(self, group: str, version: str, plural: str, namespace: str, name: str) -> str | None:
        raise owners.LookupUnavailable("the webhook has no API access to look the owner up")


class Validator:
    def __init__(
        self,
        namespaces: Namespaces,
        *,
        config: ValidationConfig | None = None,
        owner_lookup: owners.OwnerLookup | None = None,
        registry: Registry = DEFAULT_REGISTRY,
        unknown_namespace_denied: bool = True,
    ) -> None:
        """`unknown_namespace_denied=False` applies the default levels to namespaces the view does not
        know, for a webhook run without cluster access (it has no labels to read at all)."""
        self.namespaces = namespaces
        self.unknown_namespace_denied = unknown_namespace_denied
        self.config = config or ValidationConfig()
        self._policy = PolicyMemo(self.config.policy)
        self.owner_lookup: owners.OwnerLookup = owner_lookup or _NoOwnerLookup()
        self.registry = registry

    def __call__(self, request: admission.Request) -> admission.Result:
        if request.get("operation") not in ("CREATE", "UPDATE"):
            return admission.allow()
        try:
            req = _Request.read(request)
        except BadObject as exc:
            return admission.bad_object(str(exc))
        if req.subresource == "" and owners.applies(req.group, req.kind, req.obj, req.old):
            target = owners.Target(
                req.operation, req.group, req.kind, req.namespace, req.username, req.obj, req.old
            )
            denial = self._owner_rules(target, req)
            if denial is not None:
                return denial
        if req.subresource not in POD_SUBRESOURCES:
            return admission.allow()
        return self._pod_security(req)

    def _owner_rules(self, target: owners.Target, req: _Request) -> admission.Result | None:
        try:
            problems = owners.check(target, self.owner_lookup, self.config.owners)
        except owners.LookupUnavailable as exc:
            return admission.deny(
                f"cannot verify the owner reference: {exc}", code=503, reason="ServiceUnavailable"
            )
        if not problems:
            return None
        message = f"{req.kind} {req.name!r} breaks Remora's ownership rules: " + "; ".join(
            f"{p.field}: {p.message}" for p in problems
        )
        causes = [{"type": "FieldValueInvalid", "field": p.field, "message": p.message} for p in problems]
        return admission.deny(message, details=req.details(req.name, causes))

    def _pod_security(self, req: _Request) -> admission.Result:
        try:
            # The field types are checked only when a check objects or fails (below): the apiserver
            # sends typed objects, and every check fails closed on a value it cannot judge.
            source = pod_of(req.obj, req.group, req.kind, check_shape=False)
        except BadObject as exc:
            return admission.bad_object(f"cannot read the {req.kind}: {exc}")
        if source is None:
            return admission.allow()
        if req.subresource == "" and req.old is not None and not _significant(source, req):
            # An update that leaves the pod (template) alone, a scale or a relabel, is not re-judged.
            return admission.allow()
        runtime_class = source.spec.get("runtimeClassName")
        exempt = exemption(
            self.config.policy,
            namespace=req.namespace,
            username=req.username,
            runtime_class=runtime_class if isinstance(runtime_class, str) else None,
        )
        if exempt:
            return admission.allow(audit_annotations={"exempt": exempt})
        if not req.namespace:
            return admission.bad_object(f"a {req.kind} must be namespaced; the request names no namespace")
        known = self.namespaces.get(req.namespace)
        if known is None and self.unknown_namespace_denied:
            # Fail closed, as upstream does when it cannot read the namespace.
            return admission.deny(
                f"namespace {req.namespace!r} is not known to the webhook yet; retry",
                code=503,
                reason="ServiceUnavailable",
            )
        labels = known.labels if known is not None else None
        policy = self._policy(labels)
        try:
            decision = decide(source, policy, self.config.policy, self.registry)
        except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
            unreadable = shape_problem(source) or f"{type(exc).__name__}: {exc}"
            return admission.bad_object(f"cannot read the {req.kind}: {unreadable}")
        if decision.violated and (malformed := shape_problem(source)):
            # A malformed object is reported as such, not as a policy violation.
            return admission.bad_object(f"cannot read the {req.kind}: {malformed}")
        if not decision.allowed:
            return admission.deny(
                decision.message,
                details=req.details(source.name, decision.causes),
                warnings=decision.warnings,
                audit_annotations=decision.audit,
            )
        return admission.allow(warnings=decision.warnings, audit_annotations=decision.audit)


@dataclass(slots=True)  # not frozen: built once per request, and a frozen __init__ costs more
class _Request:
    """The parts of an AdmissionRequest the validator reads, type-checked once."""

    operation: str
    group: str
    kind: str
    subresource: str
    namespace: str
    username: str
    name: str
    resource: str
    obj: dict[str, Any]
    old: dict[str, Any] | None

    @classmethod
    def read(cls, request: admission.Request) -> _Request:
        operation = str(request.get("operation"))
        kind_info = request.get("kind")
        if not isinstance(kind_info, dict) or not isinstance(kind_info.get("kind"), str):
            raise BadObject("request.kind must be an object naming the group, version and kind")
        group = kind_info.get("group") or ""
        if not isinstance(group, str):
            raise BadObject("request.kind.group must be a string")
        kind = kind_info["kind"]
        obj = request.get("object")
        if not isinstance(obj, dict):
            raise BadObject(f"request.object must be the {kind} being {operation.lower()}d, as a JSON object")
        old = request.get("oldObject") if operation == "UPDATE" else None
        resource = request.get("resource")
        plural = resource.get("resource") if isinstance(resource, dict) else None
        subresource = request.get("subResource") or ""
        if not isinstance(subresource, str):
            raise BadObject("request.subResource must be a string")
        return cls(
            operation=operation,
            group=group,
            kind=kind,
            subresource=subresource,
            namespace=_namespace(request, obj),
            username=_username(request),
            name=_name(request, obj),
            resource=plural if isinstance(plural, str) else "",
            obj=obj,
            old=old if isinstance(old, dict) else None,
        )

    def details(self, name: str, causes: list[dict[str, str]]) -> dict[str, Any]:
        details: dict[str, Any] = {"name": name, "causes": causes}
        if self.resource:
            details["kind"] = self.resource
        return details


def _significant(source: PodSource, req: _Request) -> bool:
    try:
        old_source = pod_of(req.old, req.group, req.kind, check_shape=False)
    except BadObject:
        return True
    return old_source is None or significant_update(source, old_source)


def _namespace(request: admission.Request, obj: Mapping[str, Any]) -> str:
    namespace = request.get("namespace")
    if not namespace:
        meta = obj.get("metadata")
        namespace = meta.get("namespace") if isinstance(meta, dict) else None
    return namespace if isinstance(namespace, str) else ""


def _username(request: admission.Request) -> str:
    user = request.get("userInfo")
    name = user.get("username") if isinstance(user, dict) else None
    return name if isinstance(name, str) else ""


def _name(request: admission.Request, obj: Mapping[str, Any]) -> str:
    name = request.get("name")
    if not name:
        meta = obj.get("metadata")
        name = (meta.get("name") or meta.get("generateName")) if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""
