"""X.509 pieces that both Remora's certificates and the local control plane's need."""

from __future__ import annotations

from cryptography import x509


def key_usage(*, ca: bool) -> x509.KeyUsage:
    """ECDSA keys sign: a CA signs certificates and CRLs, a leaf signs its TLS handshakes."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
