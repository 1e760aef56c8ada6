"""The serving TLS context: TLS 1.2 or newer, and certificates that change without a restart.

One SSLContext serves every connection. When the certificate or key file changes, the
new pair is first loaded into a scratch context (so a half-written or mismatched pair is
refused and the old one stays in force), then into the live context: handshakes from then
on present the new certificate, connections already open keep theirs. Both loads run on
the event loop thread, the one that performs handshakes, so no handshake sees a cert
without its key.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import ssl
import tempfile
from collections.abc import Callable
from typing import Final

log = logging.getLogger(__name__)

POLL_SECONDS: Final = 2.0


class TLSConfigError(ValueError):
    """The certificate and key cannot be served; the message says which file and why."""


def new_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_alpn_protocols(["http/1.1"])
    return context


class CertReloader:
    """Owns the live SSLContext for `cert_path`/`key_path` and reloads it when they change."""

    def __init__(
        self, cert_path: str, key_path: str, on_reload: Callable[[bool], None] | None = None
    ) -> None:
        self.cert_path = cert_path
        self.key_path = key_path
        self.context = new_context()
        self.on_reload = on_reload
        self.fingerprint = ""
        self._signature: tuple[object, ...] | None = None
        self.last_error: str | None = None
        if not self.check():
            raise TLSConfigError(self.last_error or "cannot load the serving certificate")

    def check(self) -> bool:
        """Load the files if they changed; True if the live context holds a pair read from them."""
        signature = self._stat()
        if signature is not None and signature == self._signature:
            return True
        try:
            cert, key = self._read(self.cert_path, "certificate"), self._read(self.key_path, "key")
        except TLSConfigError as exc:
            return self._refuse(str(exc))
        fingerprint = hashlib.sha256(cert + b"\0" + key).hexdigest()
        if fingerprint == self.fingerprint:
            self._signature = signature
            return True
        try:
            _load_pair(new_context(), cert, key)  # refuse a bad pair before touching the live context
            _load_pair(self.context, cert, key)
        except (ssl.SSLError, OSError) as exc:
            return self._refuse(
                f"{self.cert_path} / {self.key_path}: not a usable certificate and key: {exc}"
            )
        first = not self.fingerprint
        self.fingerprint, self._signature, self.last_error = fingerprint, signature, None
        if not first:
            log.info("serving certificate reloaded from %s", self.cert_path)
            self._report(ok=True)
        return True

    async def watch(self, interval: float = POLL_SECONDS) -> None:
        """Check for new files every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.check()
            except Exception:  # a reload bug must not end the watch or the server
                log.exception("certificate reload failed; keeping the certificate in force")

    def _refuse(self, message: str) -> bool:
        if message != self.last_error:
            log.error("%s; keeping the certificate in force", message)
        self.last_error = message
        if self.fingerprint:
            self._report(ok=False)
        return False

    def _report(self, *, ok: bool) -> None:
        if self.on_reload is not None:
            self.on_reload(ok)

    def _stat(self) -> tuple[object, ...] | None:
        try:
            cert, key = os.stat(self.cert_path), os.stat(self.key_path)
        except OSError:
            return None
        return (cert.st_mtime_ns, cert.st_size, cert.st_ino, key.st_mtime_ns, key.st_size, key.st_ino)

    @staticmethod
    def _read(path: str, what: str) -> bytes:
        try:
            with open(path, "rb") as handle:
                data = handle.read(1024 * 1024)
        except OSError as exc:
            raise TLSConfigError(f"cannot read the TLS {what} {path}: {exc.strerror or exc}") from None
        if not data.strip():
            raise TLSConfigError(f"the TLS {what} {path} is empty")
        return data


def _load_pair(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """load_cert_chain reads files: give it a private copy of exactly the bytes we checked."""
    with tempfile.TemporaryDirectory(prefix="remora-tls-") as folder:
        cert_file, key_file = os.path.join(folder, "tls.crt"), os.path.join(folder, "tls.key")
        for path, data in ((cert_file, cert), (key_file, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        context.load_cert_chain(cert_file, key_file)
