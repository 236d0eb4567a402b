"""Secrets (CONTRACT.md §12): encrypted at rest under a 0600 key file outside the database,
read by a flow only when its entry declares them, and redacted as ``[secret:NAME]`` from
everything stored or streamed."""

from __future__ import annotations

import json
import stat
from typing import TYPE_CHECKING, Any

import pytest
import trio

from hero_logic.rpc import RpcError, open_stream

from ._sandbox_helpers import HAVE, open_service, run_flow

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Service

SECRET = "sk-test-5f2e9c1a-ZEBRA-secret-value"

LEAKY_FLOW = """
import json, logging, os, sys, time
from hero_tracing import flow

@flow
def leak(key: str) -> str:
    flow.current_span.tag(api_key=key, nested={"deep": [key]})
    flow.current_span.log(f"the key is {key}")
    return f"step output {key}"

@flow(secrets=["API_KEY", "OTHER"])
def main():
    key = flow.secret("API_KEY")
    leak(key)
    print("printed", key)
    sys.stderr.write(f"stderr {key}\\n")
    logging.warning("logged %s", key)
    while not os.path.exists("go"):
        time.sleep(0.02)
    if os.path.exists("fail"):
        raise RuntimeError(f"failing with {key}")
    return {"echo": key, "quoted": json.dumps(key)}
"""


async def _set(svc: Service, name: str, value: str) -> dict[str, Any]:
    result: dict[str, Any] = await svc.call("secret_set", name=name, value=value)
    return result


async def test_secrets_are_listed_without_values_and_encrypted_at_rest(service: Service) -> None:
    first = await _set(service, "API_KEY", SECRET)
    assert set(first) == {"name", "created_at", "updated_at"}
    await trio.sleep(0.01)
    again = await _set(service, "API_KEY", SECRET + "-rotated")
    assert again["created_at"] == first["created_at"]
    assert again["updated_at"] > first["updated_at"]
    listed = await service.call("secret_list")
    assert listed == [again]
    key_file = service.config.secrets_key_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert service.config.db_dir not in key_file.parents
    assert await service.call("secret_delete", name="API_KEY") is True
    assert await service.call("secret_list") == []
    with pytest.raises(RpcError) as gone:
        await service.call("secret_delete", name="API_KEY")
    assert gone.value.code == -32001
    for bad in ({"name": "has space", "value": SECRET}, {"name": "OK", "value": "abc"}):
        with pytest.raises(RpcError) as refused:
            await service.call("secret_set", **bad)
        assert refused.value.code == -32602
    await _set(service, "API_KEY", SECRET)
    raw = b"".join(p.read_bytes() for p in service.config.db_dir.iterdir() if p.is_file())
    assert SECRET.encode() not in raw


async def test_a_secret_is_read_by_its_flow_and_redacted_everywhere(service: Service) -> None:
    await _set(service, "API_KEY", SECRET)
    wf = await service.push(LEAKY_FLOW)
    assert (await service.call("workflow_version_fetch", version_sid=wf["current_version_sid"]))["secrets"] == ["API_KEY", "OTHER"]
    sid = await service.call("play_start", workflow_sid=wf["sid"])
    streamed: list[str] = []
    async with open_stream(service.config.rpc_socket, f"/api/plays/{sid}/spans") as stream:
        with trio.fail_after(20):
            while not any("[secret:API_KEY]" in text and "printed" in text for text in streamed):
                text = await stream.receive_text()
                assert text is not None
                streamed.append(text)
            (service.config.play_workdir(sid) / "go").touch()
            while (text := await stream.receive_text()) is not None:
                streamed.append(text)
    play = await service.call("play_wait", play_sid=sid, timeout_ms=20000)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"]["echo"] == "[secret:API_KEY]"
    spans = await service.call("play_spans", play_sid=sid)
    everything = json.dumps([play, spans, streamed])
    assert SECRET not in everything
    assert everything.count("[secret:API_KEY]") >= 8
    logs = [line for span in spans for line in span["logs"]]
    assert "printed [secret:API_KEY]" in logs
    assert "[stderr] stderr [secret:API_KEY]" in logs
    assert any("logged [secret:API_KEY]" in line for line in logs)
    leak = next(s for s in spans if s["name"] == "leak")
    assert leak["tags"]["api_key"] == "[secret:API_KEY]"
    assert leak["tags"]["nested"] == {"deep": ["[secret:API_KEY]"]}
    raw = b"".join(p.read_bytes() for p in service.config.db_dir.iterdir() if p.is_file())
    assert SECRET.encode() not in raw
    assert b"[secret:API_KEY]" in raw


