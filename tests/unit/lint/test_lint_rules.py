"""What each rule says, beyond "it fires": severities, objects, costs, RBAC answers, and
that no malformed manifest crashes any rule."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from lintcases import MANIFESTS, findings, inventory, load

from common import names
from lint.model import AccessAnswer, Inventory, ObjectRef, Resource, Severity
from lint.rules import RULES, capability_without_rbac


def test_split_sidecar_names_app_helper_and_claim_and_warns_on_rwo() -> None:
    [finding] = findings(load(MANIFESTS / "split-sidecar/trigger/frontend-and-fluentd.yaml"))
    assert finding.severity is Severity.WARNING
    assert finding.objects == (
        ObjectRef("Deployment", "shop", "frontend"),
        ObjectRef("Deployment", "shop", "log-collector"),
        ObjectRef("PersistentVolumeClaim", "shop", "logs"),
    )
    assert "log shipper" in finding.message and "ReadWriteOnce" in finding.why
    assert "belongs in that application's pod" in finding.why
    assert "restartPolicy: Always" in finding.fix


def test_split_sidecar_is_info_when_the_app_is_not_recognisably_one() -> None:
    [finding] = findings(load(MANIFESTS / "split-sidecar/trigger/unnamed-app-is-info.yaml"))
    assert finding.severity is Severity.INFO


def test_job_sidecar_never_completes_is_an_error_per_helper() -> None:
    [finding] = findings(
        load(MANIFESTS / "job-sidecar-never-completes/trigger/agent-job-with-plain-operator.yaml"),
        "job-sidecar-never-completes",
    )
    assert finding.severity is Severity.ERROR
    assert finding.details["container"] == "remora-build"
    assert "Remora capability operator" in finding.message


def test_sidecar_cost_per_pod_per_thousand_and_per_replicas() -> None:
    [finding] = findings(load(MANIFESTS / "sidecar-without-resources/trigger/deployment-three-replicas.yaml"))
    assert "'envoy' has no requests or memory limit" in finding.message
    assert "'fluent-bit' has no memory limit" in finding.message
    table = "\n".join(finding.notes)
    assert "per pod                   50m + ?" in table
    assert "per 1,000 pods            50 cores + ?" in table
    assert "62.5Gi + ?" in table
    assert "at 3 replicas             150m + ?" in table
    assert finding.details["per_1000_pods"]["requests.memory"] == {
        "declared": str(64 * 2**20 * 1000),
        "undeclared_sidecars": 1,
    }


def test_sidecar_cost_when_everything_is_declared_but_a_cpu_limit() -> None:
    text = """
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: n}
spec:
  initContainers:
    - name: envoy
      image: envoyproxy/envoy:v1.31.0
      restartPolicy: Always
      resources: {requests: {cpu: "0.25", memory: 1Gi}, limits: {memory: 1.5Gi}}
  containers: [{name: app, image: app}]
"""
    assert findings(inventory(text)) == []  # no CPU limit is allowed


def test_sidecar_with_unparseable_quantity_counts_as_undeclared() -> None:
    text = """
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: n}
spec:
  initContainers:
    - name: envoy
      image: envoyproxy/envoy:v1.31.0
      restartPolicy: Always
      resources: {requests: {cpu: lots, memory: 1Gi}, limits: {memory: 2Gi}}
  containers: [{name: app, image: app}]
