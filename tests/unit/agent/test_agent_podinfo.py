"""Reading the pod's own annotations (downward API file) and deciding what it may claim."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.podinfo import (
    PodInfoError,
    capabilities_from_annotations,
    go_unquote,
    parse_annotations,
    read_annotations_file,
)
from common.names import CAPABILITIES_ANNOTATION, STATUS_ANNOTATION

# What the kubelet writes for a pod (keys sorted, values strconv.Quote'd).
KUBELET_FILE = (
    'kubernetes.io/config.seen="2026-11-23T10:00:00.000000000Z"\n'
    f'{CAPABILITIES_ANNOTATION}="build, test"\n'
    f'{STATUS_ANNOTATION}="{{\\"capabilities\\":[\\"build\\",\\"test\\"],\\"catalogHash\\":\\"ab12\\"}}"\n'
    'note="line one\\nline two\\ttab \\u00e9\\U0001f600 \\x41"'
)


def go_quote(value: str) -> str:
    """strconv.Quote's shape: printable characters as they are, the rest as \\u or \\U escapes."""
    out = []
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def test_the_kubelet_format_is_parsed() -> None:
    annotations = parse_annotations(KUBELET_FILE)
    assert annotations[CAPABILITIES_ANNOTATION] == "build, test"
    assert orjson.loads(annotations[STATUS_ANNOTATION])["capabilities"] == ["build", "test"]
    assert annotations["note"] == "line one\nline two\ttab \u00e9\U0001f600 A"


@given(st.text())
def test_unquote_undoes_quoting(value: str) -> None:
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        return  # lone surrogates cannot be annotation values (UTF-8 only)
    assert go_unquote(go_quote(value)) == value


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("novalue", "not key="),
        ("k=unquoted", "double-quoted"),
        ('k="a"b"', "unescaped quote"),
        ('k="bad \\q escape"', "unknown escape"),
        ('k="short \\u12"', "escape digits"),
        ('k="\\xff"', "not UTF-8"),
        ('k="ends in \\"', "lone backslash"),
    ],
)
def test_malformed_lines_are_named(line: str, problem: str) -> None:
    with pytest.raises(PodInfoError) as err:
        parse_annotations('ok="fine"\n' + line)
    assert "line 2" in str(err.value) and problem in str(err.value)


def test_capabilities_are_narrowed_to_injected_sidecars() -> None:
    status = orjson.dumps({"capabilities": ["test"]}).decode()
    assert capabilities_from_annotations(
        {CAPABILITIES_ANNOTATION: "build,test", STATUS_ANNOTATION: status}
    ) == ["test"]
    assert capabilities_from_annotations({CAPABILITIES_ANNOTATION: "migrate, build"}) == ["migrate", "build"]


@pytest.mark.parametrize(
    ("annotations", "problem"),
    [
        ({}, "no remora.dev/capabilities"),
        ({CAPABILITIES_ANNOTATION: " , "}, "no remora.dev/capabilities"),
        ({CAPABILITIES_ANNOTATION: "build,paint"}, "unknown capability 'paint'"),
        (
            {CAPABILITIES_ANNOTATION: "build", STATUS_ANNOTATION: '{"capabilities": ["test"]}'},
            "no sidecar was injected",
        ),
    ],
)
def test_unusable_capabilities_are_named(annotations: dict[str, str], problem: str) -> None:
    with pytest.raises(PodInfoError) as err:
        capabilities_from_annotations(annotations)
    assert problem in str(err.value)


def test_the_file_is_read_with_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "annotations"
    path.write_text(KUBELET_FILE)
    assert read_annotations_file(path)[CAPABILITIES_ANNOTATION] == "build, test"
    with pytest.raises(PodInfoError) as err:
        read_annotations_file(tmp_path / "missing")
    assert "cannot read" in str(err.value)
    path.write_bytes(b'k="\xff"')
    with pytest.raises(PodInfoError) as err:
        read_annotations_file(path)
    assert "not UTF-8" in str(err.value)
