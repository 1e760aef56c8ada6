"""The capability catalog: the built-in one, schema errors by field, a stable hash, hot reload."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from webhook.catalog import (
    BUILT_IN,
    CatalogError,
    CatalogStore,
    ConfigMapWatcher,
    FileWatcher,
    default_catalog,
    load_file,
    parse_catalog,
)


def document(**build: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": "BuildRequest",
        "image": "registry.example/remora:1",
        "command": ["remora", "operator", "build"],
        "resources": {"limits": {"memory": "128Mi"}},
    }
    entry.update(build)
    return {
        "apiVersion": "remora.dev/v1alpha1",
        "kind": "CapabilityCatalog",
        "capabilities": {"build": entry},
    }


def text(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc)


def test_the_built_in_catalog_offers_build_test_and_migrate() -> None:
    catalog = default_catalog()
    assert catalog.source == BUILT_IN
    assert catalog.names() == ["build", "migrate", "test"]
    assert {c.kind for c in catalog.capabilities.values()} == {"BuildRequest", "TestRun", "DatabaseMigration"}
    for capability in catalog.capabilities.values():
        assert capability.resources["limits"]["memory"]
        assert capability.run_as_user > 0


def test_the_hash_depends_on_content_not_on_how_the_yaml_is_written() -> None:
    doc = document(env=[{"name": "A", "value": "1"}])
    flow = parse_catalog(yaml.safe_dump(doc, default_flow_style=True), "a")
    block = parse_catalog("# comment\n" + yaml.safe_dump(doc, default_flow_style=False, sort_keys=True), "b")
    as_json = parse_catalog(orjson.dumps(doc), "c")
    assert flow.hash == block.hash == as_json.hash
    assert len(flow.hash) == 16
    assert parse_catalog(text(document(image="registry.example/remora:2")), "d").hash != flow.hash


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (document(image=5), "capabilities.build.image: 5 is not of type 'string'"),
        (document(command=[]), "capabilities.build.command: [] should be non-empty"),
        (
            document(resources={"limits": {"cpu": "1"}}),
            "capabilities.build.resources.limits: 'memory' is a required",
        ),
        (
            document(resources={"limits": {"memory": "lots"}}),
            "capabilities.build.resources.limits.memory: 'lots'",
        ),
        (
            document(kind="TestRun"),
            "capabilities.build.kind: capability 'build' reconciles BuildRequest, not TestRun",
        ),
        (
            document(privileged=True),
            "capabilities.build: Additional properties are not allowed ('privileged'",
        ),
        (document(runAsUser=0), "capabilities.build.runAsUser: 0 is less than the minimum of 1"),
        (document(env=[{"name": "A"}]), "capabilities.build.env[0]: 'value' is a required property"),
        ({**document(), "kind": "Catalog"}, "kind: 'CapabilityCatalog' was expected"),
        ({**document(), "capabilities": {"deploy": {}}}, "capabilities: 'deploy' is not one of"),
    ],
)
def test_a_bad_catalog_is_refused_naming_the_source_and_field(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text(doc), "catalog.yaml")
    assert str(caught.value).startswith("catalog.yaml: ")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("capabilities: [", "invalid YAML at line 1"),
        ("a: &x 1\nb: *x\n", "YAML aliases are not supported"),
        ("---\na: 1\n---\nb: 2\n", "exactly one YAML document, found 2"),
        ("", "exactly one YAML document, found 0"),
        ("x" * (1024 * 1024 + 1), "over the limit"),
    ],
)
def test_unreadable_catalog_text_is_refused(raw: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        parse_catalog(raw, "catalog.yaml")


def test_load_file_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read the catalog"):
        load_file(str(tmp_path / "nope.yaml"))


def test_the_store_keeps_the_last_good_catalog_and_reports_each_offer() -> None:
    results: list[bool] = []
    store = CatalogStore(default_catalog(), results.append)
    assert store.offer(text(document()), "v1") is True
    good = store.current
    assert store.offer(text(document(image=5)), "v2") is False
    assert store.current is good
    assert store.last_error and store.last_error.startswith("v2: capabilities.build.image")
    assert store.offer(text(document(image="registry.example/remora:3")), "v3") is True
    assert store.current.capabilities["build"].image == "registry.example/remora:3"
    assert store.last_error is None
    assert results == [True, False, True]


def test_a_changed_catalog_file_is_picked_up_and_a_broken_one_ignored(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(text(document()))
    store = CatalogStore(load_file(str(path)))
    watcher = FileWatcher(str(path), store, interval=0.01)
    first = store.current
    watcher.check()
    assert store.current is first  # unchanged file: not even parsed again

    path.write_text(text(document(image="registry.example/remora:2")))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    watcher.check()
    assert store.current.capabilities["build"].image == "registry.example/remora:2"

    path.write_text("capabilities: [")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2_000_000))
    watcher.check()
    assert store.current.capabilities["build"].image == "registry.example/remora:2"
    assert store.last_error and "invalid YAML" in store.last_error


def test_the_file_watcher_thread_reloads_without_help(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(text(document()))
    store = CatalogStore(load_file(str(path)))
    watcher = FileWatcher(str(path), store, interval=0.02)
    watcher.start()
    try:
        path.write_text(text(document(image="registry.example/remora:9")))
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
        deadline = time.monotonic() + 5
        while store.current.capabilities["build"].image != "registry.example/remora:9":
            assert time.monotonic() < deadline, "the watcher did not reload the file"
            time.sleep(0.02)
    finally:
        watcher.stop()


def configmap(catalog_text: str | None) -> dict[str, Any]:
    data = {"catalog.yaml": catalog_text} if catalog_text is not None else {"other": "x"}
    return {"metadata": {"name": "remora-capabilities", "namespace": "remora-system"}, "data": data}


def test_the_configmap_watcher_offers_its_catalog_and_survives_bad_edits_and_deletion() -> None:
    store = CatalogStore(default_catalog())
    watcher = ConfigMapWatcher(api=None, namespace="remora-system", name="remora-capabilities", store=store)
    watcher.replace([configmap(text(document()))])
    assert store.current.source == "ConfigMap remora-system/remora-capabilities"
    good = store.current
    watcher.apply("MODIFIED", configmap(text(document(image=[]))))
    assert store.current is good
    watcher.apply("MODIFIED", configmap(None))
    assert store.current is good
    assert store.last_error == "ConfigMap remora-system/remora-capabilities: has no key 'catalog.yaml'"
    watcher.apply("DELETED", configmap(None))
    assert store.current is good
    watcher.apply("ADDED", configmap(text(document(image="registry.example/remora:4"))))
    assert store.current.capabilities["build"].image == "registry.example/remora:4"