"""
    [finding] = findings(inventory(text))
    assert "'envoy' has no cpu request" in finding.message


def test_startup_order_reason_names_the_port() -> None:
    [finding] = findings(load(MANIFESTS / "sidecar-startup-order/trigger/db-through-plain-proxy.yaml"))
    assert finding.rule == "sidecar-startup-order"
    assert "localhost:5432" in finding.message and "'cloud-sql-proxy'" in finding.message


CAPABLE_AGENT = """
apiVersion: v1
kind: Namespace
metadata: {name: agents, labels: {remora.dev/injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: code-agent, namespace: agents}
spec:
  template:
    metadata: {annotations: {remora.dev/capabilities: "build, test"}}
    spec:
      serviceAccountName: coder
      containers: [{name: agent, image: example.com/agent:1}]
---
apiVersion: v1
kind: Pod
metadata: {name: lone-agent, namespace: agents, annotations: {remora.dev/capabilities: migrate}}
spec:
  containers: [{name: agent, image: example.com/agent:1}]
"""


def test_rbac_questions_per_capability_and_shared_ones_once() -> None:
    inv = inventory(CAPABLE_AGENT, live=True)
    questions = capability_without_rbac.questions(inv)
    coder = [q for q in questions if q.service_account == "coder"]
    described = {q.describe() for q in coder}
    for plural in ("buildrequests", "testruns"):
        assert {
            f"get {plural} (remora.dev)",
            f"list {plural} (remora.dev)",
            f"watch {plural} (remora.dev)",
        } <= described
        assert {f"update {plural}/status (remora.dev)", f"patch {plural}/status (remora.dev)"} <= described
    assert {
        "create jobs (batch)",
        "delete jobs (batch)",
        "watch pods (core)",
        "create events (events.k8s.io)",
    } <= described
    assert not any("databasemigrations" in d for d in described)
    assert len(coder) == 2 * 5 + 5 + 3 + 1
    default = [q for q in questions if q.service_account == "default"]
    assert {q.resource for q in default} == {"databasemigrations", "jobs", "pods", "events"}


def test_rbac_offline_reports_nothing() -> None:
    assert findings(inventory(CAPABLE_AGENT), "capability-without-rbac") == []


def test_rbac_all_allowed_is_quiet_and_a_denial_is_an_error_with_a_role() -> None:
    inv = inventory(CAPABLE_AGENT, live=True)
    questions = capability_without_rbac.questions(inv)
    inv.access = {q: AccessAnswer(True) for q in questions}
    assert findings(inv, "capability-without-rbac") == []

    for q in questions:
        if q.service_account == "coder" and (q.subresource == "status" or q.resource == "events"):
            inv.access[q] = AccessAnswer(False, "no RBAC policy matched")
    [finding] = findings(inv, "capability-without-rbac")
    assert finding.severity is Severity.ERROR
    assert finding.objects[0] == ObjectRef("ServiceAccount", "agents", "coder")
    assert ObjectRef("Deployment", "agents", "code-agent") in finding.objects
    assert finding.details["role_rules"] == [
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
        {"apiGroups": [names.GROUP], "resources": ["buildrequests/status"], "verbs": ["patch", "update"]},
        {"apiGroups": [names.GROUP], "resources": ["testruns/status"], "verbs": ["patch", "update"]},
    ]
    assert "patch buildrequests/status (remora.dev)" in finding.message


def test_rbac_unanswerable_reviews_are_info() -> None:
    inv = inventory(CAPABLE_AGENT, live=True)
    inv.access = {
        q: AccessAnswer(None, "cannot create subjectaccessreviews: 403")
        for q in capability_without_rbac.questions(inv)
    }
    found = findings(inv, "capability-without-rbac")
    assert {f.severity for f in found} == {Severity.INFO}
    assert all("403" in f.message for f in found)


def test_live_enabled_namespace_with_no_workloads_is_info() -> None:
    inv = inventory(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: empty, labels: {remora.dev/injection: enabled}}\n",
        live=True,
    )
    [finding] = findings(inv)
    assert finding.severity is Severity.INFO and "any workload" in finding.message


def test_enabled_namespace_with_an_unannotated_agent_is_a_warning() -> None:
    [finding] = findings(load(MANIFESTS / "capability-without-injection/trigger/enabled-but-unused.yaml"))
    assert finding.severity is Severity.WARNING
    assert ObjectRef("Deployment", "agents", "code-agent") in finding.objects


# -- the normalized workload view --------------------------------------------------------

LIVE = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: n}
spec:
  replicas: 4
  template:
    metadata: {labels: {app: web}, annotations: {remora.dev/capabilities: build}}
    spec: {containers: [{name: web, image: web}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-1
  namespace: n
  ownerReferences: [{kind: Deployment, name: web, controller: true}]
spec:
  template: {spec: {containers: [{name: web, image: web}]}}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-1-a
  namespace: n
  annotations: {remora.dev/status: '{"capabilities":["build"]}'}
  ownerReferences: [{kind: ReplicaSet, name: web-1, controller: true}]
spec:
  initContainers: [{name: remora-build, image: remora, restartPolicy: Always}]
  containers: [{name: web, image: web}]
---
apiVersion: v1
kind: Pod
metadata:
  name: orphan
  namespace: n
  ownerReferences: [{kind: Job, name: gone, controller: true}]
spec: {containers: [{name: c, image: c}]}
"""


def test_owned_objects_fold_into_their_top_owner_with_the_injected_spec() -> None:
    inv = inventory(LIVE)
    by_name = {w.name: w for w in inv.workloads}
    assert set(by_name) == {"web", "orphan"}
    web = by_name["web"]
    assert web.replicas == 4 and web.capabilities == ["build"]
    assert [c.name for c in web.containers()] == ["remora-build", "web"]
    assert by_name["orphan"].job_like


def test_owner_cycles_do_not_hang() -> None:
    text = """
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: a, namespace: n, ownerReferences: [{kind: ReplicaSet, name: b, controller: true}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: b, namespace: n, ownerReferences: [{kind: ReplicaSet, name: a, controller: true}]}
"""
    assert {w.name for w in inventory(text).workloads} == {"a", "b"}


def test_every_kind_yields_its_pod_template() -> None:
    spec = {"containers": [{"name": "c", "image": "i"}]}
    template = {"spec": spec}
    bodies: list[dict[str, Any]] = [
        {"kind": "Pod", "spec": spec},
        {"kind": "Deployment", "spec": {"template": template}},
        {"kind": "StatefulSet", "spec": {"template": template, "replicas": 0}},
        {"kind": "DaemonSet", "spec": {"template": template}},
        {"kind": "ReplicaSet", "spec": {"template": template}},
        {"kind": "Job", "spec": {"template": template, "parallelism": 3}},
        {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": template}}}},
    ]
    inv = Inventory(
        [Resource({**b, "apiVersion": "x", "metadata": {"name": b["kind"].lower()}}) for b in bodies]
    )
    got = {w.kind: (w.replicas, w.job_like, [c.name for c in w.containers()]) for w in inv.workloads}
    assert got == {
        "Pod": (1, False, ["c"]),
        "Deployment": (1, False, ["c"]),
        "StatefulSet": (0, False, ["c"]),
        "DaemonSet": (None, False, ["c"]),
        "ReplicaSet": (1, False, ["c"]),
        "Job": (3, True, ["c"]),
        "CronJob": (1, True, ["c"]),
    }


# -- no malformed manifest crashes a rule --------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=12)
    | st.sampled_from(
        ["Always", "fluentd", "envoyproxy/envoy:v1", "localhost:5432", "build,test", "enabled", "1Gi", "100m"]
    )
)
_keys = st.sampled_from(
    [
        "spec",
        "template",
        "containers",
        "initContainers",
        "volumes",
        "persistentVolumeClaim",
        "claimName",
        "name",
        "image",
        "restartPolicy",
        "resources",
        "requests",
        "limits",
        "cpu",
        "memory",
        "env",
        "value",
        "ports",
        "containerPort",
        "metadata",
        "labels",
        "annotations",
        "replicas",
        "jobTemplate",
        "args",
        names.CAPABILITIES_ANNOTATION,
        names.INJECTION_LABEL,
        "ownerReferences",
        "controller",
        "kind",
    ]
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "kind": st.sampled_from(["Pod", "Deployment", "Job", "CronJob", "Namespace", "DaemonSet"]),
                "apiVersion": st.just("v1"),
            },
            optional={"metadata": _json, "spec": _json},
        ),
        max_size=4,
    ),
    st.booleans(),
)
def test_malformed_objects_never_crash_a_rule(bodies: list[dict[str, Any]], live: bool) -> None:
    inv = Inventory([Resource(b) for b in bodies], live=live)
    if live:
        inv.access = {q: AccessAnswer(False) for q in capability_without_rbac.questions(inv)}
    for rule in RULES:
        for finding in rule.check(inv):
            assert finding.rule == rule.id and finding.message


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


TRIGGER_OBJECTS = [
    r.body for path in sorted(MANIFESTS.glob("*/trigger/*.yaml")) for r in load(path).resources
]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_real_manifests_with_a_subtree_replaced_by_garbage_never_crash(data: st.DataObject) -> None:
    body = copy.deepcopy(data.draw(st.sampled_from(TRIGGER_OBJECTS)))
    path = data.draw(st.sampled_from(_paths(body)[1:]))
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = data.draw(_json)
    inv = Inventory([Resource(body)], live=True)
    inv.access = {q: AccessAnswer(None, "x") for q in capability_without_rbac.questions(inv)}
    for rule in RULES:
        rule.check(inv)
