"""Golden files: tests/golden/inject/NAME.yaml in, NAME.injected.yaml out.

Each case runs through the offline command (`remora inject`) and through the webhook's HTTP
path (every Pod and pod template, as a Pod review), then again on its own output, which must
not change. A missing or stale golden file fails; REMORA_UPDATE_GOLDEN=1 rewrites them.
A first line `# remora-inject-args: ...` gives the case's command-line options.
"""

from __future__ import annotations

import base64
import os
import shlex
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import orjson
import pytest
from starlette.applications import Starlette
from webhook_support import review, running_server, write_cert

from remora.cli import main
from webhook.catalog import default_catalog
from webhook.mutate import Mutator
from webhook.mutate.offline import iter_pods, offline_namespace, read_documents
from webhook.namespaces import StaticNamespaces
from webhook.server import allow_all, create_app
from webhook.tls import CertReloader

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "inject"
UPDATE = os.environ.get("REMORA_UPDATE_GOLDEN") == "1"
ARGS_MARK = "# remora-inject-args:"


def cases() -> list[Path]:
    return sorted(p for p in GOLDEN.glob("*.yaml") if not p.name.endswith(".injected.yaml"))


def expected_path(case: Path) -> Path:
    return case.with_name(case.name.removesuffix(".yaml") + ".injected.yaml")


def case_args(case: Path) -> list[str]:
    first = case.read_text().splitlines()[0]
    return shlex.split(first.removeprefix(ARGS_MARK)) if first.startswith(ARGS_MARK) else []


def run_inject(path: Path, args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    code = main(["inject", "-f", str(path), *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_there_are_golden_cases_and_no_orphaned_outputs() -> None:
    assert len(cases()) >= 10
    for output in GOLDEN.glob("*.injected.yaml"):
        source = output.with_name(output.name.removesuffix(".injected.yaml") + ".yaml")
        assert source.exists(), f"{output.name} has no input {source.name}: delete it"


@pytest.mark.parametrize("case", cases(), ids=lambda p: p.stem)
def test_offline_command_matches_the_golden_file(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_inject(case, case_args(case), capsys)
    expected = expected_path(case)
    if UPDATE:
        expected.write_text(out)
    assert expected.exists(), (
        f"missing {expected.name}: run with REMORA_UPDATE_GOLDEN=1 and review the result"
    )
    assert out == expected.read_text(), (
        f"{expected.name} is stale: run with REMORA_UPDATE_GOLDEN=1 and review"
    )


@pytest.mark.parametrize("case", cases(), ids=lambda p: p.stem)
def test_offline_command_is_idempotent_on_its_output(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = expected_path(case)
    assert run_inject(expected, case_args(case), capsys) == expected.read_text()


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[list[str]], httpx.Client]]:
    """An HTTPS webhook per distinct set of case options, started when first asked for."""
    cert, key = write_cert(tmp_path_factory.mktemp("tls"), "remora-golden")
    with ExitStack() as stack:
        started: dict[str, httpx.Client] = {}

        def client(args: list[str]) -> httpx.Client:
            key_ = " ".join(args)
            if key_ not in started:
                url, _ = stack.enter_context(
                    running_server(webhook_app(args), CertReloader(str(cert), str(key)))
                )
                started[key_] = stack.enter_context(httpx.Client(base_url=url, verify=False))
            return started[key_]

        yield client


@pytest.mark.parametrize("case", cases(), ids=lambda p: p.stem)
def test_webhook_path_matches_the_golden_file(
    case: Path, clients: Callable[[list[str]], httpx.Client]
) -> None:
    client = clients(case_args(case))
    inputs = list(iter_pods(read_documents(case.read_bytes(), case.name)))
    outputs = list(iter_pods(read_documents(expected_path(case).read_bytes(), case.name)))
    assert len(inputs) == len(outputs)
    for before, after in zip(inputs, outputs, strict=True):
        mutated = through_webhook(client, before)
        assert mutated == pod_of(after)
        assert through_webhook(client, after) == pod_of(after)  # reinvocation: no change


def webhook_app(args: list[str]) -> Starlette:
    allowed = args[args.index("--namespace-allowed") + 1] if "--namespace-allowed" in args else None
    namespace = offline_namespace(allowed, "team-a")
    namespaces = StaticNamespaces.of(namespace) if namespace else StaticNamespaces()
    mutator = Mutator(default_catalog, namespaces, native="--plain-containers" not in args)
    return create_app(mutator, allow_all, namespaces=namespaces)


def pod_of(template: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": template.get("metadata") or {},
        "spec": template["spec"],
    }


def through_webhook(client: httpx.Client, template: dict[str, Any]) -> dict[str, Any]:
    pod = pod_of(template)
    reply = client.post(
        "/mutate", content=orjson.dumps(review(pod)), headers={"content-type": "application/json"}
    )
    assert reply.status_code == 200, reply.text
    response = reply.json()["response"]
    assert response["allowed"] is True, response
    if "patch" not in response:
        return pod
    assert response["patchType"] == "JSONPatch"
    ops = orjson.loads(base64.b64decode(response["patch"]))
    return jsonpatch.apply_patch(pod, ops)  # type: ignore[no-any-return]
