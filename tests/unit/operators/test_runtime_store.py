"""The cache: write-through of our own writes never moves an object back in time or back to life."""

from __future__ import annotations

from operators.runtime.store import Store, newer_or_same


def obj(name: str, rv: str) -> dict[str, object]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": rv}}


def test_write_through_keeps_the_newer_version() -> None:
    store = Store()
    store.put(obj("a", "10"))
    assert store.put_if_newer(obj("a", "12"))
    assert not store.put_if_newer(obj("a", "11"))  # the watch was faster with something newer
    assert store.get(("ns", "a")) == obj("a", "12")


def test_a_deleted_object_does_not_come_back_from_a_late_response() -> None:
    store = Store()
    store.put(obj("a", "10"))
    store.delete(("ns", "a"))
    assert not store.put_if_newer(obj("a", "12"), insert=False)
    assert store.get(("ns", "a")) is None
    assert store.put_if_newer(obj("b", "3"))  # a Job we just created may be inserted


def test_replace_reports_what_vanished() -> None:
    store = Store()
    store.put(obj("a", "1"))
    store.put(obj("b", "2"))
    present, vanished = store.replace([obj("b", "5"), obj("c", "6")])
    assert [o["metadata"]["name"] for o in vanished] == ["a"]  # type: ignore[index]
    assert sorted(o["metadata"]["name"] for o in present) == ["b", "c"]  # type: ignore[index]
    assert len(store) == 2


def test_resource_versions_compare_as_integers_only_when_they_are() -> None:
    assert newer_or_same("10", "9") and not newer_or_same("9", "10")
    assert newer_or_same("opaque", "10")
