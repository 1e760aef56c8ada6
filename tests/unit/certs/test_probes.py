import datetime as dt
import threading
import urllib.error
import urllib.request
from pathlib import Path

from certs import issue, probes
from certs.readiness import Report


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_healthz_and_readyz(tmp_path: Path) -> None:
    stop = threading.Event()
    verdict = {"report": Report(False, ("webhook X: caBundle (ca) does not trust the served certificate",))}
    server = probes.serve("127.0.0.1", 0, tmp_path, lambda: verdict["report"], stop)
    port = server.server_address[1]
    try:
        status, text = get(port, "/healthz")
        assert status == 503 and "tls.crt does not exist yet" in text
        ca = issue.new_ca("ca", dt.timedelta(days=1))
        leaf = issue.new_serving(ca, ["svc"], None, dt.timedelta(hours=1))
        (tmp_path / "tls.crt").write_bytes(leaf.cert_pem)
        (tmp_path / "tls.key").write_bytes(ca.key_pem)
        assert get(port, "/healthz") == (503, "private key does not belong to the certificate\n")
        (tmp_path / "tls.key").write_bytes(leaf.key_pem)
        assert get(port, "/healthz") == (200, "ok\n")
        status, text = get(port, "/readyz")
        assert status == 503 and "does not trust the served certificate" in text
        verdict["report"] = Report(True, ())
        assert get(port, "/readyz") == (200, "ok\n")
        assert get(port, "/other")[0] == 404
    finally:
        stop.set()
