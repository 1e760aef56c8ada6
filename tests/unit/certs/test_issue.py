import contextlib
import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from certs import issue
from certs.issue import CertError

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def ca() -> issue.KeyPair:
    return issue.new_ca("test-ca", dt.timedelta(days=30), NOW)


def test_service_dns_names_are_the_four_forms() -> None:
    assert issue.service_dns_names("remora-webhook", "remora-system") == [
        "remora-webhook",
        "remora-webhook.remora-system",
        "remora-webhook.remora-system.svc",
        "remora-webhook.remora-system.svc.cluster.local",
    ]


@pytest.mark.parametrize(
    ("svc", "ns"), [("", "ns"), ("Web", "ns"), ("svc", "a.b"), ("-x", "ns"), ("x" * 64, "ns")]
)
def test_service_dns_names_reject_non_labels(svc: str, ns: str) -> None:
    with pytest.raises(CertError, match="is not a DNS label"):
        issue.service_dns_names(svc, ns)


def test_split_sans() -> None:
    assert issue.split_sans(["127.0.0.1", "::1", "Webhook.Example.com"]) == (
        ["webhook.example.com"],
        ["127.0.0.1", "::1"],
    )
    with pytest.raises(CertError, match="neither an IP address nor a DNS name"):
        issue.split_sans(["bad name"])


def test_ca_is_p256_and_may_only_sign_leaves(ca: issue.KeyPair) -> None:
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey) and ca.key.curve.name == "secp256r1"
    bc = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = ca.cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign
    assert ca.cert.not_valid_after_utc == NOW + dt.timedelta(days=30)
    assert ca.cert.not_valid_before_utc == NOW - issue.CLOCK_SKEW


def test_serving_names_usage_and_issuer(ca: issue.KeyPair) -> None:
    names = issue.service_dns_names("svc", "ns")
    leaf = issue.new_serving(ca, names, ["127.0.0.1"], dt.timedelta(hours=24), NOW)
    assert issue.sans_of(leaf.cert) == (names, ["127.0.0.1"])
    assert issue.issued_by(leaf.cert, ca.cert)
    assert not leaf.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = leaf.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert leaf.cert.not_valid_after_utc == NOW + dt.timedelta(hours=24)


def test_serving_never_outlives_its_ca(ca: issue.KeyPair) -> None:
    leaf = issue.new_serving(ca, ["svc"], None, dt.timedelta(days=90), NOW)
    assert leaf.cert.not_valid_after_utc == ca.cert.not_valid_after_utc


def test_serving_needs_a_name(ca: issue.KeyPair) -> None:
    with pytest.raises(CertError, match="at least one"):
        issue.new_serving(ca, [], [], dt.timedelta(hours=1), NOW)


def test_short_lifetimes_are_backdated_by_a_tenth() -> None:
    short = issue.new_ca("short", dt.timedelta(seconds=100), NOW)
    assert short.cert.not_valid_before_utc == NOW - dt.timedelta(seconds=10)


def test_pem_round_trip_and_key_mismatch(ca: issue.KeyPair) -> None:
    leaf = issue.new_serving(ca, ["svc"], None, dt.timedelta(hours=1), NOW)
    again = issue.load_pair(leaf.cert_pem, leaf.key_pem)
    assert again.cert == leaf.cert
    with pytest.raises(CertError, match="does not belong"):
        issue.load_pair(leaf.cert_pem, ca.key_pem)


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (b"", "malformed certificate PEM"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "malformed certificate PEM"),
        (b"x" * (issue.MAX_PEM_BYTES + 1), "over the limit"),
    ],
)
def test_bad_certificate_pem(pem: bytes, message: str) -> None:
    with pytest.raises(CertError, match=message):
        issue.load_cert(pem)


def test_bad_key_pem_and_wrong_key_type() -> None:
    with pytest.raises(CertError, match="malformed private key"):
        issue.load_key(b"nope")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    other = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(CertError, match="expected an ECDSA key"):
        issue.load_key(other)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_escape_as_other_errors(data: bytes) -> None:
    for loader in (issue.load_cert, issue.load_key):
        with contextlib.suppress(CertError):
            loader(data)


def test_write_pem_files_modes_and_change_detection(tmp_path: Path, ca: issue.KeyPair) -> None:
    files = {"tls.key": ca.key_pem, "tls.crt": ca.cert_pem}
    assert issue.write_pem_files(tmp_path, files, private=frozenset({"tls.key"}))
    assert stat.S_IMODE((tmp_path / "tls.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tls.crt").stat().st_mode) == 0o644
    assert not issue.write_pem_files(tmp_path, files, private=frozenset({"tls.key"}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tls.crt", "tls.key"]
