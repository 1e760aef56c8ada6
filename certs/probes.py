"""Health endpoints for `remora certs run` when it runs beside the webhook server.

/healthz  200 once cert_dir holds a serving certificate with its matching key
          (the startup probe: the webhook container starts after it passes)
/readyz   200 while the certificate the webhook server presents is trusted by every
          webhook's caBundle; 503 naming each disagreement otherwise
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from certs.issue import CertError, load_pair
from certs.readiness import Report


def files_problem(cert_dir: Path, cert_file: str = "tls.crt", key_file: str = "tls.key") -> str | None:
    """Why cert_dir cannot serve TLS yet, or None when it can."""
    try:
        load_pair((cert_dir / cert_file).read_bytes(), (cert_dir / key_file).read_bytes())
    except FileNotFoundError as exc:
        return f"{exc.filename} does not exist yet"
    except OSError as exc:
        return f"cannot read {exc.filename}: {exc.strerror}"
    except CertError as exc:
        return str(exc)
    return None


def serve(
    host: str, port: int, cert_dir: Path, ready: Callable[[], Report] | None, stop: threading.Event
) -> ThreadingHTTPServer:
    """Start the probe server in a daemon thread; it shuts down when `stop` is set."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                problem = files_problem(cert_dir)
                self._answer(problem is None, problem or "ok")
            elif self.path == "/readyz":
                problem = files_problem(cert_dir)
                if problem is None and ready is not None:
                    report = ready()
                    problem = None if report.ok else report.summary()
                self._answer(problem is None, problem or "ok")
            else:
                self._answer(False, "not found", status=404)

        def _answer(self, ok: bool, text: str, status: int | None = None) -> None:
            body = (text[:2000] + "\n").encode()
            self.send_response(status or (200 if ok else 503))
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="remora-certs-probes", daemon=True).start()

    def shutdown_on_stop() -> None:
        stop.wait()
        server.shutdown()

    threading.Thread(target=shutdown_on_stop, daemon=True).start()
    return server
