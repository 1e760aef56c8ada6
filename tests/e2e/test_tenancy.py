"""Tenant isolation and least privilege, against the installed chart's real RBAC.

The chart is installed (URL mode, `security_stack.chart_stack`), and `remora serve` and the
certificate bootstrap run with the chart's own webhook ServiceAccount token. Two tenant
namespaces are enabled with `remora enable-namespace`, so the RoleBindings point at the
chart's ClusterRoles:

- A: build, test and migrate for ServiceAccount `agent`;
- B: build only, for ServiceAccount `default`.

Then: A's ServiceAccount is denied everything in B (SubjectAccessReviews over many verbs and
resources, and real requests with a token from the TokenRequest API get 403). An operator
running with that token works in A and can do nothing in B. A reference to another namespace
in a capability resource is rejected (strict) or pruned (default), and the Job only references
objects in its own namespace. The installed roles grant exactly the rows of the table in
docs/rbac.md, every row is allowed, and nearby permissions are denied.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from security_stack import (
    Operator,
    Stack,
    api_client,
    delete_namespace,
    make_namespace,
    service_account_token,
    token_kubeconfig,
)

from common.kube import ApiError, request
from common.names import AGENT_LABEL, API_VERSION
from localcluster import wait_until

ROOT = Path(__file__).resolve().parents[2]
RBAC_DOC = ROOT / "docs" / "rbac.md"
GROUP = "/apis/remora.dev/v1alpha1/namespaces"
PLURALS = {"build": "buildrequests", "test": "testruns", "migrate": "databasemigrations"}
KINDS = {"build": "BuildRequest", "test": "TestRun", "migrate": "DatabaseMigration"}
AGENT = "agent-0"
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


@dataclass(frozen=True)
class Tenants:
    a: str
    b: str
    account: str  # the agent ServiceAccount in A

    @property
    def user_a(self) -> str:
        return f"system:serviceaccount:{self.a}:{self.account}"


@pytest.fixture(scope="module")
def stack(chart_stack: Stack) -> Stack:
    return chart_stack


@pytest.fixture(scope="module")
def tenants(admin: Any, stack: Stack) -> Iterator[Tenants]:
    a = make_namespace(admin, "tenant-a")
    b = make_namespace(admin, "tenant-b")
    try:
        request(
            admin, "POST", f"/api/v1/namespaces/{a}/serviceaccounts", body={"metadata": {"name": "agent"}}
        )
        stack.enable_namespace(a, "build,test,migrate", "agent")
        stack.enable_namespace(b, "build", "default")
        # B's things that A must not see: a Secret, a ConfigMap, a BuildRequest and its Job.
        request(admin, "POST", f"/api/v1/namespaces/{b}/secrets",
                body={"metadata": {"name": "db"}, "stringData": {"password": "tenant-b-secret"}})  # fmt: skip
        request(admin, "POST", f"/api/v1/namespaces/{b}/configmaps",
                body={"metadata": {"name": "source"}, "data": {"main.py": "print('b')"}})  # fmt: skip
        request(admin, "POST", f"{GROUP}/{b}/buildrequests", body=resource("build", "b-build"))
        yield Tenants(a, b, "agent")
    finally:
        delete_namespace(admin, a)
        delete_namespace(admin, b)


def resource(capability: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KINDS[capability],
        "metadata": {"name": name, "labels": {AGENT_LABEL: AGENT}},
        "spec": {"image": "registry.example/work:1", **spec},
    }


# -- SubjectAccessReviews -------------------------------------------------------------------


def allowed(  # noqa: PLR0917 (a review's attributes, in `kubectl auth can-i` order)
    admin: Any,
    user: str,
    verb: str,
    group: str,
    resource_name: str,
    namespace: str = "",
    name: str = "",
) -> bool:
    """One SubjectAccessReview for a ServiceAccount (its groups as the apiserver would add them)."""
    resource_part, _, subresource = resource_name.partition("/")
    attributes = {"verb": verb, "group": group, "resource": resource_part}
    if subresource:
        attributes["subresource"] = subresource
    if namespace:
        attributes["namespace"] = namespace
    if name:
        attributes["name"] = name
    groups = ["system:authenticated", "system:serviceaccounts"]
    if user.startswith("system:serviceaccount:"):
        groups.append("system:serviceaccounts:" + user.split(":")[2])
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": groups, "resourceAttributes": attributes},
    }
    answer = request(admin, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=review)
    return bool(answer["status"].get("allowed"))


def other_namespace_matrix() -> list[tuple[str, str, str]]:
    """(verb, group, resource) covering the agent's own kinds and everything around them."""
    resources = [
        *[("remora.dev", p) for p in PLURALS.values()],
        *[("remora.dev", f"{p}/status") for p in PLURALS.values()],
        ("batch", "jobs"),
        ("batch", "cronjobs"),
        ("", "pods"),
        ("", "pods/log"),
        ("", "pods/exec"),
        ("", "pods/ephemeralcontainers"),
        ("", "secrets"),
        ("", "configmaps"),
        ("", "serviceaccounts"),
        ("", "serviceaccounts/token"),
        ("", "events"),
        ("events.k8s.io", "events"),
        ("coordination.k8s.io", "leases"),
        ("apps", "deployments"),
        ("rbac.authorization.k8s.io", "rolebindings"),
        ("rbac.authorization.k8s.io", "roles"),
    ]
    return [(verb, group, res) for group, res in resources for verb in VERBS]


