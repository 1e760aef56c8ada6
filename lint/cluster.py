"""Read a live cluster into an Inventory: namespaces, workloads, pods, claims, service accounts.

Then ask the access questions the RBAC rule needs, one SubjectAccessReview each, and
keep the answers in the inventory so the rules stay pure. Anything that stops the read
(no kubeconfig, an unreachable server, a list the user may not read) is an InputError
with one line.
"""

from __future__ import annotations

import re
from typing import Any, Final

from common import kube
from lint.inputs import InputError
from lint.model import AccessAnswer, AccessQuestion, Inventory, Resource, as_dict, as_list
from lint.rules import capability_without_rbac

# kind -> (API path prefix, plural)
KINDS: Final = {
    "Namespace": ("/api/v1", "namespaces"),
    "Pod": ("/api/v1", "pods"),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims"),
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "StatefulSet": ("/apis/apps/v1", "statefulsets"),
    "DaemonSet": ("/apis/apps/v1", "daemonsets"),
    "ReplicaSet": ("/apis/apps/v1", "replicasets"),
    "Job": ("/apis/batch/v1", "jobs"),
    "CronJob": ("/apis/batch/v1", "cronjobs"),
}
PAGE: Final = 500
MAX_OBJECTS: Final = 200_000
TIMEOUT: Final = 20.0
_NAMESPACE: Final = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
SAR_PATH: Final = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


def read(kubeconfig: str | None, namespace: str | None) -> Inventory:
    if namespace is not None and not _NAMESPACE.fullmatch(namespace):
        raise InputError(f"{namespace!r} is not a valid namespace name")
    api = _connect(kubeconfig)
    try:
        resources = _namespaces(api, namespace)
        for kind in KINDS:
            if kind == "Namespace":
                continue
            resources.extend(_list(api, kind, namespace, budget=MAX_OBJECTS - len(resources)))
        inventory = Inventory(resources, live=True)
        inventory.access = ask(api, capability_without_rbac.questions(inventory))
        return inventory
    finally:
        api.close()


def _connect(kubeconfig: str | None) -> Any:
    try:
        return kube.load_api_client(kubeconfig)
    except Exception as exc:
        # The client raises ConfigException, FileNotFoundError, yaml and key errors alike.
        where = kubeconfig or "the default kubeconfig"
        raise InputError(f"cannot load {where}: {_one_line(exc)}") from None


def _get(api: Any, path: str, query: dict[str, str | int | bool] | None = None) -> Any:
    try:
        return kube.request(api, "GET", path, query=query, timeout=TIMEOUT)
    except kube.ApiError:
        raise
    except Exception as exc:
        raise InputError(f"cannot reach the cluster at {api.configuration.host}: {_one_line(exc)}") from None


def _namespaces(api: Any, namespace: str | None) -> list[Resource]:
    if namespace:
        try:
            body = _get(api, f"/api/v1/namespaces/{namespace}")
        except kube.ApiError as exc:
            if exc.not_found:
                raise InputError(f"namespace {namespace!r} not found") from None
            raise InputError(f"cannot read namespace {namespace!r}: {exc}") from None
        return [Resource({**body, "kind": "Namespace", "apiVersion": "v1"})]
    return _list(api, "Namespace", None, budget=MAX_OBJECTS)


def _list(api: Any, kind: str, namespace: str | None, *, budget: int) -> list[Resource]:
    prefix, plural = KINDS[kind]
    path = f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"
    api_version = prefix.removeprefix("/api/").removeprefix("/apis/")
    found: list[Resource] = []
    query: dict[str, str | int | bool] = {"limit": PAGE}
    while True:
        try:
            page = _get(api, path, query)
        except kube.ApiError as exc:
            if exc.not_found and kind != "Namespace":
                return found  # an API this cluster does not serve (an old one without batch/v1 CronJobs)
            scope = f" in namespace {namespace!r}" if namespace else " (try --namespace)"
            raise InputError(f"cannot list {plural}{scope}: {exc}") from None
        for item in map(as_dict, as_list(as_dict(page).get("items"))):
            found.append(Resource({**item, "kind": kind, "apiVersion": api_version}))
        if len(found) > budget:
            raise InputError(f"more than {MAX_OBJECTS} objects to read; use --namespace")
        token = as_dict(as_dict(page).get("metadata")).get("continue")
        if not token:
            return found
        query = {"limit": PAGE, "continue": token}


def ask(api: Any, questions: list[AccessQuestion]) -> dict[AccessQuestion, AccessAnswer]:
    """One SubjectAccessReview per question; after a review is refused, the rest go unasked."""
    answers: dict[AccessQuestion, AccessAnswer] = {}
    refused = ""
    for question in questions:
        if refused:
            answers[question] = AccessAnswer(None, refused)
            continue
        try:
            status = as_dict(as_dict(_review(api, question)).get("status"))
        except kube.ApiError as exc:
            refused = f"cannot create subjectaccessreviews: {exc}"
            answers[question] = AccessAnswer(None, refused)
            continue
        reason = str(status.get("reason") or status.get("evaluationError") or "")
        answers[question] = AccessAnswer(status.get("allowed") is True, reason)
    return answers


def _review(api: Any, q: AccessQuestion) -> Any:
    attributes = {"namespace": q.namespace, "verb": q.verb, "group": q.group, "resource": q.resource}
    if q.subresource:
        attributes["subresource"] = q.subresource
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{q.namespace}:{q.service_account}",
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{q.namespace}",
                "system:authenticated",
            ],
            "resourceAttributes": attributes,
        },
    }
    try:
        return kube.request(api, "POST", SAR_PATH, body=body, timeout=TIMEOUT)
    except kube.ApiError:
        raise
    except Exception as exc:
        raise InputError(f"cannot reach the cluster at {api.configuration.host}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
