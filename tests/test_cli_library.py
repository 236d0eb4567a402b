"""Presets, benchmarks and version picking from the terminal: ``hero_logic presets``,
``run --preset/--prefill``, ``bench`` and ``pick``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ._cli_kit import cli

if TYPE_CHECKING:
    from .conftest import Service

GREETER = """
from hero_tracing import ask_user, flow

@flow(
    name="greeter",
    inputs={"who": {"type": "string", "required": True}, "times": {"type": "integer", "default": 1}},
    outputs={"greeting": "string", "sent": "boolean"},
)
def main(who, times=1):
    sent = ask_user.confirm("Send it?")
    return {"greeting": f"hello {who}" * times, "sent": sent}
"""


async def _presets(service: Service, wf: dict[str, Any]) -> list[dict[str, Any]]:
    presets: list[dict[str, Any]] = await service.call("example_list", workflow_sid=wf["sid"])
    return presets


async def test_presets_save_list_run_and_delete(service: Service) -> None:
    wf = await service.push(GREETER, name="greeter")
    _, out = await cli(
        service, "presets", "save", "greeter", "ada", "-i", "who=Ada", "-i", "times=2",
        "--expect", '{"greeting": "hello Adahello Ada", "sent": true}', "--prefill", "Send it?=true",
        "--description", "the basic case",
    )
    assert "saved preset 'ada'" in out
    (preset,) = await _presets(service, wf)
    assert preset["input_values"] == {"who": "Ada", "times": 2}
    assert preset["prefill_resumes"] == {"Send it?": True}
    assert preset["expected_output"] == {"greeting": "hello Adahello Ada", "sent": True}
    _, out = await cli(service, "presets", "list", "greeter")
    assert "ada" in out
    assert preset["sid"] in out
    assert "the basic case" in out
    _, out = await cli(service, "presets", "list", "greeter", "--json")
    assert json.loads(out)[0]["sid"] == preset["sid"]

    _, out = await cli(service, "run", "greeter", "--preset", "ada")  # its prefill answers the pause
    assert '"sent": true' in out
    (play,) = await service.call("play_list", status="success")
    assert play["input_data"] == {"who": "Ada", "times": 2}
    _, out = await cli(service, "run", "greeter", "--preset", "ada", "-i", "who=Bob", "--prefill", "Send it?=false")
    assert '"greeting": "hello Bobhello Bob"' in out  # explicit values go over the preset's
    assert '"sent": false' in out

    code, out = await cli(service, "run", "greeter", "--preset", "nope", check=False)
    assert code == 1
    assert "no preset 'nope'" in out
    assert "ada" in out  # the presets there are
    code, out = await cli(service, "presets", "save", "greeter", "bad", "-i", "who=Al", "--prefill", "Send it?", check=False)
    assert code == 2  # a usage error
    assert "--prefill" in out
    assert "NAME=JSON" in out

    _, out = await cli(service, "presets", "delete", "greeter", "ada")
    assert f"deleted preset 'ada' ({preset['sid']})" in out
    assert await _presets(service, wf) == []
    code, out = await cli(service, "presets", "delete", "greeter", "ada", check=False)
    assert code == 1
    assert "no preset 'ada'" in out
    _, out = await cli(service, "presets", "list", "greeter")
    assert "no presets" in out


async def test_run_prefill_answers_a_pause_and_must_be_json(service: Service) -> None:
    wf = await service.push(GREETER, name="greeter")
    await service.call("workflow_create_version", workflow_sid=wf["sid"], python_source=GREETER, version_label="v2")
    _, out = await cli(service, "run", "greeter", "-i", "who=Al", "--prefill", "Send it?=true", "--version", "v1")
    assert '"sent": true' in out
    (play,) = await service.call("play_list")
    assert play["workflow_version_sid"] == wf["current_version_sid"]  # v1, by its label
    code, out = await cli(service, "run", "greeter", "-i", "who=Al", "--prefill", "Send it?=yes", check=False)
    assert code == 2  # a usage error
    assert "--prefill" in out
    assert "'Send it?=yes'" in out
    assert "not JSON" in out
    assert """--prefill 'Send it?="yes"'""" in out  # the fix
    code, out = await cli(service, "run", "greeter", "-i", "who=Al", "--prefill", "other=1", check=False)
    assert code == 1  # the play meets a pause with no prefilled answer: it fails fast, naming it
    assert "Send it?" in out


async def test_bench_run_show_list_and_pick(service: Service) -> None:
    wf = await service.push(GREETER, name="greeter")
    await service.call(
        "example_upsert", workflow_sid=wf["sid"], name="ada", input_values={"who": "Ada"},
        expected_output={"greeting": "hello Ada"}, prefill_resumes={"Send it?": True},
    )
    _, out = await cli(service, "bench", "run", "greeter", "--repeats", "2")
    (bench,) = await service.call("benchmark_list_for_workflow", workflow_sid=wf["sid"])
    assert bench["status"] == "done"
    assert bench["sid"] in out
    assert "2/2 runs" in out
    assert "success 100%" in out
    assert "accuracy 100%" in out
    _, out = await cli(service, "bench", "show", bench["sid"])
    assert "2/2 runs" in out
    assert wf["current_version_sid"] in out
    _, out = await cli(service, "bench", "show", bench["sid"], "--json")
    assert json.loads(out)["sid"] == bench["sid"]
    _, out = await cli(service, "bench", "list", "greeter")
    assert bench["sid"] in out
    _, out = await cli(service, "bench", "run", "greeter", "--no-wait")
    assert out.strip().startswith("bench_")

    v2 = await service.call("workflow_create_version", workflow_sid=wf["sid"], python_source=GREETER, version_label="v2", make_current=False)
    _, out = await cli(service, "pick", "greeter", "--accuracy", "1")
    assert f"picked {wf['current_version_sid']}" in out
    assert v2["sid"] in out  # every version is listed with its standing
    assert "unscored" in out
    _, out = await cli(service, "pick", "greeter", "--json")
    assert json.loads(out)["version_sid"] == wf["current_version_sid"]
    code, out = await cli(service, "bench", "run", "greeter", "--version", "v9", check=False)
    assert code == 1
    assert "no version 'v9'" in out
    assert "v2" in out  # the versions there are
    code, out = await cli(service, "pick", "greeter", "--accuracy", "0", "--speed", "0", "--cost", "0", check=False)
    assert code == 1
    assert "all 0" in out