def test_the_agent_account_of_a_gets_nothing_in_b(admin: Any, tenants: Tenants) -> None:
    matrix = other_namespace_matrix()
    granted = [m for m in matrix if allowed(admin, tenants.user_a, m[0], m[1], m[2], tenants.b)]
    assert granted == [], f"{tenants.user_a} may do in {tenants.b}: {granted}"
    # Cluster-scoped and named objects in B too.
    for verb, group, res, name in (
        ("get", "", "secrets", "db"),
        ("get", "", "configmaps", "source"),
        ("patch", "remora.dev", "buildrequests", "b-build"),
        ("update", "remora.dev", "buildrequests/status", "b-build"),
    ):
        assert not allowed(admin, tenants.user_a, verb, group, res, tenants.b, name), (verb, res, name)
    for verb, group, res in (
        ("get", "", "namespaces"),
        ("list", "", "namespaces"),
        ("list", "", "secrets"),
        ("list", "remora.dev", "buildrequests"),
        ("create", "rbac.authorization.k8s.io", "clusterrolebindings"),
    ):
        assert not allowed(admin, tenants.user_a, verb, group, res), (verb, res, "cluster-wide")
    # Not vacuous: in A the same account has its capabilities.
    assert allowed(admin, tenants.user_a, "create", "remora.dev", "buildrequests", tenants.a)
    assert allowed(admin, tenants.user_a, "create", "batch", "jobs", tenants.a)


