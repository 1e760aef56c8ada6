"""`remora lint --cluster` against the real local control plane: real lists, real
controllers making ReplicaSets and pods (which must not double the findings), and real
SubjectAccessReviews judged by the API server's RBAC authorizer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from common import names
from localcluster import LocalCluster, wait_until

GRANTED = [
    {"apiGroups": [names.GROUP], "resources": ["buildrequests"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "watch", "delete"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
]
MISSING = [
    {"apiGroups": [names.GROUP], "resources": ["buildrequests/status"], "verbs": ["update", "patch"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
]


def manifests(ns: str, rules: list[dict[str, Any]]) -> str:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coder", "namespace": ns}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "coder", "namespace": ns},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "coder", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "coder"},
            "subjects": [{"kind": "ServiceAccount", "name": "coder", "namespace": ns}],
        },
        deployment(
            ns,
            "code-agent",
            {"serviceAccountName": "coder", "containers": [container("agent", "agent:1")]},
            annotations={names.CAPABILITIES_ANNOTATION: "build"},
        ),
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "logs", "namespace": ns},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
        deployment(
            ns, "frontend", {"containers": [container("web", "nginx:1.27")], "volumes": [claim("logs")]}
        ),
        deployment(
            ns,
            "log-collector",
            {"containers": [container("c", "fluent/fluentd:v1.17")], "volumes": [claim("logs")]},
        ),
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "migrate", "namespace": ns},
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            container("migrate", "migrate:5"),
                            container(
                                "cloud-sql-proxy", "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.11.0"
                            ),
                        ],
                    }
                }
            },
        },
    ]
    return yaml.safe_dump_all(docs)


def container(name: str, image: str) -> dict[str, Any]:
    resources = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}}
    return {"name": name, "image": image, "resources": resources}


def claim(name: str) -> dict[str, Any]:
    return {"name": name, "persistentVolumeClaim": {"claimName": name}}


def deployment(
    ns: str, name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"labels": {"app": name}}
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": meta, "spec": spec},
        },
    }


def lint(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "remora", "lint", "--cluster", "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def by_rule(proc: subprocess.CompletedProcess[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for finding in json.loads(proc.stdout)["findings"]:
        found.setdefault(finding["rule"], []).append(finding)
    return found


def test_lint_reads_the_cluster_and_asks_real_access_reviews(
    cluster: LocalCluster, kubectl: Any, namespace: str
) -> None:
    kubectl("apply", "-f", "-", input=manifests(namespace, GRANTED))

    def controllers_done() -> bool:
        pods = json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
        return len(pods) >= 2 + 2 + 2 + 1  # three Deployments of 2 replicas and the Job's pod

    wait_until(controllers_done, timeout=60, description="pods made by the Deployment and Job controllers")

    proc = lint(cluster, "--namespace", namespace, "-o", "json")
    assert proc.returncode == 1, proc.stderr
    found = by_rule(proc)
    # ReplicaSets and pods fold into their Deployment / Job: one finding each, not one per pod.
    assert {rule: len(items) for rule, items in found.items()} == {
        "split-sidecar": 1,
        "job-sidecar-never-completes": 1,
        "capability-without-injection": 1,
        "capability-without-rbac": 1,
    }
    [rbac] = found["capability-without-rbac"]
    assert rbac["severity"] == "error"
    assert rbac["objects"][0] == {"kind": "ServiceAccount", "namespace": namespace, "name": "coder"}
    assert sorted(rbac["details"]["missing"]) == [
        "create events (events.k8s.io)",
        "patch buildrequests/status (remora.dev)",
        "update buildrequests/status (remora.dev)",
    ]
    assert rbac["details"]["role_rules"] == [
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
        {"apiGroups": [names.GROUP], "resources": ["buildrequests/status"], "verbs": ["patch", "update"]},
    ]
    [injection] = found["capability-without-injection"]
    assert f"namespace {namespace!r} has no {names.INJECTION_LABEL} label" in injection["message"]

    # The fixes the findings name: grant the rules, label the namespace; both findings go.
    kubectl("apply", "-f", "-", input=manifests(namespace, GRANTED + rbac["details"]["role_rules"]))
    kubectl("label", "namespace", namespace, f"{names.INJECTION_LABEL}=enabled")
    found = by_rule(lint(cluster, "--namespace", namespace, "-o", "json"))
    assert set(found) == {"split-sidecar", "job-sidecar-never-completes"}

    # Without --namespace the whole cluster is read, this namespace included.
    proc = lint(cluster)
    assert proc.returncode == 1, proc.stderr
    assert f"Job {namespace}/migrate" in proc.stdout


def test_lint_cluster_input_errors_are_exit_2(cluster: LocalCluster, tmp_path: Path) -> None:
    proc = lint(cluster, "--namespace", "no-such-namespace-here")
    assert proc.returncode == 2
    assert proc.stderr == "remora lint: namespace 'no-such-namespace-here' not found\n"

    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    unreachable = tmp_path / "kubeconfig"
    unreachable.write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [sys.executable, "-m", "remora", "lint", "--cluster", "--kubeconfig", str(unreachable)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("remora lint: cannot reach the cluster at https://127.0.0.1:1")
    assert proc.stderr.count("\n") == 1
