"""Does the apiserver trust what this server presents? Connect, look, compare.

The certificate a replica serves and the caBundle the apiserver verifies it with are
written by different steps (and, with several replicas, by different processes); this
check catches them disagreeing, so a replica that would fail every admission call is
reported unready instead.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from certs import bundle, webhooks
from certs.issue import CertError, sans_of, utcnow


@dataclass(frozen=True)
class Report:
    ok: bool
    problems: tuple[str, ...]
    presented: str | None = None

    def summary(self) -> str:
        if self.ok:
            return f"ok: serving {self.presented}, trusted by every webhook"
        return "; ".join(self.problems)


def presented_certificate(
    host: str, port: int, server_name: str | None = None, timeout: float = 3.0
) -> x509.Certificate:
    """The leaf certificate a TLS server presents (not verified: we look at it, not trust it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, port), timeout=timeout) as sock,
        context.wrap_socket(sock, server_hostname=server_name or host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise CertError(f"{host}:{port} presented no certificate")
    return x509.load_der_x509_certificate(der)


def compare(
    presented: x509.Certificate,
    bundles: dict[str, list[x509.Certificate] | str],
    server_name: str | None,
    now: dt.datetime,
) -> Report:
    """Problems with `presented` as each webhook's caBundle sees it; ok when there are none."""
    problems: list[str] = []
    if not bundle.is_valid_at(presented, now):
        problems.append(f"served certificate is not valid now: {bundle.describe(presented)}")
    if server_name:
        dns, ips = sans_of(presented)
        if server_name.lower() not in dns and server_name not in ips:
            problems.append(
                f"served certificate is not valid for {server_name} (it names {', '.join(dns + ips)})"
            )
    if not bundles:
        problems.append("no webhook configuration to compare with")
    for hook, trusted in sorted(bundles.items()):
        if isinstance(trusted, str):
            problems.append(f"{hook}: {trusted}")
            continue
        issuer = bundle.trusted_issuer(presented, trusted)
        if issuer is None:
            names = ", ".join(bundle.subject_cn(c) for c in trusted)
            problems.append(f"{hook}: caBundle ({names}) does not trust the served certificate")
        elif not bundle.is_valid_at(issuer, now):
            problems.append(f"{hook}: the CA that signed the served certificate has expired")
    return Report(not problems, tuple(problems), bundle.describe(presented))


def check(
    api: Any,
    target: webhooks.Target,
    host: str,
    port: int,
    *,
    server_name: str | None = None,
    now: dt.datetime | None = None,
) -> Report:
    """Connect to host:port and compare what it serves with the live caBundles."""
    try:
        presented = presented_certificate(host, port, server_name)
    except (OSError, CertError, ValueError) as exc:
        return Report(False, (f"cannot read the served certificate from {host}:{port}: {exc}",))
    try:
        configs = webhooks.find(api, target)
    except webhooks.WebhookError as exc:
        return Report(False, (str(exc),), bundle.describe(presented))
    return compare(presented, webhooks.live_bundles(configs), server_name, now or utcnow())


class CachedCheck:
    """A readiness check cheap enough for a probe: the answer is reused for `ttl` seconds."""

    def __init__(self, run: Callable[[], Report], ttl: float = 10.0) -> None:
        self._run = run
        self._ttl = ttl
        self._lock = threading.Lock()
        self._at = -float("inf")
        self._report: Report | None = None

    def __call__(self) -> Report:
        with self._lock:
            if self._report is None or time.monotonic() - self._at >= self._ttl:
                try:
                    self._report = self._run()
                except Exception as exc:
                    self._report = Report(False, (f"readiness check failed: {type(exc).__name__}: {exc}",))
                self._at = time.monotonic()
            return self._report
