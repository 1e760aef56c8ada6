"""`remora certs ...` and `remora enable-namespace` against the in-memory apiserver."""

import stat
from pathlib import Path

import pytest
from certs_fake_api import FakeApi, add_webhook_configs, ca_bundles

import common.kube
from remora.cli import main

NS = "remora-system"
RBAC = "/apis/rbac.authorization.k8s.io/v1"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    fake = FakeApi()
    add_webhook_configs(fake)
    fake.put_object(f"/api/v1/namespaces/{NS}/configmaps/remora-capabilities", {"metadata": {"name": "x"}})
    monkeypatch.setattr(common.kube, "load_api_client", lambda kubeconfig=None: fake)
    return fake


def test_bootstrap_then_unchanged_then_status_ok(
    api: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "certs",
        "bootstrap",
        "--namespace",
        NS,
        "--service",
        "remora-webhook",
        "--extra-san",
        "127.0.0.1",
    ]
    assert main([*args, "--cert-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "issuing a CA" in out and out.strip().endswith("changed")
    assert None not in ca_bundles(api)
    assert stat.S_IMODE((tmp_path / "tls.key").stat().st_mode) == 0o600
    assert main(args) == 0
    assert "unchanged: everything is valid" in capsys.readouterr().out
    assert main(["certs", "status", "--namespace", NS]) == 0
    assert capsys.readouterr().out.strip().endswith("ok")


def test_status_reports_a_wiped_bundle(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "bootstrap", "--namespace", NS, "--service", "remora-webhook"]) == 0
    add_webhook_configs(api)
    capsys.readouterr()
    assert main(["certs", "status", "--namespace", NS]) == 1
    out = capsys.readouterr().out
    assert "problem: MutatingWebhookConfiguration remora: webhook inject.remora.dev has no caBundle" in out


def test_bootstrap_without_configs_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(common.kube, "load_api_client", lambda kubeconfig=None: FakeApi())
    assert (
        main(["certs", "bootstrap", "--namespace", NS, "--service", "svc", "--webhook-config", "mine"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert err == "remora certs: no webhook configuration found for name mine"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--service", "Bad_Name"], "is not a DNS label"),
        (["--extra-san", "not a name"], "neither an IP address nor a DNS name"),
        ([], "give --service or at least one --extra-san"),
        (["--service", "s", "--serving-lifetime", "0s"], "lifetimes must be positive"),
        (["--service", "s", "--propagation", "soon"], "--propagation 'soon': expected a number and a unit"),
    ],
)
def test_bad_certs_arguments(extra: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "bootstrap", "--namespace", NS, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_rotate_once(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "rotate-once", "--namespace", NS, "--service", "svc"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "nothing: certificates are valid"


def _enable_fixture(api: FakeApi) -> None:
    api.put_object("/api/v1/namespaces/team-a", {"metadata": {"name": "team-a", "labels": {"keep": "me"}}})
    for cap in ("build", "test", "migrate"):
        api.put_object(
            f"{RBAC}/clusterroles/remora-capability-{cap}", {"metadata": {"name": f"remora-capability-{cap}"}}
        )


def test_enable_namespace_is_idempotent(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    _enable_fixture(api)
    # the fake PATCH is a JSON patch; give it merge-patch semantics for this object
    args = ["enable-namespace", "team-a", "--capabilities", "build, test", "--service-account", "agent"]
    real_request = api.request

    def merge_aware(method: str, url: str, body: bytes | None = None, **kw: object) -> object:
        if method == "PATCH" and kw.get("headers", {}).get("Content-Type") == "application/merge-patch+json":  # type: ignore[union-attr]
            import json

            path = url.split("fake", 1)[1]
            obj = api.objects[path]
            patch = json.loads(body or b"{}")
            for key in ("labels", "annotations"):
                obj["metadata"].setdefault(key, {}).update(patch["metadata"].get(key, {}))
            return real_request("PUT", url, json.dumps(obj).encode())
        return real_request(method, url, body, **kw)

    api.request = merge_aware  # type: ignore[method-assign]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "labelled remora.dev/injection=enabled, capabilities build,test" in out
    assert "rolebinding/remora-build created (remora-capability-build -> agent)" in out
    ns = api.objects["/api/v1/namespaces/team-a"]["metadata"]
    assert ns["labels"] == {"keep": "me", "remora.dev/injection": "enabled"}
    assert ns["annotations"]["remora.dev/allowed-capabilities"] == "build,test"
    binding = api.objects[f"{RBAC}/namespaces/team-a/rolebindings/remora-test"]
    assert binding["roleRef"]["name"] == "remora-capability-test"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "agent", "namespace": "team-a"}]
    assert main(args) == 0
    assert "nothing changed" in capsys.readouterr().out
    # A different account updates the bindings in place.
    assert main([*args[:-1], "builder"]) == 0
    assert "rolebinding/remora-build updated (subject builder)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["team-a", "--capabilities", ""], "--capabilities is empty"),
        (["team-a", "--capabilities", "deploy"], "unknown capability 'deploy'"),
        (["Team", "--capabilities", "build"], "is not a valid name"),
        (["team-a", "--capabilities", "build", "--service-account", "a b"], "service account 'a b'"),
        (["missing", "--capabilities", "build"], "namespace missing does not exist"),
    ],
)
def test_enable_namespace_errors(
    api: FakeApi, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _enable_fixture(api)
    assert main(["enable-namespace", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_enable_namespace_without_chart(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.put_object("/api/v1/namespaces/team-a", {"metadata": {"name": "team-a"}})
    assert main(["enable-namespace", "team-a", "--capabilities", "build"]) == 2
    assert (
        "ClusterRole remora-capability-build does not exist; is the Remora chart installed?"
        in capsys.readouterr().err
    )


def test_bootstrap_refuses_to_create_an_orphan(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    del api.objects[f"/api/v1/namespaces/{NS}/configmaps/remora-capabilities"]
    assert main(["certs", "bootstrap", "--namespace", NS, "--service", "svc"]) == 2
    err = capsys.readouterr().err
    assert "ConfigMap remora-system/remora-capabilities does not exist; not creating objects" in err
    assert main(["certs", "bootstrap", "--namespace", NS, "--service", "svc", "--owner-configmap", ""]) == 0
    secret = api.get_object(f"/api/v1/namespaces/{NS}/secrets/remora-webhook-certs")
    assert secret is not None and "ownerReferences" not in secret["metadata"]


def test_rotation_inside_another_command(api: FakeApi, tmp_path: Path) -> None:
    """What `remora serve --rotate-certs` would do: the flags, then a rotation thread."""
    import argparse
    import threading

    from remora.commands.certs import add_rotation_arguments, start_rotation

    parser = argparse.ArgumentParser()
    parser.add_argument("--kubeconfig")
    add_rotation_arguments(parser)
    args = parser.parse_args(
        ["--rotate-certs", "--namespace", NS, "--service", "remora-webhook", "--poll", "1s"]
    )
    stop = threading.Event()
    try:
        rotator = start_rotation(api, args, tmp_path, stop)
        assert (tmp_path / "tls.crt").exists() and (tmp_path / "tls.key").exists()
        assert rotator.config.names.dns_names[0] == "remora-webhook"
        assert None not in ca_bundles(api)
    finally:
        stop.set()
