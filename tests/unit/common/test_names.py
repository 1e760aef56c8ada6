from common.names import CAPABILITIES, KIND_BY_CAPABILITY, KINDS, parse_capability_list


def test_capabilities_map_to_the_design_kinds() -> None:
    assert {c: KIND_BY_CAPABILITY[c].kind for c in CAPABILITIES} == {
        "build": "BuildRequest",
        "test": "TestRun",
        "migrate": "DatabaseMigration",
    }
    assert len({k.plural for k in KINDS}) == len({k.short_name for k in KINDS}) == 3


def test_capability_list_is_trimmed_and_deduplicated_in_order() -> None:
    assert parse_capability_list(" test, build,,test ,") == ["test", "build"]
    assert parse_capability_list("") == []
