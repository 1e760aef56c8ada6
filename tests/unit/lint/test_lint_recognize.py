"""The helper heuristics: whole words on token boundaries, image names, Remora operators."""

from __future__ import annotations

import pytest

from lint import recognize
from lint.model import Container


@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("fluentd", "log shipper"),
        ("team-fluent-bit-agent", "log shipper"),
        ("Fluent_Bit", "log shipper"),
        ("cloud-sql-proxy", "proxy"),
        ("istio-proxy", "proxy"),
        ("envoy", "proxy"),
        ("opentelemetry-collector-contrib", "telemetry agent"),
        ("vector", "log shipper"),
        ("vector-db", None),
        ("fluent", "log shipper"),
        ("fluentbitx", None),
        ("proxyless", None),
        ("web", None),
        ("", None),
    ],
)
def test_helper_role(text: str, role: str | None) -> None:
    assert recognize.helper_role(text) == role


@pytest.mark.parametrize(
    ("image", "name"),
    [
        ("docker.io/fluent/fluent-bit:3.1@sha256:abc", "fluent-bit"),
        ("localhost:5000/envoy", "envoy"),
        ("Promtail", "promtail"),
        ("gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.11.0", "cloud-sql-proxy"),
    ],
)
def test_image_name(image: str, name: str) -> None:
    assert recognize.image_name(image) == name


def test_words_fit_the_phrase_width() -> None:
    for word in (*recognize.HELPER_WORDS, *recognize.MAIN_WORDS):
        assert 1 <= len(recognize.tokens(word)) <= 3, word


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": "remora-build"}, True),
        ({"name": "remora-migrate-operator"}, True),
        ({"name": "ops", "command": ["/usr/bin/remora", "operator", "test"]}, True),
        ({"name": "remora-agent", "command": ["remora", "agent"]}, False),
        ({"name": "remora-deploy"}, False),
        ({"name": "x", "command": "remora operator build"}, False),
    ],
)
def test_remora_operator(body: dict[str, object], expected: bool) -> None:
    container = Container(str(body["name"]), "ghcr.io/remora-dev/remora:0.1.0", "app", body)
    assert recognize.is_remora_sidecar(container) is expected
