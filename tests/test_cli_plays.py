"""Plays from the terminal: ``hero_logic plays`` with its filters, and ``hero_logic retry``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from hero_logic.kernel import now_ms

from ._cli_kit import cli

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Service

GATED = """
import os
from hero_tracing import flow

@flow
def prepare(n: int):
    return n * 2

@flow
def check(gate: str):
    if not os.path.exists(gate):
        raise flow.Failed(f"the gate {gate} is closed")
    return "open"

@flow(name="gated")
def main(gate: str):
    return {"prepared": prepare(n=21), "check": check(gate=gate)}
"""

ECHO = """
from hero_tracing import flow

@flow(name="echo")
def main(text: str):
    if text == "boom":
        raise flow.Failed("asked to fail")
    return text
"""


async def test_plays_filters_by_status_workflow_name_and_age(service: Service) -> None:
    echo = await service.push(ECHO, name="echo")
    gated = await service.push(GATED, name="gated")
    ok = await service.call("play_start", workflow_sid=echo["sid"], input_data={"text": "hi"}, name="nightly-report")
    await service.call("play_wait", play_sid=ok)
    boom = await service.call("play_start", workflow_sid=echo["sid"], input_data={"text": "boom"}, name="adhoc")
    await service.call("play_wait", play_sid=boom)
    closed = (await service.run(gated, gate="/nonexistent/gate"))["sid"]

    code, out = await cli(service, "plays", "--status", "failed")
    assert code == 0
    assert "hero_logic is running" not in out  # not the service's --status
    assert boom in out
    assert closed in out
    assert ok not in out
    _, out = await cli(service, "plays", "--status", "failed", "--workflow", "echo")
    assert boom in out
    assert closed not in out
    _, out = await cli(service, "plays", "--name", "NIGHTLY")  # a part of the name, any case
    assert ok in out
    assert boom not in out
    assert "nightly-report" in out  # the table shows play names
    _, out = await cli(service, "plays", "--since", "10m", "--json")
    assert {p["sid"] for p in json.loads(out)} == {ok, boom, closed}
    _, out = await cli(service, "plays", "--since", "2999-01-01", "--json")
    assert json.loads(out) == []
    _, out = await cli(service, "plays", "--since", "2000-01-01T00:00:00+00:00", "--status", "success", "--json")
    assert [p["sid"] for p in json.loads(out)] == [ok]
    _, out = await cli(service, "plays", "--limit", "1", "--json")
    assert [p["sid"] for p in json.loads(out)] == [closed]  # newest first
    _, out = await cli(service, "plays", "--since", "2999-01-01")
    assert "no plays match" in out

    code, out = await cli(service, "plays", "--status", "broken", check=False)
    assert code == 2
    assert "'broken'" in out
    assert "awaiting_resume" in out  # the statuses there are
    code, out = await cli(service, "plays", "--since", "yesterday", check=False)
    assert code == 2
    assert "'yesterday'" in out
    assert "10m, 2h, 1d" in out
    code, out = await cli(service, "plays", "--workflow", "nope", check=False)
    assert code == 1
    assert "no workflow named or with sid 'nope'" in out


async def test_retry_runs_a_failed_play_again_optionally_reusing_finished_steps(service: Service, root: Path) -> None:
    gated = await service.push(GATED, name="gated")
    gate = root / "gate"
    failed = await service.run(gated, gate=str(gate))
    assert failed["status"] == "failed"
    gate.touch()

    code, out = await cli(service, "retry", failed["sid"], "--reuse-steps")
    assert code == 0, out
    retried = (await service.call("play_list", status="success"))[0]
    assert f"retrying play {failed['sid']} as play {retried['sid']}, reusing its finished steps" in out
    assert retried["input_data"] == failed["input_data"]
    assert retried["workflow_version_sid"] == failed["workflow_version_sid"]
    spans = {s["name"]: s for s in await service.call("play_spans", play_sid=retried["sid"])}
    assert spans["prepare"]["status"] == "replayed"
    assert "(from cache)" in out
    assert '"check": "open"' in out

    before = now_ms()
    _, out = await cli(service, "retry", failed["sid"], "--json")
    fresh = json.loads(out)["play"]
    assert fresh["created_at"] >= before
    spans = {s["name"]: s for s in await service.call("play_spans", play_sid=fresh["sid"])}
    assert spans["prepare"]["status"] == "ok"  # without --reuse-steps every step runs afresh

    _, out = await cli(service, "retry", failed["sid"], "--no-wait")
    assert out.strip().startswith("play_")
    code, out = await cli(service, "retry", "play_nope", check=False)
    assert code == 1
    assert "play_nope" in out