def test_real_requests_with_a_token_of_a_get_403_in_b(
    cluster: Any, admin: Any, tenants: Tenants, tmp_path: Path
) -> None:
    token = service_account_token(admin, tenants.a, tenants.account, seconds=600)
    api = api_client(token_kubeconfig(cluster, token, tmp_path / "a.kubeconfig"))
    b, a = tenants.b, tenants.a
    status_body = {"apiVersion": API_VERSION, "kind": "BuildRequest", "metadata": {"name": "b-build"},
                   "status": {"phase": "Succeeded"}}  # fmt: skip
    lease = {"metadata": {"name": "remora-dbm-db"}, "spec": {"holderIdentity": "x/y"}}
    attempts: list[tuple[str, str, Any]] = [
        ("GET", f"{GROUP}/{b}/buildrequests", None),
        ("GET", f"{GROUP}/{b}/buildrequests/b-build", None),
        ("POST", f"{GROUP}/{b}/buildrequests", resource("build", "a-was-here")),
        ("PUT", f"{GROUP}/{b}/buildrequests/b-build/status", status_body),
        ("DELETE", f"{GROUP}/{b}/buildrequests/b-build", None),
        ("GET", f"/api/v1/namespaces/{b}/secrets/db", None),
        ("GET", f"/api/v1/namespaces/{b}/secrets", None),
        ("GET", f"/api/v1/namespaces/{b}/configmaps/source", None),
        ("POST", f"/api/v1/namespaces/{b}/configmaps", {"metadata": {"name": "a-was-here"}}),
        ("GET", f"/api/v1/namespaces/{b}/pods", None),
        ("POST", f"/apis/batch/v1/namespaces/{b}/jobs", {"metadata": {"name": "x"}}),
        ("GET", f"/apis/batch/v1/namespaces/{b}/jobs", None),
        ("POST", f"/apis/coordination.k8s.io/v1/namespaces/{b}/leases", lease),
        ("POST", f"/api/v1/namespaces/{b}/serviceaccounts/default/token", {"spec": {}}),
        ("GET", f"/api/v1/namespaces/{a}/secrets", None),  # not even its own namespace's Secrets
    ]
    try:
        outcomes = []
        for method, path, body in attempts:
            try:
                request(api, method, path, body=body)
                outcomes.append((method, path, 200))
            except ApiError as exc:
                outcomes.append((method, path, exc.status))
        assert [o for o in outcomes if o[2] != 403] == [], outcomes
        # The token is good: in A the same account lists its resources.
        assert request(api, "GET", f"{GROUP}/{a}/buildrequests")["items"] == []
    finally:
        api.close()
    untouched = request(admin, "GET", f"{GROUP}/{b}/buildrequests/b-build")
    assert "status" not in untouched


def wait_job(admin: Any, namespace: str, capability: str, name: str, timeout: float = 45) -> dict[str, Any]:
    path = f"{GROUP}/{namespace}/{PLURALS[capability]}/{name}"

    def job_name() -> str | None:
        return (request(admin, "GET", path).get("status") or {}).get("jobName")

    job = wait_until(job_name, timeout=timeout, description=f"{name} has a Job")
    return dict(request(admin, "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/{job}"))


