"""The caBundle: the set of CA certificates the apiserver trusts when it calls the webhook.

A bundle is PEM text holding one or more CA certificates. During a CA rotation it holds
the old and the new CA together, so a serving certificate signed by either verifies.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from certs.issue import CertError, issued_by, utcnow

MAX_BUNDLE_BYTES: Final = 256 * 1024
MAX_BUNDLE_CERTS: Final = 16
_BEGIN: Final = b"-----BEGIN CERTIFICATE-----"


def parse(pem: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, in order; CertError names what is wrong."""
    if len(pem) > MAX_BUNDLE_BYTES:
        raise CertError(f"CA bundle is {len(pem)} bytes, over the limit of {MAX_BUNDLE_BYTES}")
    count = pem.count(_BEGIN)
    if count == 0:
        raise CertError("CA bundle holds no PEM certificate")
    if count > MAX_BUNDLE_CERTS:
        raise CertError(f"CA bundle holds {count} certificates, over the limit of {MAX_BUNDLE_CERTS}")
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise CertError(f"malformed certificate in CA bundle: {str(exc).splitlines()[0]}") from None
    for cert in certs:
        if not is_ca(cert):
            raise CertError(f"CA bundle holds {subject_cn(cert)!r}, which is not a CA certificate")
    return certs


def parse_base64(value: str) -> list[x509.Certificate]:
    """A caBundle as the webhook configurations carry it: base64 of the PEM text."""
    if len(value) > MAX_BUNDLE_BYTES * 4 // 3 + 4:
        raise CertError("caBundle is over the size limit")
    try:
        pem = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CertError("caBundle is not valid base64") from None
    return parse(pem)


def encode(certs: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def encode_base64(certs: list[x509.Certificate]) -> str:
    return base64.b64encode(encode(certs)).decode("ascii")


def fingerprint(cert: x509.Certificate) -> bytes:
    return cert.fingerprint(hashes.SHA256())


def merge(*bundles: list[x509.Certificate], now: dt.datetime | None = None) -> list[x509.Certificate]:
    """The union of the bundles: duplicates removed, expired CAs dropped, first seen first."""
    now = now or utcnow()
    seen: set[bytes] = set()
    merged: list[x509.Certificate] = []
    for bundle in bundles:
        for cert in bundle:
            fp = fingerprint(cert)
            if fp in seen or cert.not_valid_after_utc <= now:
                continue
            seen.add(fp)
            merged.append(cert)
    return merged


def without(bundle: list[x509.Certificate], drop: list[x509.Certificate]) -> list[x509.Certificate]:
    gone = {fingerprint(c) for c in drop}
    return [c for c in bundle if fingerprint(c) not in gone]


def contains(bundle: list[x509.Certificate], cert: x509.Certificate) -> bool:
    fp = fingerprint(cert)
    return any(fingerprint(c) == fp for c in bundle)


def same(a: list[x509.Certificate], b: list[x509.Certificate]) -> bool:
    """Same set of certificates, order ignored."""
    return {fingerprint(c) for c in a} == {fingerprint(c) for c in b}


def trusted_issuer(cert: x509.Certificate, bundle: list[x509.Certificate]) -> x509.Certificate | None:
    """The CA in `bundle` that signed `cert`, or None."""
    for ca in bundle:
        if issued_by(cert, ca):
            return ca
    return None


def issued_by_any(cert: x509.Certificate, bundle: list[x509.Certificate]) -> bool:
    return trusted_issuer(cert, bundle) is not None


def is_valid_at(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now < cert.not_valid_after_utc


def renewal_time(cert: x509.Certificate, fraction: float = 2 / 3) -> dt.datetime:
    """When `fraction` of the certificate's lifetime has passed: the moment to renew it."""
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    return cert.not_valid_before_utc + lifetime * fraction


def due(cert: x509.Certificate, now: dt.datetime, fraction: float = 2 / 3) -> bool:
    return now >= renewal_time(cert, fraction)


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def subject_cn(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def describe(cert: x509.Certificate) -> str:
    """One line naming a certificate for logs and status output."""
    return (
        f"{subject_cn(cert)} (sha256 {fingerprint(cert).hex()[:16]}, "
        f"valid {cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} "
        f"to {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ})"
    )
