import base64
import contextlib
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certs import bundle, issue
from certs.issue import CertError

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def cas() -> list[issue.KeyPair]:
    return [issue.new_ca(f"ca-{i}", dt.timedelta(days=10 * (i + 1)), NOW) for i in range(3)]


def test_parse_and_encode_round_trip(cas: list[issue.KeyPair]) -> None:
    certs = [c.cert for c in cas]
    assert bundle.parse(bundle.encode(certs)) == certs
    assert bundle.parse_base64(bundle.encode_base64(certs)) == certs


def test_merge_dedupes_keeps_order_and_drops_expired(cas: list[issue.KeyPair]) -> None:
    a, b, c = (k.cert for k in cas)
    assert bundle.merge([a, b], [b, c, a], now=NOW) == [a, b, c]
    # ca-0 lives 10 days: 15 days later only the longer-lived CAs remain.
    assert bundle.merge([a, b, c], now=NOW + dt.timedelta(days=15)) == [b, c]


def test_same_without_contains(cas: list[issue.KeyPair]) -> None:
    a, b, c = (k.cert for k in cas)
    assert bundle.same([a, b], [b, a])
    assert not bundle.same([a], [a, b])
    assert bundle.without([a, b, c], [b]) == [a, c]
    assert bundle.contains([a, c], c) and not bundle.contains([a], c)


def test_trusted_issuer(cas: list[issue.KeyPair]) -> None:
    leaf = issue.new_serving(cas[1], ["svc"], None, dt.timedelta(hours=1), NOW)
    assert bundle.trusted_issuer(leaf.cert, [cas[0].cert, cas[1].cert]) == cas[1].cert
    assert bundle.trusted_issuer(leaf.cert, [cas[0].cert, cas[2].cert]) is None


def test_renewal_at_two_thirds() -> None:
    ca = issue.new_ca("r", dt.timedelta(hours=30), NOW)
    lifetime = ca.cert.not_valid_after_utc - ca.cert.not_valid_before_utc
    at = bundle.renewal_time(ca.cert)
    assert at == ca.cert.not_valid_before_utc + lifetime * 2 / 3
    assert not bundle.due(ca.cert, at - dt.timedelta(seconds=1))
    assert bundle.due(ca.cert, at)


def test_leaf_in_bundle_is_rejected(cas: list[issue.KeyPair]) -> None:
    leaf = issue.new_serving(cas[0], ["svc"], None, dt.timedelta(hours=1), NOW)
    with pytest.raises(CertError, match="not a CA certificate"):
        bundle.parse(leaf.cert_pem)


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (b"", "holds no PEM certificate"),
        (b"hello", "holds no PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n", "malformed certificate"),
        (b"x" * (bundle.MAX_BUNDLE_BYTES + 1), "over the limit"),
        (b"-----BEGIN CERTIFICATE-----\n" * (bundle.MAX_BUNDLE_CERTS + 1), "over the limit of 16"),
    ],
)
def test_bad_bundles(pem: bytes, message: str) -> None:
    with pytest.raises(CertError, match=message):
        bundle.parse(pem)


def test_bad_base64() -> None:
    with pytest.raises(CertError, match="not valid base64"):
        bundle.parse_base64("not base64!")
    with pytest.raises(CertError, match="holds no PEM"):
        bundle.parse_base64(base64.b64encode(b"plain text").decode())


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=4096) | st.text(max_size=200).map(str.encode))
def test_any_input_is_a_bundle_or_a_cert_error(data: bytes) -> None:
    with contextlib.suppress(CertError):
        bundle.parse(data)
    with contextlib.suppress(CertError):
        bundle.parse_base64(data.decode("latin-1"))
