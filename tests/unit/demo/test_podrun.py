"""The demo's kubelet for the agent pod: downward API, env, volumes, paths, on the injected example pod."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from agent.podinfo import go_unquote, parse_annotations
from common.kube import ApiError
from remora.demo import podrun
from remora.demo.errors import DemoError
from remora.demo.local import remora_executable, resolve_remora
from remora.demo.podrun import PodRunner, expand, field_value, go_quote, map_file, rewrite_paths
from remora.demo.stack import _point_at_broker
from webhook.catalog.catalog import default_catalog
from webhook.mutate.offline import inject_documents

ROOT = Path(__file__).resolve().parents[3]
Obj = dict[str, Any]


@given(st.text())
def test_go_quote_is_what_the_agent_unquotes(value: str) -> None:
    assert go_unquote(go_quote(value)) == value


def test_go_quote_matches_go_on_known_values() -> None:
    assert go_quote('a "b" \\ c') == '"a \\"b\\" \\\\ c"'
    assert go_quote("tab\there\nnl") == '"tab\\there\\nnl"'
    assert go_quote("\x01\x7f") == '"\\x01\\x7f"'
    assert go_quote("café ☕") == '"café ☕"'
    assert go_quote("\u200b") == '"\\u200b"'


ANNOTATION_KEY = st.from_regex(r"\A([a-z0-9.-]{1,20}/)?[A-Za-z0-9][-A-Za-z0-9_.]{0,20}\Z")


@given(st.dictionaries(ANNOTATION_KEY, st.text()))
def test_annotations_file_round_trips_through_the_agents_parser(annotations: dict[str, str]) -> None:
    assert parse_annotations(map_file(annotations)) == annotations


POD: Obj = {
    "metadata": {
        "name": "agent-1",
        "namespace": "ns",
        "uid": "u-1",
        "labels": {"app": "a"},
        "annotations": {"remora.dev/capabilities": "build"},
    },
    "spec": {"serviceAccountName": "sa"},
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("metadata.name", "agent-1"),
        ("metadata.namespace", "ns"),
        ("metadata.uid", "u-1"),
        ("metadata.labels['app']", "a"),
        ("metadata.annotations['remora.dev/capabilities']", "build"),
        ("metadata.annotations['missing']", ""),
        ("spec.serviceAccountName", "sa"),
        ("status.podIP", "127.0.0.1"),
        ("metadata.labels", 'app="a"\n'),
    ],
)
def test_downward_api_fields(path: str, value: str) -> None:
    assert field_value(POD, path) == value


@pytest.mark.parametrize("path", ["metadata.generation", "spec.containers", "metadata.labels[app]", ""])
def test_unsupported_downward_api_fields_are_named(path: str) -> None:
    with pytest.raises(DemoError, match="not supported"):
        field_value(POD, path)


def test_var_expansion_like_kubernetes() -> None:
    env = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)", env) == "1-two"
    assert expand("$(MISSING)", env) == "$(MISSING)"
    assert expand("$$(A) costs $$5", env) == "$(A) costs $5"


def test_paths_under_mounts_are_rewritten_in_flags_and_plain_args() -> None:
    mounts = {"/etc/podinfo": Path("/s/podinfo"), "/etc/podinfo/x": Path("/s/x"), "/tmp": Path("/s/tmp")}
    assert rewrite_paths("--capabilities-file=/etc/podinfo/annotations", mounts) == (
        "--capabilities-file=/s/podinfo/annotations"
    )
    assert rewrite_paths("/etc/podinfo/x/y", mounts) == "/s/x/y"  # the longest mount wins
    assert rewrite_paths("/tmp", mounts) == "/s/tmp"
    assert rewrite_paths("/tmpfoo", mounts) == "/tmpfoo"
    assert rewrite_paths("--broker=http://host/etc/podinfo", mounts) == "--broker=http://host/etc/podinfo"
    assert rewrite_paths("a=b", mounts) == "a=b"


def test_only_remoras_own_command_can_run() -> None:
    assert resolve_remora("c", ["remora", "agent", "-x"]) == [*remora_executable(), "agent", "-x"]
    with pytest.raises(DemoError, match="only run Remora's own image"):
        resolve_remora("c", ["sh", "-c", "true"])


# ---------------------------------------------------------------------- the example pod, injected


class FakeApi:
    """The objects the kubelet reads, by API path; POSTs answer a TokenRequest."""

    def __init__(self, objects: dict[str, Obj]) -> None:
        self.objects = objects

    def request(self, _api: Any, method: str, path: str, body: Any = None, **_: Any) -> Obj:
        if method == "POST" and path.endswith("/token"):
            assert body["spec"]["boundObjectRef"]["uid"] == "uid-1"
            return {"status": {"token": "sa-token"}}
        if path in self.objects:
            return self.objects[path]
        raise ApiError(404, "NotFound", f"{path} not found")


def injected_example_pod() -> Obj:
    docs = [d for d in yaml.safe_load_all((ROOT / "examples" / "agent-deployment.yaml").read_text()) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    _point_at_broker(deployment, "http://127.0.0.1:9999")
    outcome = inject_documents([deployment], default_catalog(), allowed="build,test,migrate")
    assert outcome.injected == 1, outcome
    template = outcome.documents[0]["spec"]["template"]
    return {
        "metadata": {**template["metadata"], "name": "agent-abc", "namespace": "remora-demo", "uid": "uid-1"},
        "spec": template["spec"],
    }


def test_the_injected_example_pod_becomes_local_processes(tmp_path: Path, monkeypatch: Any) -> None:
    secret = {"data": {"token": base64.b64encode(b"broker-secret").decode()}}
    api = FakeApi({"/api/v1/namespaces/remora-demo/secrets/remora-broker-token": secret})
    monkeypatch.setattr(podrun, "request", api.request)
    pod = injected_example_pod()
    runner = PodRunner(
        object(), pod, pod_dir=tmp_path, server="https://127.0.0.1:6443", ca_pem=b"CA",
        resolve_command=resolve_remora, base_env={"PATH": "/bin"},
    )  # fmt: skip
    runs = runner.prepare()

    assert [(r.name, r.sidecar) for r in runs] == [
        ("remora-build", True), ("remora-test", True), ("remora-migrate", True), ("agent", False),
    ]  # fmt: skip
    agent = runs[-1]
    assert agent.env["POD_NAME"] == "agent-abc" and agent.env["POD_UID"] == "uid-1"
    assert agent.env["POD_NAMESPACE"] == "remora-demo"
    kubeconfig = yaml.safe_load(Path(agent.env["KUBECONFIG"]).read_text())
    assert kubeconfig["users"][0]["user"] == {"token": "sa-token"}
    assert kubeconfig["users"][0]["name"] == "system:serviceaccount:remora-demo:remora-agent"
    args = dict(a.split("=", 1) for a in agent.argv if a.startswith("--") and "=" in a)
    assert args["--broker"] == "http://127.0.0.1:9999"
    assert Path(args["--token-file"]).read_bytes() == b"broker-secret"
    annotations = parse_annotations(Path(args["--capabilities-file"]).read_text())
    assert annotations["remora.dev/capabilities"] == "build,test,migrate"
    assert "remora.dev/status" in annotations
    build = runs[0]
    assert build.argv[-2:] == ["operator", "build"]
    assert build.env["POD_NAME"] == "agent-abc" and build.env["REMORA_CAPABILITY"] == "build"
    assert build.env["KUBECONFIG"] == agent.env["KUBECONFIG"]


def test_a_missing_secret_is_named(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(podrun, "request", FakeApi({}).request)
    runner = PodRunner(
        object(), injected_example_pod(), pod_dir=tmp_path, server="https://x", ca_pem=b"CA",
        resolve_command=resolve_remora, base_env={},
    )  # fmt: skip
    with pytest.raises(DemoError, match="cannot read secret remora-demo/remora-broker-token"):
        runner.prepare()


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        ({"name": "v", "hostPath": {"path": "/"}}, "hostPath"),
        ({"name": "v", "downwardAPI": {"items": [
            {"path": "../x", "fieldRef": {"fieldPath": "metadata.name"}}]}}, "leaves its volume"),
        ({"name": "v", "downwardAPI": {"items": [
            {"path": "cpu", "resourceFieldRef": {"resource": "limits.cpu"}}]}}, "only fieldRef"),
    ],
)  # fmt: skip
def test_volumes_the_demo_cannot_mount_are_refused_by_name(
    tmp_path: Path, monkeypatch: Any, volume: Obj, message: str
) -> None:
    monkeypatch.setattr(podrun, "request", FakeApi({}).request)
    pod = {**POD, "metadata": {**POD["metadata"], "uid": "uid-1"},
           "spec": {"volumes": [volume], "containers": [{"name": "c", "command": ["remora"]}]}}  # fmt: skip
    runner = PodRunner(object(), pod, pod_dir=tmp_path, server="https://x", ca_pem=b"CA",
                       resolve_command=resolve_remora, base_env={})  # fmt: skip
    with pytest.raises(DemoError, match=message):
        runner.prepare()


def test_kube_root_ca_falls_back_to_the_cluster_ca(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(podrun, "request", FakeApi({}).request)
    volume = {"name": "api", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    ]}}  # fmt: skip
    container = {"name": "c", "command": ["remora", "x"]}
    pod = {
        "metadata": {**POD["metadata"], "uid": "uid-1"},
        "spec": {"volumes": [volume], "containers": [container]},
    }
    runner = PodRunner(object(), pod, pod_dir=tmp_path, server="https://x", ca_pem=b"CA",
                       resolve_command=resolve_remora, base_env={})  # fmt: skip
    runner.prepare()
    assert (tmp_path / "volumes" / "api" / "ca.crt").read_bytes() == b"CA"
    assert (tmp_path / "volumes" / "api" / "token").read_bytes() == b"sa-token"
