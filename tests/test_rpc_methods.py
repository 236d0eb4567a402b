"""The method table: params by name and position, one -32602 naming every bad field, OpenRPC."""

from __future__ import annotations

import enum
import json
from typing import Any

import attrs
import pytest

from hero_logic.kernel import HeroLogicError, InvalidParams
from hero_logic.rpc import MethodNotFound, MethodTable, handle_body, openrpc_document, rpc_method


class Color(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Item:
    """One thing in a box."""

    name: str
    color: Color = Color.RED
    tags: list[str] = attrs.Factory(list)


@attrs.frozen
class Box:
    """A box of items."""

    sid: str
    items: list[Item] = attrs.Factory(list)
    size: int | None = None


class Shop:
    """A fake service covering every supported annotation."""

    @rpc_method()
    async def box_get(self, sid: str) -> Box:
        """Fetch one box.

        The long description.
        """
        return Box(sid=sid, items=[Item("pen", Color.BLUE)])

    @rpc_method()
    async def box_list(self, limit: int = 50, offset: int = 0) -> list[Box]:
        """List boxes."""
        return [Box(sid=f"b{i}") for i in range(offset, offset + min(limit, 3))]

    @rpc_method(summary="Weigh things", result_description="grams")
    async def weigh(self, weight: float, exact: bool = False) -> float:
        return weight

    @rpc_method("shop.paint")
    async def paint(self, sid: str, color: Color) -> Color:
        """Paint a box."""
        assert isinstance(color, Color)
        return color

    @rpc_method()
    async def tag(
        self, sid: str, tags: list[str], extra: dict[str, Any] | None = None, note: Any = None
    ) -> dict[str, Any]:
        """Tag a box."""
        return {"sid": sid, "tags": tags, "extra": extra, "note": note}

    @rpc_method()
    async def put_item(self, item: Item) -> Item:
        """Store an item."""
        assert isinstance(item, Item)
        return item

    @rpc_method()
    async def push(self, play_sid: str, event_json: dict[str, Any]) -> bool:
        """Push one event."""
        assert isinstance(event_json, dict)
        return True

    @rpc_method
    async def bare(self) -> None:
        """Marked without parentheses."""

    async def not_an_rpc_method(self) -> None:
        """Unmarked: not in the table."""

    @property
    def explodes(self) -> int:
        raise AssertionError("properties must not be evaluated while collecting methods")


@pytest.fixture
def table() -> MethodTable:
    return MethodTable.from_service(Shop(), title="shop", version="9.9")


async def problems_of(table: MethodTable, method: str, params: Any) -> list[dict[str, str]]:
    with pytest.raises(InvalidParams) as info:
        await table.dispatch(method, params)
    assert info.value.code == -32602
    assert method in info.value.message
    data: list[dict[str, str]] = info.value.data
    return data


def test_marked_methods_and_the_built_ins_are_in_the_table(table: MethodTable) -> None:
    assert {m.name for m in table} == {
        "box_get", "box_list", "weigh", "shop.paint", "tag", "put_item", "push", "bare",
        "rpc.discover", "system.ping",
    }
    assert "not_an_rpc_method" not in table
    assert [p.name for p in table["tag"].params] == ["sid", "tags", "extra", "note"]
    assert [p.required for p in table["tag"].params] == [True, True, False, False]


async def test_params_by_name_by_position_and_defaulted(table: MethodTable) -> None:
    assert await table.dispatch("box_list", {"limit": 2, "offset": 5}) == [{"sid": "b5", "items": [], "size": None}, {"sid": "b6", "items": [], "size": None}]
    assert await table.dispatch("box_list", [1, 7]) == [{"sid": "b7", "items": [], "size": None}]
    assert len(await table.dispatch("box_list", None)) == 3
    assert len(await table.dispatch("box_list", {})) == 3
    assert len(await table.dispatch("box_list", [])) == 3


async def test_results_go_through_the_kernel_converter(table: MethodTable) -> None:
    assert await table.dispatch("box_get", ["b1"]) == {
        "sid": "b1", "items": [{"name": "pen", "color": "blue", "tags": []}], "size": None
    }
    assert await table.dispatch("shop.paint", {"sid": "b", "color": "blue"}) == "blue"


async def test_built_ins_ping_and_discover(table: MethodTable) -> None:
    assert await table.dispatch("system.ping", None) == "pong"
    document = await table.dispatch("rpc.discover", [])
    assert document == json.loads(json.dumps(table.document()))


async def test_unknown_parameter_names_are_invalid_each_named(table: MethodTable) -> None:
    problems = await problems_of(table, "box_get", {"sid": "b", "sidd": 1, "x": 2})
    assert [p["field"] for p in problems] == ["sidd", "x"]
    assert "unknown parameter: box_get takes sid" in problems[0]["error"]


async def test_missing_required_params_are_invalid_by_name_and_by_position(table: MethodTable) -> None:
    problems = await problems_of(table, "tag", {})
    assert [p["field"] for p in problems] == ["sid", "tags"]
    assert problems[0]["error"] == "missing: this parameter is required (expected string)"
    assert [p["field"] for p in await problems_of(table, "tag", ["b"])] == ["tags"]


async def test_extra_positional_params_are_invalid(table: MethodTable) -> None:
    problems = await problems_of(table, "box_get", ["b", 2, 3])
    assert [p["field"] for p in problems] == ["params[1]", "params[2]"]
    assert "takes at most 1 (sid)" in problems[0]["error"]


async def test_every_type_mismatch_of_a_call_is_reported_in_one_error(table: MethodTable) -> None:
    problems = await problems_of(table, "tag", {"sid": 42, "tags": ["a", 3, None], "extra": [], "zzz": 1})
    assert problems == [
        {"field": "sid", "error": "expected string, got 42 (integer)"},
        {"field": "tags[1]", "error": "expected string, got 3 (integer)"},
        {"field": "tags[2]", "error": "expected string, got null (null)"},
        {"field": "extra", "error": "expected object or null, got an array of 0 items"},
        {"field": "zzz", "error": "unknown parameter: tag takes sid, tags, extra, note"},
    ]


async def test_bool_is_not_an_int_but_ints_are_floats_and_integral_floats_ints(table: MethodTable) -> None:
    problems = await problems_of(table, "box_list", [True])
    assert problems == [{"field": "limit", "error": "expected integer, got true (boolean)"}]
    assert await problems_of(table, "box_list", [1.5]) == [{"field": "limit", "error": "expected integer, got 1.5 (number)"}]
    assert len(await table.dispatch("box_list", [2.0])) == 2
    assert await table.dispatch("weigh", [3]) == 3.0
    assert isinstance(await table.dispatch("weigh", [3]), float)
    assert await problems_of(table, "weigh", ["3", 1]) == [
        {"field": "weight", "error": 'expected number, got "3" (string)'},
        {"field": "exact", "error": "expected boolean, got 1 (integer)"},
    ]


async def test_optional_any_and_enum_params(table: MethodTable) -> None:
    out = await table.dispatch("tag", ["b", [], None, {"any": [1]}])
    assert out == {"sid": "b", "tags": [], "extra": None, "note": {"any": [1]}}
    problems = await problems_of(table, "shop.paint", {"sid": "b", "color": "green"})
    assert problems == [{"field": "color", "error": 'expected one of "red", "blue", got "green" (string)'}]


async def test_attrs_params_are_built_with_the_converter_and_nested_errors_named(table: MethodTable) -> None:
    assert await table.dispatch("put_item", [{"name": "cup", "tags": ["x"]}]) == {"name": "cup", "color": "red", "tags": ["x"]}
    problems = await problems_of(table, "put_item", [{"name": "cup", "color": "green", "size": 1}])
    fields = {p["field"] for p in problems}
    assert "item.color" in fields or "item" in fields
    assert await problems_of(table, "put_item", ["cup"]) == [{"field": "item", "error": 'expected Item object, got "cup" (string)'}]


async def test_a_json_param_also_takes_a_json_encoded_string(table: MethodTable) -> None:
    assert await table.dispatch("push", {"play_sid": "p", "event_json": {"type": "span_start"}}) is True
    assert await table.dispatch("push", {"play_sid": "p", "event_json": '{"type": "span_start"}'}) is True
    problems = await problems_of(table, "push", ["p", "{not json"])
    assert problems[0]["field"] == "event_json"
    assert "not JSON" in problems[0]["error"]
    problems = await problems_of(table, "push", ["p", "[1, 2]"])
    assert problems == [{"field": "event_json", "error": "expected object, got an array of 2 items"}]
    problems = await problems_of(table, "push", ["p", '{"x": NaN}'])
    assert "NaN" in problems[0]["error"]


async def test_a_flood_of_problems_is_capped(table: MethodTable) -> None:
    problems = await problems_of(table, "tag", ["b", list(range(500))])
    assert len(problems) == 51
    assert problems[-1] == {"field": "...", "error": "450 more problems not shown"}


async def test_an_unknown_method_is_method_not_found_with_a_suggestion(table: MethodTable) -> None:
    with pytest.raises(MethodNotFound, match="'box_gte' not found; did you mean box_get") as info:
        await table.dispatch("box_gte", {})
    assert info.value.code == -32601
    assert info.value.data["method"] == "box_gte"


async def test_handle_body_over_a_table_answers_by_position_and_by_name(table: MethodTable) -> None:
    body = json.dumps([
        {"jsonrpc": "2.0", "id": 1, "method": "weigh", "params": [2.5]},
        {"jsonrpc": "2.0", "id": 2, "method": "weigh", "params": {"weight": 2.5, "exact": True}},
        {"jsonrpc": "2.0", "id": 3, "method": "weigh", "params": {"weight": "x", "grams": 1}},
    ]).encode()
    raw = await handle_body(body, table.dispatch)
    assert raw is not None
    out = json.loads(raw)
    assert [r.get("result") for r in out[:2]] == [2.5, 2.5]
    assert out[2]["error"]["code"] == -32602
    assert [d["field"] for d in out[2]["error"]["data"]] == ["weight", "grams"]


def test_extra_callables_join_the_table() -> None:
    async def flow_library_search(query: str, limit: int = 10) -> list[str]:
        """Search flows."""
        return [query] * limit

    table = MethodTable.from_service(Shop(), extra={"library.search": flow_library_search})
    assert [p.name for p in table["library.search"].params] == ["query", "limit"]


def test_a_bad_method_signature_fails_when_the_table_is_built() -> None:
    class SyncMethod:
        def ping(self) -> str:
            return "x"

    with pytest.raises(TypeError, match="async def"):
        rpc_method()(SyncMethod.ping)  # type: ignore[type-var]

    class Unsupported:
        @rpc_method()
        async def run(self, when: complex) -> None:
            pass

    with pytest.raises(TypeError, match=r"'run'.*parameter 'when'.*unsupported annotation"):
        MethodTable.from_service(Unsupported())

    class Unannotated:
        @rpc_method()
        async def run(self, x) -> None:  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(TypeError, match="'x' has no type annotation"):
        MethodTable.from_service(Unannotated())

    class Variadic:
        @rpc_method()
        async def run(self, *names: str) -> None:
            pass

    with pytest.raises(TypeError, match="RPC params must be named"):
        MethodTable.from_service(Variadic())

    class Twice:
        @rpc_method("system.ping")
        async def ping(self) -> str:
            return "pong"

    with pytest.raises(ValueError, match=r"two RPC methods are named 'system\.ping'"):
        MethodTable.from_service(Twice())


# -- the OpenRPC document -------------------------------------------------------------------


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_the_document_lists_every_method_with_params_and_result(table: MethodTable) -> None:
    doc = openrpc_document(list(table), table.schemas, title="shop", version="9.9")
    assert doc["openrpc"] == "1.2.6"
    assert doc["info"] == {"title": "shop", "version": "9.9"}
    assert [m["name"] for m in doc["methods"]] == sorted(m.name for m in table)
    methods = {m["name"]: m for m in doc["methods"]}
    assert {"rpc.discover", "system.ping"} <= methods.keys()
    for method in doc["methods"]:
        assert method["paramStructure"] == "either"
        assert set(method["result"]) >= {"name", "schema"}
        for param in method["params"]:
            assert set(param) == {"name", "required", "schema"}
    box_list = methods["box_list"]
    assert box_list["summary"] == "List boxes."
    assert box_list["params"] == [
        {"name": "limit", "required": False, "schema": {"type": "integer", "default": 50}},
        {"name": "offset", "required": False, "schema": {"type": "integer", "default": 0}},
    ]
    assert box_list["result"] == {"name": "boxes", "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Box"}}}
    assert methods["box_get"]["description"] == "The long description."
    assert methods["weigh"]["summary"] == "Weigh things"
    assert methods["weigh"]["result"]["description"] == "grams"
    assert methods["tag"]["params"][1]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert methods["tag"]["params"][2]["schema"] == {"type": ["object", "null"], "default": None}
    assert methods["push"]["params"][1]["schema"]["anyOf"][1]["contentMediaType"] == "application/json"
    json.dumps(doc, allow_nan=False)


