"""helm lint and helm template over a matrix of values, checked structurally."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import CHART, NAMESPACE, ROOT, Rendered

from common.names import CAPABILITIES_ANNOTATION, INJECT_LABEL, INJECTION_LABEL
from webhook.catalog.catalog import parse_catalog
from webhook.validate.offline import check

Render = Callable[..., Rendered]
MATRIX = {
    "defaults": (),
    "cert-manager": ("certs.mode=certManager",),
    "cert-manager-issuer": (
        "certs.mode=certManager",
        "certs.certManager.issuerRef.name=corp-ca",
        "certs.certManager.issuerRef.kind=ClusterIssuer",
    ),
    "url": (
        "webhook.url=https://127.0.0.1:9443/",
        "certs.extraSANs={127.0.0.1}",
        "webhook.caBundle=" + base64.b64encode(b"pem").decode(),
    ),
    "ignore": ("webhook.failurePolicy.mutating=Ignore", "webhook.failurePolicy.validating=Ignore"),
    "lean": (
        "webhook.validateWorkloads=false",
        "catalog.capabilities.migrate.enabled=false",
        "replicaCount=1",
    ),
}


def hooks(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["webhooks"]


@pytest.mark.parametrize("sets", [(), MATRIX["cert-manager"], MATRIX["url"]])
def test_helm_lint(helm: Path, sets: tuple[str, ...]) -> None:
    args = [str(helm), "lint", str(CHART), "--strict", "--namespace", NAMESPACE]
    for s in sets:
        args += ["--set", s]
    proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_every_case_renders_the_contract(render: Render, case: str) -> None:
    out = render(*MATRIX[case])
    mutating = out.one("MutatingWebhookConfiguration")
    validating = out.one("ValidatingWebhookConfiguration")
    names = [h["name"] for h in hooks(mutating) + hooks(validating)]
    assert len(names) == len(set(names)), "webhook names must be unique"
    for hook in hooks(mutating) + hooks(validating):
        assert hook["timeoutSeconds"] == 5
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1"]
        excluded = [
            e
            for e in hook["namespaceSelector"]["matchExpressions"]
            if e["key"] == "kubernetes.io/metadata.name"
        ]
        assert excluded == [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", NAMESPACE]}
        ]
    # The catalog validates against the webhook's own schema.
    catalog = parse_catalog(out.one("ConfigMap", "remora-capabilities")["data"]["catalog.yaml"], "chart")
    assert catalog.names()
    # Every pod the chart makes meets the hardened level.
    report = check(out.all("Deployment") + out.all("Pod"), "hardened", "chart")
    assert report.checked >= 1
    assert report.denied == 0, [f.line() for f in report.findings]


def test_injector_webhook(render: Render) -> None:
    (hook,) = hooks(render().one("MutatingWebhookConfiguration", "remora"))
    assert hook["name"] == "inject.remora.dev"
    assert hook["failurePolicy"] == "Fail"
    assert hook["reinvocationPolicy"] == "IfNeeded"
    assert hook["rules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE"],
            "resources": ["pods"],
            "scope": "Namespaced",
        }
    ]
    assert {"key": INJECTION_LABEL, "operator": "In", "values": ["enabled"]} in hook["namespaceSelector"][
        "matchExpressions"
    ]
    assert hook["objectSelector"] == {
        "matchExpressions": [{"key": INJECT_LABEL, "operator": "NotIn", "values": ["false"]}]
    }
    (condition,) = hook["matchConditions"]
    assert f"'{CAPABILITIES_ANNOTATION}' in object.metadata.annotations" in condition["expression"]
    assert hook["clientConfig"]["service"] == {
        "name": "remora-webhook",
        "namespace": NAMESPACE,
        "path": "/mutate",
        "port": 443,
    }
    assert "caBundle" not in hook["clientConfig"], "a fresh install leaves caBundle to the rotation"


def test_validating_webhooks_cover_pods_workloads_jobs_and_resources(render: Render) -> None:
    validating = render().one("ValidatingWebhookConfiguration")
    covered: set[tuple[str, str, str]] = set()
    for hook in hooks(validating):
        # Fail closed for pods and capability resources; templates only warn by default.
        expected = "Ignore" if hook["name"].startswith("workloads.") else "Fail"
        assert hook["failurePolicy"] == expected, hook["name"]
        assert hook["clientConfig"]["service"]["path"] == "/validate"
        assert "objectSelector" not in hook, "opting out of injection must not opt out of policy"
        for rule in hook["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for op in rule["operations"]:
                        covered.add((group, resource, op))
    for group, resource in [
        ("", "pods"),
        ("", "pods/ephemeralcontainers"),
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("apps", "replicasets"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
        ("remora.dev", "buildrequests"),
        ("remora.dev", "testruns"),
        ("remora.dev", "databasemigrations"),
    ]:
        assert {(group, resource, "CREATE"), (group, resource, "UPDATE")} <= covered, (group, resource)


def test_validating_scopes_are_disjoint(render: Render) -> None:
    """A namespace with any mix of the four labels matches exactly one pods webhook."""
    pods_hooks = [
        h for h in hooks(render().one("ValidatingWebhookConfiguration")) if h["name"].startswith("pods.")
    ]
    keys = [INJECTION_LABEL, "remora.dev/enforce", "remora.dev/warn", "remora.dev/audit"]
    for mask in range(16):
        labels = {
            k: ("enabled" if k == INJECTION_LABEL else "restricted")
            for i, k in enumerate(keys)
            if mask >> i & 1
        }
        matched = [h["name"] for h in pods_hooks if _selects(h["namespaceSelector"], labels)]
        assert len(matched) == (1 if labels else 0), (labels, matched)


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for expr in selector["matchExpressions"]:
        value = labels.get(expr["key"])
        op = expr["operator"]
        if (op == "In" and value not in expr["values"]) or (op == "NotIn" and value in expr["values"]):
            return False
        if (op == "Exists" and value is None) or (op == "DoesNotExist" and value is not None):
            return False
    return True


def test_deployment_defaults(render: Render) -> None:
    out = render()
    deployment = out.one("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    assert pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (webhook,) = pod["containers"]
    (certs,) = pod["initContainers"]
    assert certs["restartPolicy"] == "Always", "the certs container is a native sidecar"
    for container in (webhook, certs):
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsNonRoot"] is True
        assert sc["runAsUser"] > 0 and sc["runAsGroup"] > 0
        assert container["resources"]["limits"]["memory"]
    assert webhook["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert webhook["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "--tls-cert=/certs/tls.crt" in webhook["args"]
    assert certs["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert "--webhook-config=remora" in certs["args"] and "--service=remora-webhook" in certs["args"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["certs"]
    pdb = out.one("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    service = out.one("Service")
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["port"] == 443


def test_single_replica_has_no_pdb(render: Render) -> None:
    assert render("replicaCount=1").all("PodDisruptionBudget") == []


def test_webhook_rbac_is_least_privilege(render: Render) -> None:
    out = render()
    cluster_role = out.one("ClusterRole", "remora-webhook")
    role = out.one("Role", "remora-webhook")
    for rule in cluster_role["rules"] + role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
    by_resource = {
        (r["apiGroups"][0], r["resources"][0], tuple(r.get("resourceNames", ()))): r["verbs"]
        for r in cluster_role["rules"] + role["rules"]
    }
    assert by_resource[("", "namespaces", ())] == ["get", "list", "watch"]
    assert by_resource[("admissionregistration.k8s.io", "mutatingwebhookconfigurations", ("remora",))] == [
        "get",
        "patch",
    ]
    assert by_resource[("", "secrets", ("remora-certs",))] == ["get", "update"]
    assert by_resource[("", "secrets", ())] == ["create"]
    assert by_resource[("", "configmaps", ("remora-capabilities",))] == ["get", "list", "watch"]
    assert by_resource[("coordination.k8s.io", "leases", ("remora-certs",))] == ["get", "update"]
    assert by_resource[("remora.dev", "buildrequests", ())] == ["get"]
    # Owner checks on the pods of an operator's Job read the Job.
    assert by_resource[("batch", "jobs", ())] == ["get"]
    binding = out.one("ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "remora-webhook", "namespace": NAMESPACE}
    ]


def test_capability_cluster_roles(render: Render) -> None:
    out = render()
    roles = {
        r["metadata"]["name"]: r
        for r in out.all("ClusterRole")
        if r["metadata"]["name"].startswith("remora-capability-")
    }
    assert sorted(roles) == ["remora-capability-build", "remora-capability-migrate", "remora-capability-test"]
    rules = {
        (r["apiGroups"][0], r["resources"][0]): r["verbs"] for r in roles["remora-capability-test"]["rules"]
    }
    # Exactly what the agent and the operator call (the table in docs/rbac.md).
    assert set(rules[("remora.dev", "testruns")]) == {"get", "list", "watch", "create", "patch", "delete"}
    assert rules[("remora.dev", "testruns/status")] == ["update"]
    assert set(rules[("batch", "jobs")]) == {"create", "get", "list", "watch", "delete"}
    assert rules[("", "pods")] == ["get", "list"]
    assert rules[("events.k8s.io", "events")] == ["create"]
    assert ("", "events") not in rules
    assert ("remora.dev", "buildrequests") not in rules
    assert ("coordination.k8s.io", "leases") not in rules
    migrate = {
        (r["apiGroups"][0], r["resources"][0]): r["verbs"]
        for r in roles["remora-capability-migrate"]["rules"]
    }
    # The per-database lock of the migrate operator.
    assert migrate[("coordination.k8s.io", "leases")] == ["create", "get", "delete"]
    for role in roles.values():
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
            assert "secrets" not in rule["resources"] and "configmaps" not in rule["resources"], rule
    lean = render(*MATRIX["lean"])
    assert not [r for r in lean.all("ClusterRole") if r["metadata"]["name"] == "remora-capability-migrate"]


def test_catalog_from_values(render: Render) -> None:
    out = render(
        "catalog.capabilities.build.image=registry.example/build:1", "catalog.capabilities.test.enabled=false"
    )
    catalog = parse_catalog(out.one("ConfigMap", "remora-capabilities")["data"]["catalog.yaml"], "chart")
    assert catalog.names() == ["build", "migrate"]
    assert catalog.capabilities["build"].image == "registry.example/build:1"
    assert catalog.capabilities["migrate"].image == "ghcr.io/remora-dev/remora:0.1.0"


def test_url_mode(render: Render) -> None:
    out = render(*MATRIX["url"])
    expected_ca = base64.b64encode(b"pem").decode()
    for hook in hooks(out.one("MutatingWebhookConfiguration")) + hooks(
        out.one("ValidatingWebhookConfiguration")
    ):
        client = hook["clientConfig"]
        assert "service" not in client
        assert client["url"] in ("https://127.0.0.1:9443/mutate", "https://127.0.0.1:9443/validate")
        assert client["caBundle"] == expected_ca


def test_cert_manager_mode(render: Render) -> None:
    out = render(*MATRIX["cert-manager"])
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        annotations = out.one(kind)["metadata"]["annotations"]
        assert annotations["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/remora-serving"
    serving = out.one("Certificate", "remora-serving")
    assert serving["spec"]["dnsNames"] == [
        "remora-webhook",
        f"remora-webhook.{NAMESPACE}",
        f"remora-webhook.{NAMESPACE}.svc",
        f"remora-webhook.{NAMESPACE}.svc.cluster.local",
    ]
    assert serving["spec"]["privateKey"]["algorithm"] == "ECDSA"
    assert serving["spec"]["issuerRef"]["name"] == "remora-ca"
    assert out.one("Certificate", "remora-ca")["spec"]["duration"] == "8760h"
    pod = out.one("Deployment")["spec"]["template"]["spec"]
    assert "initContainers" not in pod, "cert-manager mode needs no certs sidecar"
    assert {v["name"]: v for v in pod["volumes"]}["certs"]["secret"]["secretName"] == "remora-tls"
    verbs = [(r["resources"][0]) for r in out.one("Role", "remora-webhook")["rules"]]
    assert verbs == ["configmaps"], "no Secret, Lease or webhook patch rights without the rotation"
    with_issuer = render(*MATRIX["cert-manager-issuer"])
    assert [c["metadata"]["name"] for c in with_issuer.all("Certificate")] == ["remora-serving"]
    assert with_issuer.all("Issuer") == []
    assert with_issuer.one("Certificate")["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer"}


def test_extra_sans(render: Render) -> None:
    out = render("certs.mode=certManager", "certs.extraSANs={127.0.0.1,webhook.example.com,deadbeef}")
    spec = out.one("Certificate", "remora-serving")["spec"]
    assert spec["ipAddresses"] == ["127.0.0.1"]
    assert spec["dnsNames"][-2:] == ["webhook.example.com", "deadbeef"]
    args = render("certs.extraSANs={127.0.0.1}").one("Deployment")["spec"]["template"]["spec"][
        "initContainers"
    ][0]["args"]
    assert "--extra-san=127.0.0.1" in args


@pytest.mark.parametrize(
    ("mutating", "validating", "workloads"), [("Fail", "Ignore", "Fail"), ("Ignore", "Fail", "Ignore")]
)
def test_failure_policies(render: Render, mutating: str, validating: str, workloads: str) -> None:
    out = render(
        f"webhook.failurePolicy.mutating={mutating}",
        f"webhook.failurePolicy.validating={validating}",
        f"webhook.failurePolicy.workloads={workloads}",
    )
    assert {h["failurePolicy"] for h in hooks(out.one("MutatingWebhookConfiguration"))} == {mutating}
    by_target: dict[str, set[str]] = {}
    for hook in hooks(out.one("ValidatingWebhookConfiguration")):
        by_target.setdefault(hook["name"].split(".")[0], set()).add(hook["failurePolicy"])
    assert by_target == {"pods": {validating}, "resources": {validating}, "workloads": {workloads}}


def test_release_name_prefixes_names(render: Render) -> None:
    out = render(release="team")
    assert out.one("MutatingWebhookConfiguration")["metadata"]["name"] == "team-remora"
    assert (
        "--webhook-config=team-remora"
        in out.one("Deployment")["spec"]["template"]["spec"]["initContainers"][0]["args"]
    )
    # The catalog name is fixed by the design, whatever the release is called.
    assert out.one("ConfigMap")["metadata"]["name"] == "remora-capabilities"


def test_helm_test_hook(render: Render) -> None:
    out = render()
    test_pod = out.one("Pod")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    namespace = out.one("Namespace")
    assert namespace["metadata"]["labels"][INJECTION_LABEL] == "enabled"
    assert namespace["metadata"]["name"] in test_pod["spec"]["containers"][0]["args"]
    compile(test_pod["spec"]["containers"][0]["args"][0], "helm-test", "exec")
    assert render("tests.enabled=false").all("Pod") == []


def test_crds_are_copies_of_operators_crds() -> None:
    source = {p.name: p.read_bytes() for p in (ROOT / "operators" / "crds").glob("*.yaml")}
    shipped = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert source, "operators/crds/ holds no CRD"
    assert shipped == source, (
        "charts/remora/crds/ drifted from operators/crds/: cp operators/crds/*.yaml charts/remora/crds/"
    )


REJECTED = [
    (
        "webhook.failurePolicy.mutating=Maybe",
        "at '/webhook/failurePolicy/mutating': value must be one of 'Fail', 'Ignore'",
    ),
    (
        "webhook.failurePolicy.validating=fail",
        "at '/webhook/failurePolicy/validating': value must be one of 'Fail', 'Ignore'",
    ),
    ("certs.mode=vault", "at '/certs/mode': value must be one of 'self', 'certManager'"),
    ("webhook.url=http://127.0.0.1:9443", "at '/webhook/url'"),
    ("webhook.timeoutSeconds=31", "at '/webhook/timeoutSeconds': maximum"),
    ("webhook.caBundle=not*base64", "at '/webhook/caBundle'"),
    ("securityContext.runAsUser=0", "at '/securityContext/runAsUser': minimum: got 0, want 1"),
    ("replicaCount=0", "at '/replicaCount': minimum: got 0, want 1"),
    ("certs.servingLifetime=soon", "at '/certs/servingLifetime'"),
    ("resources.limits=null", "at '/resources'"),
    (
        "catalog.capabilities.build.kind=TestRun",
        "at '/catalog/capabilities/build/kind': value must be 'BuildRequest'",
    ),
    ("catalog.capabilities.deploy.enabled=true", "additional properties 'deploy' not allowed"),
    ("antiAffinity=sometimes", "at '/antiAffinity': value must be one of 'soft', 'hard'"),
    ("typo=1", "additional properties 'typo' not allowed"),
]


@pytest.mark.parametrize(("value", "message"), REJECTED)
def test_schema_rejects_bad_values(render_error: Callable[..., str], value: str, message: str) -> None:
    err = render_error(value)
    assert "values don't meet the specifications of the schema" in err
    assert message in err, err


def test_no_capability_enabled_is_rejected(render_error: Callable[..., str]) -> None:
    err = render_error(*(f"catalog.capabilities.{c}.enabled=false" for c in ("build", "test", "migrate")))
    assert "catalog.capabilities: enable at least one capability" in err


@pytest.mark.parametrize("case", ["defaults", "url"])
def test_container_args_are_accepted_by_the_cli(render: Render, case: str) -> None:
    """The chart and the CLI agree: the args it renders parse, and make a valid rotation config."""
    from remora.cli import build_parser
    from remora.commands.certs import rotation_config

    pod = render(*MATRIX[case], "certs.extraSANs={127.0.0.1}").one("Deployment")["spec"]["template"]["spec"]
    parser = build_parser()
    serve = parser.parse_args(pod["containers"][0]["args"])
    assert serve.command == "serve" and serve.port == 8443
    assert serve.catalog_configmap == f"{NAMESPACE}/remora-capabilities"
    certs = parser.parse_args(pod["initContainers"][0]["args"])
    assert certs.certs_command == "run" and certs.probe_port == 8444 and certs.check_port == 8443
    config = rotation_config(certs)
    assert config.secret.name == "remora-certs" and config.secret.namespace == NAMESPACE
    assert config.target.names == ("remora",)
    assert config.names.dns_names[2] == f"remora-webhook.{NAMESPACE}.svc"
    assert config.names.ip_addresses == ("127.0.0.1",)
    assert config.owner_configmap == "remora-capabilities"
    assert config.lease_name == "remora-certs"


def test_url_host_must_be_in_the_certificate(render_error: Callable[..., str]) -> None:
    err = render_error("webhook.url=https://hook.example.com:8443")
    assert "webhook.url: its host hook.example.com must be listed in certs.extraSANs" in err


def test_notes_tell_the_user_what_to_do_next(helm: Path, tmp_path: Path) -> None:
    # `helm template` does not render NOTES.txt (and `install --dry-run` wants a cluster in
    # helm 3), so a copy of the chart renders it into a ConfigMap with tpl.
    chart = tmp_path / "remora"
    shutil.copytree(CHART, chart)
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "notes-source.txt")
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data:\n  notes: {{ tpl (.Files.Get "notes-source.txt") . | toJson }}\n'
    )
    args = [
        str(helm),
        "template",
        "remora",
        str(chart),
        "-n",
        NAMESPACE,
        "--show-only",
        "templates/zz-notes.yaml",
    ]
    proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    notes = yaml.safe_load(proc.stdout)["data"]["notes"]
    assert "remora enable-namespace my-agents --capabilities build,migrate,test" in notes
    assert (
        f"remora certs status --namespace {NAMESPACE} --secret remora-certs --webhook-config remora" in notes
    )
    assert "docs/gitops.md" in notes and "helm test remora" in notes
    assert "kubectl delete crd -l app.kubernetes.io/part-of=remora" in notes