def namespaced_references(value: Any, trail: str = "") -> list[str]:
    """Every `namespace` key below a Job's spec (a pod spec names objects of its own namespace only)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "namespace" and not trail.endswith("fieldRef"):
                found.append(f"{trail}.{key}")
            found += namespaced_references(item, f"{trail}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += namespaced_references(item, f"{trail}[{index}]")
    return found


def test_an_operator_with_the_agent_token_works_in_a_and_not_in_b(  # noqa: PLR0917 (pytest fixtures)
    cluster: Any, admin: Any, stack: Stack, tenants: Tenants, tmp_path: Path, fake_kubelet: Any
) -> None:
    a, b = tenants.a, tenants.b
    token = service_account_token(admin, a, tenants.account, seconds=900)
    kubeconfig = token_kubeconfig(cluster, token, tmp_path / "agent.kubeconfig")
    secret = {"metadata": {"name": "orders-db"}, "stringData": {"password": "tenant-a-secret"}}
    request(admin, "POST", f"/api/v1/namespaces/{a}/secrets", body=secret)
    migrate = Operator(stack, kubeconfig, "migrate", a, tmp_path / "migrate-a.log")
    build = Operator(stack, kubeconfig, "build", a, tmp_path / "build-a.log")
    intruder = Operator(stack, kubeconfig, "build", b, tmp_path / "build-b.log")
    try:
        for op in (migrate, build):
            wait_until(
                lambda op=op: op.probe("/readyz") == 200, timeout=30, description="operator ready in A"
            )
        # A migration naming a Secret "in B": the field does not exist; the apiserver prunes it.
        body = resource("migrate", "m1", databaseSecretRef={"name": "orders-db", "namespace": b})
        created = request(admin, "POST", f"{GROUP}/{a}/databasemigrations", body=body)
        assert created["spec"]["databaseSecretRef"] == {"name": "orders-db"}
        job = wait_job(admin, a, "migrate", "m1")
        assert job["metadata"]["namespace"] == a
        pod_spec = job["spec"]["template"]["spec"]
        assert pod_spec["containers"][0]["envFrom"] == [{"secretRef": {"name": "orders-db"}}]
        assert namespaced_references(job["spec"]) == []
        # The per-database lock works with the chart's role (coordination.k8s.io leases).
        leases = request(admin, "GET", f"/apis/coordination.k8s.io/v1/namespaces/{a}/leases")["items"]
        assert [lease["metadata"]["name"] for lease in leases] == ["remora-dbm-orders-db"]
        fake_kubelet.run_and_finish_job_pod(a, job["metadata"]["name"], 0, "applied 2 migrations")
        wait_until(
            lambda: (
                (request(admin, "GET", f"{GROUP}/{a}/databasemigrations/m1").get("status") or {}).get("phase")
                == "Succeeded"
            ),
            timeout=45,
            description="m1 Succeeded",
        )
        # A build whose source ConfigMap is "in B": same, and the volume names the ConfigMap in A.
        body = resource("build", "b1", source={"configMap": {"name": "source", "namespace": b}})
        created = request(admin, "POST", f"{GROUP}/{a}/buildrequests", body=body)
        assert created["spec"]["source"] == {"configMap": {"name": "source"}}
        build_job = wait_job(admin, a, "build", "b1")
        volumes = build_job["spec"]["template"]["spec"]["volumes"]
        assert [v["configMap"]["name"] for v in volumes if "configMap" in v] == ["source"]
        assert namespaced_references(build_job["spec"]) == []
        # The operator started for B with A's token: never ready, never touches B.
        time.sleep(2)
        assert intruder.probe("/readyz") != 200
        assert request(admin, "GET", f"/apis/batch/v1/namespaces/{b}/jobs")["items"] == []
        assert "status" not in request(admin, "GET", f"{GROUP}/{b}/buildrequests/b-build")
        log = intruder.log.read_text(errors="replace") if intruder.log.exists() else ""
        assert "403" in log or "forbidden" in log.lower(), log[-2000:]
    finally:
        for op in (migrate, build, intruder):
            op.stop()


def test_the_crds_have_no_cross_namespace_references(kubectl: Any, stack: Stack) -> None:
    """No property named `namespace` in any served schema, and nothing keeps unknown fields."""
    for plural in PLURALS.values():
        crd = json.loads(kubectl("get", f"crd/{plural}.remora.dev", "-o", "json").stdout)
        for version in crd["spec"]["versions"]:
            schema = version["schema"]["openAPIV3Schema"]
            assert namespaced_properties(schema["properties"]["spec"]) == [], plural
            assert "x-kubernetes-preserve-unknown-fields" not in json.dumps(schema["properties"]["spec"])


def namespaced_properties(schema: Any, trail: str = "spec") -> list[str]:
    found: list[str] = []
    if isinstance(schema, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key == "namespace":
                found.append(f"{trail}.{key}")
            found += namespaced_properties(sub, f"{trail}.{key}")
        if isinstance(schema.get("items"), dict):
            found += namespaced_properties(schema["items"], f"{trail}[]")
    return found


def test_strict_field_validation_names_the_cross_namespace_field(admin: Any, tenants: Tenants) -> None:
    body = resource("test", "t1", command=["pytest"])
    body["spec"]["image"] = "registry.example/tests:1"
    body["spec"]["namespace"] = tenants.b
    with pytest.raises(ApiError) as strict:
        request(
            admin, "POST", f"{GROUP}/{tenants.a}/testruns", body=body, query={"fieldValidation": "Strict"}
        )
    assert 'unknown field "spec.namespace"' in strict.value.message


# -- the RBAC table in docs/rbac.md ------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    subject: str  # "webhook" or a capability name
    scope: str  # "cluster", "release namespace" or "agent namespace"
    group: str
    resource: str
    name: str  # "" for any
    verb: str


def table_grants(stack: Stack) -> set[Grant]:
    text = RBAC_DOC.read_text()
    body = text.split("<!-- begin rbac table -->", 1)[1].split("<!-- end rbac table -->", 1)[0]
    rows = [line for line in body.strip().splitlines()[2:] if line.startswith("|")]
    assert rows, "docs/rbac.md has no RBAC table"
    grants: set[Grant] = set()
    for row in rows:
        component, scope, group, resources, names, verbs, _why = [
            c.strip() for c in row.strip("|").split("|")
        ]
        subjects = {"webhook": ["webhook"], "every capability": list(PLURALS)}.get(component, [component])
        api_group = "" if group == "core" else group
        for subject in subjects:
            for cell in _cells(resources):
                res = cell.replace("<plural>", PLURALS.get(subject, "?"))
                for name_cell in _cells(names):
                    name = "" if name_cell == "any" else name_cell.replace("<fullname>", stack.fullname)
                    grants |= {Grant(subject, scope, api_group, res, name, verb) for verb in _cells(verbs)}
    return grants


def _cells(cell: str) -> list[str]:
    return [part.strip().strip("`") for part in cell.split(",") if part.strip()]


def live_grants(admin: Any, stack: Stack) -> set[Grant]:
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    sources: list[tuple[str, str, dict[str, Any]]] = [
        ("webhook", "cluster", request(admin, "GET", f"{rbac}/clusterroles/{stack.fullname}-webhook")),
        ("webhook", "release namespace",
         request(admin, "GET", f"{rbac}/namespaces/{stack.namespace}/roles/{stack.fullname}-webhook")),
    ]  # fmt: skip
    for capability in PLURALS:
        role = request(admin, "GET", f"{rbac}/clusterroles/{stack.role_prefix}{capability}")
        sources.append((capability, "agent namespace", role))
    grants: set[Grant] = set()
    for subject, scope, role in sources:
        for rule in role.get("rules") or []:
            for group in rule.get("apiGroups") or []:
                for res in rule.get("resources") or []:
                    for name in rule.get("resourceNames") or [""]:
                        for verb in rule["verbs"]:
                            grants.add(Grant(subject, scope, group, res, name, verb))
    return grants


def test_the_installed_roles_grant_exactly_the_documented_table(admin: Any, stack: Stack) -> None:
    documented, live = table_grants(stack), live_grants(admin, stack)
    assert sorted(live - documented, key=str) == [], "granted but not in docs/rbac.md"
    assert sorted(documented - live, key=str) == [], "in docs/rbac.md but not granted"
    # Only the webhook's own ServiceAccount is bound to the webhook roles.
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    binding = request(admin, "GET", f"{rbac}/clusterrolebindings/{stack.fullname}-webhook")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": stack.webhook_account, "namespace": stack.namespace}
    ]


def subject_of(grant: Grant, stack: Stack, tenants: Tenants) -> tuple[str, str]:
    """(user, namespace) to ask a SubjectAccessReview for this grant."""
    if grant.subject == "webhook":
        user = f"system:serviceaccount:{stack.namespace}:{stack.webhook_account}"
        return user, stack.namespace if grant.scope == "release namespace" else ""
    return tenants.user_a, tenants.a


def test_every_documented_permission_is_allowed(admin: Any, stack: Stack, tenants: Tenants) -> None:
    refused = []
    for grant in sorted(table_grants(stack), key=str):
        user, namespace = subject_of(grant, stack, tenants)
        if grant.scope == "cluster" and grant.subject == "webhook" and grant.resource == "jobs":
            namespace = tenants.a  # a cluster-wide grant holds in any namespace
        if not allowed(admin, user, grant.verb, grant.group, grant.resource, namespace, grant.name):
            refused.append(grant)
    assert refused == []


def test_nearby_permissions_are_denied(admin: Any, stack: Stack, tenants: Tenants) -> None:
    webhook = f"system:serviceaccount:{stack.namespace}:{stack.webhook_account}"
    release, a, b = stack.namespace, tenants.a, tenants.b
    other_tenant = f"system:serviceaccount:{b}:default"  # build only
    denied: list[tuple[str, str, str, str, str, str]] = [
        # (user, verb, group, resource, namespace, name)
        (webhook, "get", "", "secrets", release, "someone-elses"),
        (webhook, "list", "", "secrets", release, ""),
        (webhook, "watch", "", "secrets", release, ""),
        (webhook, "delete", "", "secrets", release, f"{stack.fullname}-certs"),
        (webhook, "get", "", "secrets", a, ""),
        (webhook, "get", "", "secrets", "kube-system", ""),
        (webhook, "update", "", "configmaps", release, "remora-capabilities"),
        (webhook, "get", "", "configmaps", release, "other"),
        (webhook, "create", "", "pods", a, ""),
        (webhook, "create", "batch", "jobs", a, ""),
        (webhook, "list", "batch", "jobs", a, ""),
        (webhook, "list", "remora.dev", "buildrequests", a, ""),
        (webhook, "update", "remora.dev", "buildrequests/status", a, ""),
        (webhook, "patch", "", "namespaces", "", a),
        (webhook, "update", "coordination.k8s.io", "leases", release, "other"),
        (webhook, "delete", "coordination.k8s.io", "leases", release, f"{stack.fullname}-certs"),
        (webhook, "patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "other"),
        (webhook, "patch", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "other"),
        (
            webhook,
            "update",
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            "",
            stack.fullname,
        ),
        (
            webhook,
            "delete",
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            "",
            stack.fullname,
        ),
        (webhook, "create", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", ""),
        (webhook, "list", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", ""),
        (webhook, "escalate", "rbac.authorization.k8s.io", "clusterroles", "", ""),
        (tenants.user_a, "get", "", "secrets", a, "orders-db"),
        (tenants.user_a, "list", "", "secrets", a, ""),
        (tenants.user_a, "get", "", "configmaps", a, ""),
        (tenants.user_a, "create", "", "pods", a, ""),
        (tenants.user_a, "create", "", "pods/exec", a, ""),
        (tenants.user_a, "patch", "", "pods/ephemeralcontainers", a, ""),
        (tenants.user_a, "update", "", "pods", a, ""),
        (tenants.user_a, "watch", "", "pods", a, ""),
        (tenants.user_a, "update", "batch", "jobs", a, ""),
        (tenants.user_a, "patch", "batch", "jobs", a, ""),
        (tenants.user_a, "deletecollection", "batch", "jobs", a, ""),
        (tenants.user_a, "create", "batch", "jobs", b, ""),
        (tenants.user_a, "create", "batch", "cronjobs", a, ""),
        (tenants.user_a, "update", "remora.dev", "buildrequests", a, ""),
        (tenants.user_a, "patch", "remora.dev", "buildrequests/status", a, ""),
        (tenants.user_a, "update", "coordination.k8s.io", "leases", a, ""),
        (tenants.user_a, "create", "", "events", a, ""),
        (tenants.user_a, "delete", "events.k8s.io", "events", a, ""),
        (tenants.user_a, "create", "", "serviceaccounts/token", a, tenants.account),
        (tenants.user_a, "create", "rbac.authorization.k8s.io", "rolebindings", a, ""),
        (tenants.user_a, "list", "", "namespaces", "", ""),
        # A capability role covers its own kind only.
        (other_tenant, "create", "remora.dev", "testruns", b, ""),
        (other_tenant, "create", "remora.dev", "databasemigrations", b, ""),
        (other_tenant, "create", "coordination.k8s.io", "leases", b, ""),
    ]
    granted = [d for d in denied if allowed(admin, d[0], d[1], d[2], d[3], d[4], d[5])]
    assert granted == []
    # Not vacuous: the same subjects hold their own grants.
    assert allowed(admin, other_tenant, "create", "remora.dev", "buildrequests", b)
    assert allowed(admin, webhook, "get", "", "secrets", release, f"{stack.fullname}-certs")


def test_the_table_parser_sees_every_component() -> None:
    text = RBAC_DOC.read_text()
    table = text.split("<!-- begin rbac table -->", 1)[1].split("<!-- end rbac table -->", 1)[0]
    components = {re.split(r"\s*\|\s*", line.strip("| "))[0] for line in table.strip().splitlines()[2:]}
    assert components == {"webhook", "every capability", "migrate"}
