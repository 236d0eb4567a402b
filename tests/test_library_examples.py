"""Presets (examples): upsert by workflow + name, checked against the declared fields, and run
with play_start(example_sid=...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from hero_logic.rpc import RpcError

if TYPE_CHECKING:
    from .conftest import Service

GREETER = """
from hero_tracing import ask_user, flow

@flow(
    name="greeter",
    inputs={"who": {"type": "string", "required": True}, "times": {"type": "integer", "default": 1}},
    outputs={"greeting": "string", "count": "integer"},
)
def main(who, times=1):
    mood = ask_user.choice("Mood?", ["warm", "cool"], name="mood") if who == "Moody" else "plain"
    return {"greeting": f"{mood} hello {who}" * times, "count": times}
"""


async def _error(service: Service, method: str, **params: Any) -> RpcError:
    with pytest.raises(RpcError) as info:
        await service.call(method, **params)
    return info.value


async def test_upsert_creates_then_replaces_by_workflow_and_name(service: Service) -> None:
    wf = await service.push(GREETER, name="greeter")
    first = await service.call(
        "example_upsert", workflow_sid=wf["sid"], name="ada", input_values={"who": "Ada"},
        description="the basic case", expected_output={"greeting": "plain hello Ada"},
    )
    assert first["sid"].startswith("ex_")
    assert first["workflow_sid"] == wf["sid"]
    assert first["expected_output"] == {"greeting": "plain hello Ada"}
    second = await service.call(
        "example_upsert", workflow_sid=wf["sid"], name="ada", input_values={"who": "Ada", "times": 2}
    )
    assert second["sid"] == first["sid"]  # the same preset, replaced
    assert second["created_at"] == first["created_at"]
    assert second["input_values"] == {"who": "Ada", "times": 2}
    assert second["expected_output"] is None
    other = await service.call("example_upsert", workflow_sid=wf["sid"], name="bob", input_values={"who": "Bob"})
    listed = await service.call("example_list", workflow_sid=wf["sid"])
    assert [e["name"] for e in listed] == ["ada", "bob"]
    assert (await service.call("example_fetch", sid=other["sid"]))["input_values"] == {"who": "Bob"}
    assert await service.call("example_delete", sid=other["sid"]) is True
    assert [e["name"] for e in await service.call("example_list", workflow_sid=wf["sid"])] == ["ada"]
    assert (await _error(service, "example_fetch", sid=other["sid"])).code == -32001


async def test_upsert_names_every_bad_value(service: Service) -> None:
    wf = await service.push(GREETER, name="greeter")
    err = await _error(
        service, "example_upsert", workflow_sid=wf["sid"], name="bad",
        input_values={"who": 42, "times": "two", "extra": 1},
    )
    assert err.code == -32602
    fields = {p["field"]: p["error"] for p in err.data}
    assert set(fields) == {"input_values.who", "input_values.times", "input_values.extra"}
    assert "string" in fields["input_values.who"]
    assert "42" in fields["input_values.who"]
    err = await _error(service, "example_upsert", workflow_sid=wf["sid"], name="missing", input_values={})
    assert [p["field"] for p in err.data] == ["input_values.who"]
    assert "requires" in err.data[0]["error"]
    err = await _error(
        service, "example_upsert", workflow_sid=wf["sid"], name="out", input_values={"who": "A"},
        expected_output={"greeting": 1, "mood": "x"},
    )
    assert {p["field"] for p in err.data} == {"expected_output.greeting", "expected_output.mood"}
    err = await _error(
        service, "example_upsert", workflow_sid=wf["sid"], name="out", input_values={"who": "A"}, expected_output="hi"
    )
    assert err.data[0]["field"] == "expected_output"
    err = await _error(service, "example_upsert", workflow_sid=wf["sid"], name="  ", input_values={"who": "A"})
    assert err.data[0]["field"] == "name"
    err = await _error(service, "example_upsert", workflow_sid=wf["sid"], name="x", input_values="who=A")
    assert err.code == -32602
    assert err.data[0]["field"] == "input_values"
    assert (await _error(service, "example_upsert", workflow_sid="wf_nope", name="x", input_values={})).code == -32001
    err = await _error(service, "example_upsert", workflow_sid=wf["sid"], name="x", input_values={"who": "A"}, version_sid="ver_nope")
    assert err.code == -32001
    other = await service.push(GREETER, name="other")
    err = await _error(
        service, "example_upsert", workflow_sid=wf["sid"], name="x", input_values={"who": "A"},
        version_sid=other["current_version_sid"],
    )
    assert err.code == -32602
    assert err.data[0]["field"] == "version_sid"
    assert await service.call("example_list", workflow_sid=wf["sid"]) == []


async def test_unknown_sids_are_not_found(service: Service) -> None:
    for method, params in [
        ("example_fetch", {"sid": "ex_nope"}),
        ("example_delete", {"sid": "ex_nope"}),
        ("example_to_input_data", {"sid": "ex_nope"}),
        ("example_list", {"workflow_sid": "wf_nope"}),
    ]:
        err = await _error(service, method, **params)
        assert err.code == -32001, method
        assert "nope" in err.message


async def test_preset_is_checked_against_its_pinned_version(service: Service) -> None:
    wf = await service.push(GREETER, name="greeter")
    v2 = await service.call(
        "workflow_create_version", workflow_sid=wf["sid"], make_current=False,
        python_source=GREETER.replace('"who": {"type": "string", "required": True}', '"who": {"type": "integer", "required": True}'),
    )
    pinned = await service.call("example_upsert", workflow_sid=wf["sid"], name="n", input_values={"who": 7}, version_sid=v2["sid"])
    assert pinned["version_sid"] == v2["sid"]
    err = await _error(service, "example_upsert", workflow_sid=wf["sid"], name="n2", input_values={"who": 7})
    assert err.data[0]["field"] == "input_values.who"  # the current version wants a string


async def test_to_input_data_fills_declared_defaults(service: Service) -> None:
    wf = await service.push(GREETER, name="greeter")
    ex = await service.call("example_upsert", workflow_sid=wf["sid"], name="ada", input_values={"who": "Ada"})
    assert await service.call("example_to_input_data", sid=ex["sid"]) == {"who": "Ada", "times": 1}


async def test_play_start_runs_a_preset_under_explicit_input_and_on_its_pin(service: Service) -> None:
    wf = await service.push(GREETER, name="greeter")
    v2 = await service.call(
        "workflow_create_version", workflow_sid=wf["sid"], make_current=False,
        python_source=GREETER.replace("hello", "hi"),
    )
    ex = await service.call(
        "example_upsert", workflow_sid=wf["sid"], name="twice", input_values={"who": "Ada", "times": 2}, version_sid=v2["sid"]
    )
    sid = await service.call("play_start", workflow_sid=wf["sid"], example_sid=ex["sid"])
    play = await service.call("play_wait", play_sid=sid, timeout_ms=20000)
    assert play["status"] == "success", play["error_message"]
    assert play["workflow_version_sid"] == v2["sid"]  # the preset's pin
    assert play["output_data"] == {"greeting": "plain hi Adaplain hi Ada", "count": 2}
    assert play["name"] == "example:twice"

    sid = await service.call(
        "play_start", workflow_sid=wf["sid"], example_sid=ex["sid"], input_data={"times": 1},
        version_sid=wf["current_version_sid"], name="mine",
    )
    play = await service.call("play_wait", play_sid=sid, timeout_ms=20000)
    assert play["input_data"] == {"who": "Ada", "times": 1}  # explicit input wins, the rest from the preset
    assert play["workflow_version_sid"] == wf["current_version_sid"]  # an explicit version wins
    assert play["output_data"]["greeting"] == "plain hello Ada"
    assert play["name"] == "mine"


async def test_play_start_with_a_preset_uses_its_prefilled_answers(service: Service) -> None:
    wf = await service.push(GREETER, name="greeter")
    ex = await service.call(
        "example_upsert", workflow_sid=wf["sid"], name="moody", input_values={"who": "Moody"}, prefill_resumes={"mood": "warm"}
    )
    play = await service.call("play_wait", play_sid=await service.call("play_start", workflow_sid=wf["sid"], example_sid=ex["sid"]), timeout_ms=20000)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"]["greeting"] == "warm hello Moody"
    sid = await service.call("play_start", workflow_sid=wf["sid"], example_sid=ex["sid"], prefill_resumes={"mood": "cool"})
    play = await service.call("play_wait", play_sid=sid, timeout_ms=20000)
    assert play["output_data"]["greeting"] == "cool hello Moody"


async def test_play_start_refuses_a_foreign_or_unknown_preset(service: Service) -> None:
    wf = await service.push(GREETER, name="greeter")
    other = await service.push(GREETER, name="other")
    ex = await service.call("example_upsert", workflow_sid=other["sid"], name="a", input_values={"who": "A"})
    err = await _error(service, "play_start", workflow_sid=wf["sid"], example_sid=ex["sid"])
    assert err.code == -32602
    assert err.data[0]["field"] == "example_sid"
    assert (await _error(service, "play_start", workflow_sid=wf["sid"], example_sid="ex_nope")).code == -32001
    bad = await _error(service, "play_start", workflow_sid=other["sid"], example_sid=ex["sid"], input_data={"times": "x"})
    assert bad.data[0]["field"] == "input_data.times"


async def test_deleting_a_workflow_deletes_its_presets(service: Service) -> None:
    wf = await service.push(GREETER, name="greeter")
    ex = await service.call("example_upsert", workflow_sid=wf["sid"], name="a", input_values={"who": "A"})
    assert await service.call("workflow_delete", sid=wf["sid"]) is True
    assert (await _error(service, "example_fetch", sid=ex["sid"])).code == -32001
    again = await service.push(GREETER, name="greeter")
    assert await service.call("example_list", workflow_sid=again["sid"]) == []


async def test_the_library_methods_are_in_the_openrpc_document(service: Service) -> None:
    doc = await service.call("rpc.discover")
    params = {m["name"]: [p["name"] for p in m["params"]] for m in doc["methods"]}
    assert params["example_upsert"][:6] == ["workflow_sid", "name", "input_values", "description", "version_sid", "expected_output"]
    assert params["benchmark_run"] == ["version_sid", "example_sids", "repeats"]
    assert params["pick_version"] == ["workflow_sid", "cost_weight", "speed_weight", "accuracy_weight", "min_accuracy"]
    assert params["flow_library_search"] == ["query", "limit"]
    assert params["play_start"][-3:] == ["pick", "idempotency_key", "deadline_ms"]
    for name in ("example_fetch", "example_list", "example_delete", "example_to_input_data", "benchmark_list_for_workflow",
                 "benchmark_list_for_version", "benchmark_latest_for_version"):
        assert name in params
