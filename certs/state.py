"""The certificate state Remora keeps: what the Secret holds, decoded and checked.

Secret keys:
  ca.crt / ca.key          the CA that signs the serving certificate now
  tls.crt / tls.key        the serving certificate the webhook presents
  next-ca.crt / next-ca.key  a CA being rolled in (present only during a CA rotation)
  ca-bundle.crt            the CAs the webhooks' caBundle must hold (old + new during a rotation)
Annotations record when the bundle and the serving certificate last changed, so every
replica and every rotation step agrees on how long a change has been out.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any, Final

from cryptography import x509

from certs import bundle
from certs.issue import CertError, KeyPair, load_pair

CA_CERT: Final = "ca.crt"
CA_KEY: Final = "ca.key"
TLS_CERT: Final = "tls.crt"
TLS_KEY: Final = "tls.key"
NEXT_CA_CERT: Final = "next-ca.crt"
NEXT_CA_KEY: Final = "next-ca.key"
CA_BUNDLE: Final = "ca-bundle.crt"
BUNDLE_CHANGED_AT: Final = "certs.remora.dev/ca-bundle-changed-at"
SERVING_CHANGED_AT: Final = "certs.remora.dev/serving-changed-at"


@dataclass(frozen=True)
class CertState:
    """Decoded Secret contents. A part that is absent or unusable is None and named in `problems`."""

    ca: KeyPair | None = None
    serving: KeyPair | None = None
    next_ca: KeyPair | None = None
    bundle: list[x509.Certificate] = field(default_factory=list)
    bundle_changed_at: dt.datetime | None = None
    serving_changed_at: dt.datetime | None = None
    resource_version: str | None = None
    problems: tuple[str, ...] = ()

    def evolve(self, **changes: Any) -> CertState:
        return replace(self, **changes)


def from_secret(secret: dict[str, Any] | None) -> CertState:
    """Decode a Secret (or its absence) into a CertState; never raises on bad content."""
    if secret is None:
        return CertState()
    meta = secret.get("metadata") or {}
    data = secret.get("data") or {}
    annotations = meta.get("annotations") or {}
    problems: list[str] = []
    raw = {key: _b64(data, key, problems) for key in (CA_CERT, CA_KEY, TLS_CERT, TLS_KEY)}
    raw.update({key: _b64(data, key, problems) for key in (NEXT_CA_CERT, NEXT_CA_KEY, CA_BUNDLE)})
    ca = _pair(raw, CA_CERT, CA_KEY, problems, required=True)
    serving = _pair(raw, TLS_CERT, TLS_KEY, problems, required=True)
    next_ca = _pair(raw, NEXT_CA_CERT, NEXT_CA_KEY, problems, required=False)
    certs: list[x509.Certificate] = []
    if raw[CA_BUNDLE]:
        try:
            certs = bundle.parse(raw[CA_BUNDLE])
        except CertError as exc:
            problems.append(f"{CA_BUNDLE}: {exc}")
    return CertState(
        ca=ca,
        serving=serving,
        next_ca=next_ca,
        bundle=certs,
        bundle_changed_at=_time(annotations.get(BUNDLE_CHANGED_AT)),
        serving_changed_at=_time(annotations.get(SERVING_CHANGED_AT)),
        resource_version=meta.get("resourceVersion"),
        problems=tuple(problems),
    )


def secret_data(state: CertState) -> dict[str, str]:
    """The Secret's `data` for a state (base64 values), leaving out what is absent."""
    files: dict[str, bytes] = {}
    if state.ca:
        files[CA_CERT], files[CA_KEY] = state.ca.cert_pem, state.ca.key_pem
    if state.serving:
        files[TLS_CERT], files[TLS_KEY] = state.serving.cert_pem, state.serving.key_pem
    if state.next_ca:
        files[NEXT_CA_CERT], files[NEXT_CA_KEY] = state.next_ca.cert_pem, state.next_ca.key_pem
    if state.bundle:
        files[CA_BUNDLE] = bundle.encode(state.bundle)
    return {k: base64.b64encode(v).decode("ascii") for k, v in files.items()}


def secret_annotations(state: CertState) -> dict[str, str]:
    out: dict[str, str] = {}
    if state.bundle_changed_at:
        out[BUNDLE_CHANGED_AT] = format_time(state.bundle_changed_at)
    if state.serving_changed_at:
        out[SERVING_CHANGED_AT] = format_time(state.serving_changed_at)
    return out


def format_time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return None
    return parsed.replace(tzinfo=dt.UTC)


def _b64(data: dict[str, Any], key: str, problems: list[str]) -> bytes | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(f"{key}: not a string")
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        problems.append(f"{key}: not valid base64")
        return None


def _pair(
    raw: dict[str, bytes | None], cert_key: str, key_key: str, problems: list[str], *, required: bool
) -> KeyPair | None:
    cert_pem, key_pem = raw[cert_key], raw[key_key]
    if cert_pem is None and key_pem is None:
        if required:
            problems.append(f"{cert_key}: missing")
        return None
    if cert_pem is None or key_pem is None:
        problems.append(f"{cert_key if cert_pem is None else key_key}: missing")
        return None
    try:
        return load_pair(cert_pem, key_pem)
    except CertError as exc:
        problems.append(f"{cert_key}: {exc}")
        return None
