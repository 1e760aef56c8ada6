"""Keys on disk are 0600 from the first byte, and no secret comes back out of the admission server.

- `certs.issue.write_pem_files` (the only writer of tls.key, used by bootstrap and rotation)
  creates keys 0600 under any umask, also when it replaces a looser file, and leaves no
  temporary files. No other code under certs/ or webhook/ writes files.
- `webhook.tls` hands the key to OpenSSL through a private 0600 copy that is gone afterwards.
- Whatever an AdmissionReview carries (env values, user names, garbage), the admission
  server's answers and logs never repeat a secret-looking value from it. Checked with
  hypothesis over random values in valid and broken requests.
"""

from __future__ import annotations

import ast
import logging
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certs.issue import write_pem_files
from webhook import tls
from webhook.catalog import default_catalog
from webhook.mutate import Mutator
from webhook.namespaces import Namespace, StaticNamespaces
from webhook.server import create_app
from webhook.validate.handler import Validator

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "unit" / "webhook"))
from webhook_support import agent_pod, review, running_server, write_cert  # noqa: E402

KEY = b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBogus\n-----END EC PRIVATE KEY-----\n"


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("open_umask")
def test_keys_are_0600_and_certificates_0644_even_with_umask_0(tmp_path: Path) -> None:
    files = {"tls.key": KEY, "tls.crt": b"cert", "ca.crt": b"ca"}
    assert write_pem_files(tmp_path, files, private=frozenset({"tls.key"}))
    assert mode(tmp_path / "tls.key") == 0o600
    assert mode(tmp_path / "tls.crt") == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.crt", "tls.crt", "tls.key"]


@pytest.mark.usefixtures("open_umask")
def test_a_rotated_key_replaces_a_loose_file_with_a_0600_one(tmp_path: Path) -> None:
    loose = tmp_path / "tls.key"
    loose.write_bytes(b"old key")
    loose.chmod(0o666)
    write_pem_files(tmp_path, {"tls.key": KEY}, private=frozenset({"tls.key"}))
    assert mode(loose) == 0o600 and loose.read_bytes() == KEY
    # Unchanged content: nothing is rewritten (and nothing loosened).
    assert not write_pem_files(tmp_path, {"tls.key": KEY}, private=frozenset({"tls.key"}))
    assert mode(loose) == 0o600


def test_the_key_is_never_visible_with_looser_permissions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temporary file is 0600 before the first byte is written (watched at each write)."""
    seen: list[int] = []
    real_fdopen = os.fdopen

    def spying_fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", spying_fdopen)
    old = os.umask(0)
    try:
        write_pem_files(tmp_path, {"tls.key": KEY}, private=frozenset({"tls.key"}))
    finally:
        os.umask(old)
    assert seen == [0o600]


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_pem_files(tmp_path, {"tls.key": KEY}, private=frozenset({"tls.key"}))
    assert list(tmp_path.iterdir()) == []


def test_the_server_loads_its_key_from_a_private_copy_that_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = write_cert(tmp_path, "remora-webhook")
    copies: list[tuple[str, int, int]] = []
    real = tls.ssl.SSLContext.load_cert_chain

    def spy(self: Any, certfile: str, keyfile: str | None = None, password: Any = None) -> None:
        assert keyfile is not None
        folder = os.path.dirname(keyfile)
        copies.append((keyfile, mode(Path(keyfile)), mode(Path(folder))))
        real(self, certfile, keyfile, password)

    monkeypatch.setattr(tls.ssl.SSLContext, "load_cert_chain", spy)
    reloader = tls.CertReloader(str(cert), str(key))
    assert reloader.context is not None
    (path, key_mode, folder_mode) = copies[0]
    assert key_mode == 0o600 and folder_mode == 0o700
    assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))


def test_no_other_code_in_certs_or_webhook_writes_files() -> None:
    """Every file write there happens in write_pem_files or the TLS loader's private copy."""
    writers: set[tuple[str, str]] = set()
    for package in ("certs", "webhook"):
        for source in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(source.read_text())
            for function in ast.walk(tree):
                if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(function):
                    if isinstance(node, ast.Call) and _writes(node):
                        writers.add((str(source.relative_to(ROOT)), function.name))
    assert writers == {("certs/issue.py", "write_pem_files"), ("webhook/tls.py", "_load_pair")}


def _writes(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name in {"write_bytes", "write_text", "mkstemp", "NamedTemporaryFile"}:
        return True
    return name == "open" and _opens_for_writing(call)


def _opens_for_writing(call: ast.Call) -> bool:
    for arg in [*call.args[1:2], *[k.value for k in call.keywords if k.arg == "mode"]]:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and set(arg.value) & set("wax+"):
            return True
    return any(
        isinstance(a, ast.Attribute) and a.attr in {"O_WRONLY", "O_RDWR", "O_CREAT"} for a in ast.walk(call)
    )


# -- the admission server does not echo secrets ---------------------------------------------

NAMESPACES = StaticNamespaces.of(
    Namespace(
        "team-a",
        {"remora.dev/injection": "enabled", "remora.dev/enforce": "hardened"},
        {"remora.dev/allowed-capabilities": "build,test"},
    )
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The real server (uvicorn over TLS, in a thread) with the real handlers."""
    cert, key = write_cert(tmp_path_factory.mktemp("tls"), "remora-webhook")
    app = create_app(Mutator(default_catalog, NAMESPACES), Validator(NAMESPACES), namespaces=NAMESPACES)
    reloader = tls.CertReloader(str(cert), str(key))
    with (
        running_server(app, reloader) as (url, _),
        httpx.Client(base_url=url, verify=False, timeout=10) as http,
    ):
        yield http


# Values shaped like secrets: long, random, from the alphabets tokens and keys use.
secret_values = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=24, max_size=64
).map(lambda s: "s3cr3t-" + s)


def pod_with_secret(value: str, privileged: bool) -> dict[str, Any]:
    pod = agent_pod("build,migrate" if privileged else "build")
    container = pod["spec"]["containers"][0]
    container["env"] = [{"name": "PASSWORD", "value": value}]
    container["args"] = [f"--token={value}"]
    pod["metadata"]["annotations"]["note"] = value
    if privileged:
        container["securityContext"] = {"privileged": True}
    return pod


def bad_payloads(value: str) -> list[bytes]:
    """Reviews carrying `value` where users put things: the pod (env, args, annotations), the user
    name, or in place of the request or the pod spec, or after broken JSON. (Envelope fields the
    apiserver itself writes, uid, apiVersion and operation, are echoed or named in a 400 by design.)"""
    good = review(pod_with_secret(value, privileged=True), userInfo={"username": value})
    return [
        orjson.dumps(good),
        orjson.dumps({**good, "request": value}),
        orjson.dumps({**good, "request": {**good["request"], "object": {"spec": value}}}),
        f"not json {value}".encode(),
        b'{"a": ' * 200 + value.encode(),
    ]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=secret_values)
def test_answers_and_logs_never_repeat_a_secret(
    client: httpx.Client, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        for payload in bad_payloads(value):
            for route in ("/mutate", "/validate"):
                answer = client.post(route, content=payload, headers={"content-type": "application/json"})
                assert answer.status_code in (200, 400, 413), (route, answer.status_code)
                assert value not in answer.text, (route, payload[:80], answer.text[:300])
        metrics = client.get("/metrics").text
    assert value not in metrics
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert value not in logged