def test_records_are_components_with_enums_as_string_enums_and_refs_that_resolve(table: MethodTable) -> None:
    doc = table.document()
    schemas = doc["components"]["schemas"]
    assert set(schemas) == {"Box", "Item"}
    box = schemas["Box"]
    assert box["required"] == ["sid"]
    assert box["description"] == "A box of items."
    assert box["properties"]["items"] == {"type": "array", "items": {"$ref": "#/components/schemas/Item"}, "default": []}
    assert box["properties"]["size"] == {"type": ["integer", "null"], "default": None}
    assert schemas["Item"]["properties"]["color"] == {"type": "string", "enum": ["red", "blue"], "title": "Color", "default": "red"}
    for ref in _refs(doc):
        section, name = ref.removeprefix("#/components/").split("/")
        assert name in doc["components"][section], ref


def test_every_error_code_is_documented_once_under_components() -> None:
    doc = MethodTable().document()
    errors = doc["components"]["errors"]
    codes = [e["code"] for e in errors.values()]
    assert len(codes) == len(set(codes))
    assert {-32700, -32600, -32601, -32602, -32603} <= set(codes)
    walked: set[int] = set()
    queue: list[type[HeroLogicError]] = [HeroLogicError]
    while queue:
        cls = queue.pop()
        walked.add(cls.code)
        queue.extend(cls.__subclasses__())
    assert walked == set(codes)
    assert errors["NotFound"] == {"code": -32001, "message": "No record with the given sid exists."}