async def test_a_failing_flow_s_error_and_stderr_are_redacted(service: Service) -> None:
    await _set(service, "API_KEY", SECRET)
    wf = await service.push(LEAKY_FLOW)
    sid = await service.call("play_start", workflow_sid=wf["sid"])
    with trio.fail_after(20):
        while not service.config.play_workdir(sid).is_dir():
            await trio.sleep(0.02)
    (service.config.play_workdir(sid) / "fail").touch()
    (service.config.play_workdir(sid) / "go").touch()
    play = await service.call("play_wait", play_sid=sid, timeout_ms=20000)
    assert play["status"] == "failed"
    assert "failing with [secret:API_KEY]" in play["error_message"]
    everything = json.dumps([play, await service.call("play_spans", play_sid=sid)])
    assert SECRET not in everything


async def test_undeclared_and_unknown_secrets_fail_naming_them(service: Service) -> None:
    await _set(service, "API_KEY", SECRET)
    await _set(service, "SOMEONE_ELSES", "another flow's secret")
    undeclared = await run_flow(
        service,
        """
        from hero_tracing import flow

        @flow(secrets=["API_KEY"])
        def main():
            return flow.secret("SOMEONE_ELSES")
        """,
    )
    assert undeclared["status"] == "failed"
    assert "does not declare this secret" in undeclared["error_message"]
    assert "@flow(secrets=[...])" in undeclared["error_message"]
    assert "another flow's secret" not in json.dumps(undeclared)
    unknown = await run_flow(
        service,
        """
        from hero_tracing import flow

        @flow(secrets=["NOT_SET"])
        def main():
            return flow.secret("NOT_SET")
        """,
    )
    assert unknown["status"] == "failed"
    assert "no secret named 'NOT_SET' is stored" in unknown["error_message"]


def test_outside_a_play_a_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from hero_tracing import flow

    monkeypatch.setenv("HERO_TEST_TOKEN", "from-env")
    assert flow.secret("HERO_TEST_TOKEN") == "from-env"
    monkeypatch.delenv("HERO_TEST_TOKEN")
    with pytest.raises(flow.Failed, match="HERO_TEST_TOKEN is not set"):
        flow.secret("HERO_TEST_TOKEN")


@pytest.mark.skipif(not HAVE["bwrap"], reason="bwrap is not installed here")
async def test_a_sandboxed_flow_cannot_read_the_key_file_or_the_database(root: Path) -> None:
    async with open_service(root, "bwrap") as svc:
        await _set(svc, "API_KEY", SECRET)
        key_file = svc.config.secrets_key_file
        play = await run_flow(
            svc,
            f"""
            from hero_tracing import flow

            @flow
            def main():
                out = []
                for path in ({str(key_file)!r}, {str(svc.config.db_dir / "data.mdb")!r}):
                    try:
                        out.append(open(path, "rb").read()[:10].hex())
                    except OSError as exc:
                        out.append(type(exc).__name__)
                return out
            """,
        )
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == ["FileNotFoundError", "FileNotFoundError"]
    assert key_file.is_file()  # it exists: the sandbox only hides it


async def test_a_secret_passed_to_a_child_play_is_not_stored_in_clear(service: Service) -> None:
    await _set(service, "API_KEY", SECRET)
    await service.push(
        """
        from hero_tracing import flow

        @flow(name="child")
        def main(text: str):
            return len(text)
        """,
        name="child",
    )
    parent = await run_flow(
        service,
        """
        from hero_tracing import flow

        @flow(secrets=["API_KEY"])
        def main():
            return flow.invoke("child", spawn=True, text=flow.secret("API_KEY"))
        """,
    )
    assert parent["status"] == "success", parent["error_message"]
    child = await service.call("play_status", play_sid=parent["child_play_sids"][0])
    assert child["input_data"] == {"text": "[secret:API_KEY]"}
    raw = b"".join(p.read_bytes() for p in service.config.db_dir.iterdir() if p.is_file())
    assert SECRET.encode() not in raw
