"""Issue a CA and a serving certificate (ECDSA P-256) and move them in and out of PEM.

The serving certificate names the webhook Service the way the apiserver dials it
(`<svc>.<ns>.svc`) plus the shorter and longer forms, and any extra names or IPs a
caller adds (127.0.0.1 for a local cluster that calls the webhook by URL).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.x509usage import key_usage

# A PEM file we read is one certificate chain or one key: far below this.
MAX_PEM_BYTES: Final = 64 * 1024
# Certificates are back-dated a little so a peer whose clock runs slow still accepts them
# (a tenth of the lifetime at most, so short test lifetimes stay meaningful).
CLOCK_SKEW: Final = dt.timedelta(minutes=5)
DNS_LABEL_MAX: Final = 63


class CertError(ValueError):
    """A certificate or key is unusable; the message names the problem in one line."""


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def service_dns_names(service: str, namespace: str) -> list[str]:
    """The four names a Service answers to inside the cluster, shortest first."""
    for what, value in (("service", service), ("namespace", namespace)):
        if not _is_dns_label(value):
            raise CertError(f"{what} {value!r} is not a DNS label (lowercase letters, digits, '-', max 63)")
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def split_sans(extra: list[str]) -> tuple[list[str], list[str]]:
    """Split extra subject alternative names into (DNS names, IP addresses), checking each."""
    names: list[str] = []
    ips: list[str] = []
    for raw in extra:
        value = raw.strip()
        try:
            ips.append(str(ipaddress.ip_address(value)))
            continue
        except ValueError:
            pass
        if not _is_dns_name(value):
            raise CertError(f"extra SAN {raw!r} is neither an IP address nor a DNS name")
        names.append(value.lower())
    return names, ips


def new_ca(common_name: str, lifetime: dt.timedelta, now: dt.datetime | None = None) -> KeyPair:
    """A self-signed CA that may sign end-entity certificates only (path length 0)."""
    now = now or utcnow()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(now - _backdate(lifetime))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            key_usage(ca=True),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert, key)


def new_serving(
    ca: KeyPair,
    dns_names: list[str],
    ip_addresses: list[str] | None = None,
    lifetime: dt.timedelta = dt.timedelta(hours=24),
    now: dt.datetime | None = None,
) -> KeyPair:
    """A TLS server certificate for `dns_names` and `ip_addresses`, signed by `ca`.

    It never outlives its CA: a certificate valid past its issuer would fail verification
    the moment the CA expires, so its lifetime is cut to the CA's.
    """
    if not dns_names and not ip_addresses:
        raise CertError("a serving certificate needs at least one DNS name or IP address")
    now = now or utcnow()
    not_after = min(now + lifetime, ca.cert.not_valid_after_utc)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses or []]
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    subject = dns_names[0] if dns_names else (ip_addresses or ["remora"])[0]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject[:64])]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(now - _backdate(lifetime))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            key_usage(ca=False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return KeyPair(cert, key)


def load_cert(pem: bytes) -> x509.Certificate:
    """The first certificate in `pem`; CertError when there is none or it is malformed."""
    if len(pem) > MAX_PEM_BYTES:
        raise CertError(f"certificate PEM is {len(pem)} bytes, over the limit of {MAX_PEM_BYTES}")
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise CertError(f"malformed certificate PEM: {_first_line(exc)}") from None


def load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """An unencrypted ECDSA private key from PEM; CertError for anything else."""
    if len(pem) > MAX_PEM_BYTES:
        raise CertError(f"key PEM is {len(pem)} bytes, over the limit of {MAX_PEM_BYTES}")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CertError(f"malformed private key PEM: {_first_line(exc)}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError(f"private key is {type(key).__name__}, expected an ECDSA key")
    return key


def load_pair(cert_pem: bytes, key_pem: bytes) -> KeyPair:
    """A KeyPair whose key is checked to belong to the certificate."""
    pair = KeyPair(load_cert(cert_pem), load_key(key_pem))
    if not key_matches(pair):
        raise CertError("private key does not belong to the certificate")
    return pair


def key_matches(pair: KeyPair) -> bool:
    public = pair.cert.public_key()
    return isinstance(public, ec.EllipticCurvePublicKey) and public.public_numbers() == (
        pair.key.public_key().public_numbers()
    )


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """True when `ca` signed `cert` (names match and the signature verifies)."""
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def sans_of(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) a certificate is valid for."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return (
        [n.lower() for n in ext.get_values_for_type(x509.DNSName)],
        [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)],
    )


def write_pem_files(directory: Path, files: dict[str, bytes], *, private: frozenset[str]) -> bool:
    """Write each file atomically (rename over the old one) when its content changed.

    Names in `private` are created 0600 from the start, so no key is ever readable by
    others, not even between create and chmod. Returns True when anything changed.
    """
    directory.mkdir(parents=True, exist_ok=True)
    changed = False
    for name, content in files.items():
        target = directory / name
        try:
            if target.read_bytes() == content:
                continue
        except OSError:
            pass
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
        try:
            os.fchmod(fd, 0o600 if name in private else 0o644)
            with os.fdopen(fd, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        changed = True
    return changed


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _backdate(lifetime: dt.timedelta) -> dt.timedelta:
    return min(CLOCK_SKEW, lifetime / 10)


def _serial() -> int:
    # 159 random bits: positive, under the 20-octet limit, unguessable.
    return secrets.randbits(159) | 1


def _is_dns_label(value: str) -> bool:
    if not value or len(value) > DNS_LABEL_MAX:
        return False
    if value[0] == "-" or value[-1] == "-":
        return False
    return all(c.isascii() and (c.islower() or c.isdigit() or c == "-") for c in value)


def _is_dns_name(value: str) -> bool:
    name = value.lower()
    if name.startswith("*."):
        name = name[2:]
    if not name or len(name) > 253:
        return False
    return all(_is_dns_label(label) for label in name.split("."))


def _first_line(exc: Exception) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
