"""Versions: each carries its own signature, a bad source is refused with its line, plays stay pinned."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from hero_logic.rpc import RpcError

if TYPE_CHECKING:
    from .conftest import Service

V1 = """
from hero_tracing import ask_user, flow

@flow(name="greet", inputs={"who": {"type": "string", "required": True}}, outputs={"text": "string"})
def main(who):
    ask_user.confirm("go?", name="go")
    return {"text": f"v1 {who}"}
"""
V2 = """
from hero_tracing import flow

@flow(name="greet", inputs={"count": {"type": "integer", "default": 2}}, outputs={"text": "string", "n": "integer"})
def main(count=2):
    return {"text": "v2", "n": count}
"""


async def _error(service: Service, method: str, **params: Any) -> RpcError:
    with pytest.raises(RpcError) as info:
        await service.call(method, **params)
    return info.value


async def test_each_version_has_its_own_signature_and_the_workflow_follows_the_current(service: Service) -> None:
    wf = await service.push(V1, name="greet")
    v2 = await service.call("workflow_create_version", workflow_sid=wf["sid"], python_source=V2, make_current=False, notes="no pause")
    assert [f["name"] for f in v2["inputs"]] == ["count"]
    assert [f["name"] for f in v2["outputs"]] == ["text", "n"]
    assert [f["name"] for f in (await service.call("workflow_get", sid=wf["sid"]))["inputs"]] == ["who"]
    current = await service.call("workflow_set_current_version", workflow_sid=wf["sid"], version_sid=v2["sid"])
    assert [f["name"] for f in current["inputs"]] == ["count"]
    assert [v["version_label"] for v in await service.call("workflow_version_list", workflow_sid=wf["sid"])] == ["v1", "v2"]


async def test_a_play_stays_on_the_version_it_started_on(service: Service) -> None:
    wf = await service.push(V1, name="greet")
    paused = await service.run(wf, who="Ada")
    assert paused["status"] == "awaiting_resume"
    await service.call("workflow_create_version", workflow_sid=wf["sid"], python_source=V2)  # now current
    await service.call("play_resume", play_sid=paused["sid"], resume_id="go", payload=True)
    done = await service.call("play_wait", play_sid=paused["sid"], timeout_ms=20000)
    assert done["output_data"] == {"text": "v1 Ada"}  # the resume re-ran v1, not the new current
    assert done["workflow_version_sid"] == wf["current_version_sid"]


async def test_a_version_with_a_syntax_error_or_no_flow_is_refused_with_line_and_reason(service: Service) -> None:
    wf = await service.push(V1, name="greet")
    err = await _error(service, "workflow_create_version", workflow_sid=wf["sid"], python_source="from hero_tracing import flow\n\n@flow\ndef main(:\n    pass\n")
    assert err.code == -32602
    assert err.data[0]["field"] == "python_source"
    assert err.data[0]["line"] == 4
    assert "line 4" in err.message
    err = await _error(service, "workflow_create_version", workflow_sid=wf["sid"], python_source="def main():\n    return 1\n")
    assert err.code == -32602
    assert "@flow" in err.message
    assert len(await service.call("workflow_version_list", workflow_sid=wf["sid"])) == 1


async def test_version_methods_name_unknown_or_foreign_sids(service: Service) -> None:
    wf = await service.push(V1, name="greet")
    other = await service.push(V2, name="other")
    assert (await _error(service, "workflow_version_fetch", version_sid="ver_nope")).code == -32001
    assert (await _error(service, "workflow_version_list", workflow_sid="wf_nope")).code == -32001
    assert (await _error(service, "workflow_create_version", workflow_sid="wf_nope", python_source=V2)).code == -32001
    assert (await _error(service, "workflow_set_current_version", workflow_sid=wf["sid"], version_sid="ver_nope")).code == -32001
    err = await _error(service, "workflow_set_current_version", workflow_sid=wf["sid"], version_sid=other["current_version_sid"])
    assert err.code == -32602
    assert err.data[0]["field"] == "version_sid"
    err = await _error(service, "play_start", workflow_sid=wf["sid"], version_sid=other["current_version_sid"], input_data={"who": "x"})
    assert err.data[0]["field"] == "version_sid"
