"""The /mutate admission handler: a Pod CREATE in, the injection patch out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webhook.admission import Request, Result, allow, bad_object, deny
from webhook.catalog import Catalog
from webhook.mutate.inject import BadPod, check_shape, inject
from webhook.mutate.patch import INJECTION_SCOPE, patch
from webhook.mutate.policy import Denied, requested_capabilities
from webhook.namespaces import Namespaces


class Mutator:
    """AdmissionHandler for Pods; pure apart from reading the catalog and namespace views."""

    def __init__(
        self,
        catalog: Callable[[], Catalog],
        namespaces: Namespaces,
        *,
        native: bool = True,
        unknown_namespace_denied: bool = False,
    ) -> None:
        """`unknown_namespace_denied=True` (a webhook that watches namespaces) refuses a pod asking for
        capabilities in a namespace the view could not read, instead of deciding without its allow-list."""
        self.catalog = catalog
        self.namespaces = namespaces
        self.native = native
        self.unknown_namespace_denied = unknown_namespace_denied

    def __call__(self, request: Request) -> Result:
        kind = request.get("kind")
        if not _is_pod(kind):
            return bad_object(f"the injecting webhook handles v1 Pods only, got {_describe_kind(kind)}")
        if request.get("operation") != "CREATE" or request.get("subResource"):
            return allow()  # a pod's containers cannot change after creation
        pod = request.get("object")
        if not isinstance(pod, dict):
            return bad_object("request.object must be the Pod being created")
        namespace_name = request.get("namespace")
        namespace = self.namespaces.get(namespace_name) if isinstance(namespace_name, str) else None
        try:
            if namespace is None and self.unknown_namespace_denied:
                check_shape(pod)
                if requested_capabilities(pod):
                    # No namespace, no allow-list: never fall back to "every capability allowed".
                    return deny(f"namespace {namespace_name!r} is not known to the webhook yet; retry")
            injection = inject(pod, self.catalog(), namespace, native=self.native)
        except Denied as exc:
            return deny(str(exc))
        except BadPod as exc:
            return bad_object(exc.under("request.object"))
        if injection.pod is pod:
            return allow(warnings=injection.warnings)
        ops = injection.ops if injection.ops is not None else patch(pod, injection.pod, INJECTION_SCOPE)
        return allow(patch=ops, warnings=injection.warnings)


def _is_pod(kind: Any) -> bool:
    return (
        isinstance(kind, dict)
        and kind.get("kind") == "Pod"
        and not kind.get("group")
        and kind.get("version") == "v1"
    )


def _describe_kind(kind: Any) -> str:
    if not isinstance(kind, dict):
        return "no request.kind"
    group = kind.get("group") or ""
    version = kind.get("version") or "?"
    return f"{group + '/' if group else ''}{version} {kind.get('kind') or '?'}"
