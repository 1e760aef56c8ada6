"""Builders shared by the validation tests: pods that meet a level, and admission requests."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from webhook import admission


def container(name: str = "app", **security: Any) -> dict[str, Any]:
    context = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    context.update(security)
    return {
        "name": name,
        "image": "registry.example/app:1",
        "securityContext": context,
        "resources": {"limits": {"memory": "128Mi"}},
    }


def hardened_pod(name: str = "agent", **spec: Any) -> dict[str, Any]:
    """A pod that meets every level."""
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "runAsGroup": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container()],
        },
    }
    pod["spec"].update(spec)
    return pod


def privileged_pod(name: str = "bad") -> dict[str, Any]:
    pod = hardened_pod(name)
    pod["spec"]["containers"][0]["securityContext"]["privileged"] = True
    return pod


def request(
    obj: Any,
    *,
    kind: str = "Pod",
    group: str = "",
    version: str = "v1",
    resource: str = "pods",
    namespace: str = "team",
    operation: str = "CREATE",
    old: Any = None,
    subresource: str | None = None,
    username: str = "alice",
) -> dict[str, Any]:
    req: dict[str, Any] = {
        "uid": "1d6f6c1e-0000-4000-8000-000000000001",
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": username},
        "object": obj,
        "dryRun": False,
    }
    if old is not None:
        req["oldObject"] = old
    if subresource:
        req["subResource"] = subresource
    return req


def workload(kind: str, pod: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """`kind` wrapping `pod` as its template, with its API group and resource name."""
    template = {"metadata": copy.deepcopy(pod["metadata"]), "spec": copy.deepcopy(pod["spec"])}
    group, resource = {
        "Deployment": ("apps", "deployments"),
        "StatefulSet": ("apps", "statefulsets"),
        "DaemonSet": ("apps", "daemonsets"),
        "ReplicaSet": ("apps", "replicasets"),
        "ReplicationController": ("", "replicationcontrollers"),
        "Job": ("batch", "jobs"),
        "CronJob": ("batch", "cronjobs"),
        "PodTemplate": ("", "podtemplates"),
    }[kind]
    api_version = f"{group}/v1" if group else "v1"
    obj: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "w", "namespace": "team"},
    }
    if kind == "CronJob":
        obj["spec"] = {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}
    elif kind == "PodTemplate":
        obj["template"] = template
    else:
        obj["spec"] = {"template": template}
    return obj, group, resource


def review(handler: admission.AdmissionHandler, req: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Run `req` through the real envelope code; (HTTP status, response or error body)."""
    body = orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
    answer = admission.review(body, handler)
    decoded = orjson.loads(answer.body)
    return answer.status, decoded.get("response", decoded)
