"""Reading manifests: streams, Lists, folders, and every way input can be unreadable."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lint import inputs
from lint.inputs import InputError

POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: ns}\nspec: {containers: []}\n"


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


def test_multi_document_stream_with_lines_and_empty_documents(tmp_path: Path) -> None:
    path = write(tmp_path, "pods.yaml", "---\n" + POD % "a" + "---\n---\n# only a comment\n---\n" + POD % "b")
    resources = inputs.load([path])
    assert [r.name for r in resources] == ["a", "b"]
    assert [r.source.line for r in resources if r.source] == [2, 10]


def test_lists_are_expanded_nested_ones_too(tmp_path: Path) -> None:
    text = """
apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: Pod, metadata: {name: a}}
  - apiVersion: v1
    kind: PodList
    items: [{apiVersion: v1, kind: Pod, metadata: {name: b}}]
"""
    resources = inputs.load([write(tmp_path, "l.yaml", text)])
    assert [(r.name, r.source.line if r.source else 0) for r in resources] == [("a", 5), ("b", 8)]


def test_json_files_and_folders_recursively_in_sorted_order(tmp_path: Path) -> None:
    write(tmp_path, "d/b.yaml", POD % "b")
    write(tmp_path, "d/sub/deeper/c.yml", POD % "c")
    write(tmp_path, "d/a.json", '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}')
    write(tmp_path, "d/README.md", "not a manifest: ignored")
    assert [r.name for r in inputs.load([str(tmp_path / "d")])] == ["a", "b", "c"]


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stdin:
        buffer = io.BytesIO((POD % "s").encode())

    monkeypatch.setattr("sys.stdin", Stdin)
    [resource] = inputs.load(["-"])
    assert resource.name == "s" and resource.source and resource.source.path == "<stdin>"


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("bad.yaml", "kind: Pod\nmetadata: {name: [unclosed\n", "invalid YAML"),
        ("tabs.yaml", "a:\n\tb: c\n", "invalid YAML"),
        ("scalar.yaml", "just a string\n", "document 1 (line 1): a string, not a Kubernetes object"),
        ("list.yaml", POD % "ok" + "---\n- 1\n- 2\n", "document 2 (line 6): a list, not a Kubernetes object"),
        ("number.yaml", "42\n", "a number, not a Kubernetes object"),
        ("nokind.yaml", "apiVersion: v1\nmetadata: {name: x}\n", "object has no kind"),
        ("noversion.yaml", "kind: Pod\nmetadata: {name: x}\n", "Pod has no apiVersion"),
        ("meta.yaml", "apiVersion: v1\nkind: Pod\nmetadata: [1]\n", "Pod metadata is a list, not a mapping"),
        (
            "items.yaml",
            "apiVersion: v1\nkind: List\nitems: {a: 1}\n",
            "List items is a",
        ),
        ("item.yaml", "apiVersion: v1\nkind: List\nitems: [3]\n", "item 1: a number"),
        ("binary.yaml", b"\x7fELF\x02\x01\x01\x00\x00\x00garbage\xff\xfe", "binary data"),
        ("latin1.yaml", "name: caf\xe9\n".encode("latin-1"), "not UTF-8 text"),
        ("control.yaml", b"kind: Pod\x07\n", "invalid YAML"),
    ],
)
def test_unreadable_input_names_the_file_and_problem(
    tmp_path: Path, name: str, content: str | bytes, problem: str
) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(InputError) as caught:
        inputs.load([path])
    message = str(caught.value)
    assert message.startswith(path + ":")
    assert problem in message
    assert "\n" not in message


def test_missing_file_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no-such\.yaml: no such file or folder"):
        inputs.load([str(tmp_path / "no-such.yaml")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"folder holds no \.yaml"):
        inputs.load([str(tmp_path / "empty")])


def test_unreadable_file(tmp_path: Path) -> None:
    folder_named_yaml = tmp_path / "x.yaml"
    folder_named_yaml.mkdir()
    write(tmp_path, "x.yaml/inner.yaml", POD % "inner")
    # A folder whose name ends in .yaml is a folder: its files are read, it is not opened as a file.
    assert [r.name for r in inputs.load([str(folder_named_yaml)])] == ["inner"]


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n" + "\n".join(
        "  " + line for line in lines
    )
    with pytest.raises(InputError, match="expands to more than"):
        inputs.load([write(tmp_path, "lol.yaml", text)])


def test_deep_but_bounded_nesting_is_read(tmp_path: Path) -> None:
    levels = inputs.MAX_DEPTH - 1  # the object itself is the first level
    text = "apiVersion: v1\nkind: X\nmetadata: {}\nspec: " + "[" * levels + "]" * levels + "\n"
    [resource] = inputs.load([write(tmp_path, "deep.yaml", text)])
    assert resource.kind == "X"


@pytest.mark.parametrize(
    "spec",
    [
        "[" * 60_000 + "]" * 60_000,  # deep enough to overflow the C composer's stack if it got there
        "\n" + "- " * 60_000 + "x",
        "\n" + "".join("  " * i + "a:\n" for i in range(1, 300)),
    ],
)
def test_deep_nesting_is_refused_before_parsing(tmp_path: Path, spec: str) -> None:
    with pytest.raises(InputError, match=f"nests deeper than {inputs.MAX_DEPTH} levels at line"):
        inputs.load(
            [write(tmp_path, "deep.yaml", "apiVersion: v1\nkind: X\nmetadata: {}\nspec: " + spec + "\n")]
        )


def test_oversized_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "MAX_FILE_BYTES", 1024)
    with pytest.raises(InputError, match="larger than"):
        inputs.load([write(tmp_path, "big.yaml", "# " + "x" * 2000 + "\n")])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_load_or_fail_with_one_line(data: bytes) -> None:
    try:
        inputs.load_text(data.decode("utf-8", "replace"), "fuzz.yaml")
    except InputError as exc:
        assert str(exc).startswith("fuzz.yaml:") and "\n" not in str(exc)


def test_total_input_size_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "MAX_TOTAL_BYTES", 100)
    first = write(tmp_path, "a.yaml", POD % "a")
    second = write(tmp_path, "b.yaml", POD % "b")
    with pytest.raises(InputError, match=r"b\.yaml: the inputs add up to more than"):
        inputs.load([first, second])
