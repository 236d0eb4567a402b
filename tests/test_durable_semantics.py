"""What a flow sees on its first run and on every replay, through a real service.

A play re-runs its source on each resume and recovery; finished steps answer from what was
stored instead of running. These tests pin the rules docs/durable.md states: a step returns
the stored (JSON) value on every run, the first included; a step that raised is recorded and
raises the same way again without running; a step's side effect happens once however often
the play resumes, while code outside any finished step runs again on every run. Each flow
appends to a file in the play's workdir, so a test counts how often a body really ran.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from hero_logic.rpc import AsyncClient
from hero_logic.server import serve

from .conftest import Service, make_config

if TYPE_CHECKING:
    from pathlib import Path

EFFECT = """
from hero_tracing import ask_user, flow

def effect(text):
    with open("effects.txt", "a") as f:
        f.write(text + "\\n")
"""


def _effects(config: Any, play_sid: str) -> list[str]:
    path = config.play_workdir(play_sid) / "effects.txt"
    return path.read_text().splitlines() if path.exists() else []


async def _resume_all(service: Service, play: dict[str, Any], payloads: list[Any]) -> dict[str, Any]:
    """Answer the play's one pending pause with each payload in turn; the play as it ends."""
    for payload in payloads:
        assert play["status"] == "awaiting_resume", play["error_message"]
        (pending,) = play["pending_resumes"]
        await service.call("play_resume", play_sid=play["sid"], resume_id=pending["id"], payload=payload)
        play = await service.call("play_wait", play_sid=play["sid"], timeout_ms=20000)
    return play


async def test_a_step_that_raises_does_not_rerun_on_resume(service: Service) -> None:
    """The failure is recorded; the resumed run raises it again (same class) without the body."""
    wf = await service.push(
        EFFECT
        + """
class Declined(Exception):
    pass

@flow
def charge(amount: int):
    effect(f"charge {amount}")
    raise Declined(f"card declined for {amount}")

@flow(name="checkout")
def main():
    try:
        charge(amount=5)
        outcome = "charged"
    except Declined as exc:
        outcome = f"declined: {exc}"
    effect(outcome)
    ok = ask_user.confirm("Try another card?")
    return {"outcome": outcome, "ok": ok}
""",
        name="checkout",
    )
    play = await service.run(wf)
    play = await _resume_all(service, play, [True])
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == {"outcome": "declined: card declined for 5", "ok": True}
    assert _effects(service.config, play["sid"]) == [
        "charge 5",  # once: the resumed run replayed the failure
        "declined: card declined for 5",
        "declined: card declined for 5",  # the same class, caught by the same except
    ]
    spans = await service.call("play_spans", play_sid=play["sid"])
    (charge,) = [s for s in spans if s["name"] == "charge"]
    assert charge["status"] == "replayed"
    assert "Declined: card declined for 5" in charge["error"]  # what its first run recorded


async def test_a_tuple_or_int_key_returning_step_gives_identical_values_on_first_run_and_replay(
    service: Service,
) -> None:
    """A step's caller gets the stored JSON value on the first run too: a list, str keys."""
    wf = await service.push(
        EFFECT
        + """
@flow
def make_shapes():
    return {"pair": (1, 2), "by_id": {1: "one"}}

@flow(name="shapes")
def main():
    value = make_shapes()
    seen = (
        f"{type(value['pair']).__name__} {value['pair']} "
        f"{sorted(type(k).__name__ for k in value['by_id'])} {value['by_id'].get(1)!r}"
    )
    effect(seen)  # outside any step: written by every run
    ask_user.confirm("Go on?")
    return {"seen": seen}
""",
        name="shapes",
    )
    play = await service.run(wf)
    play = await _resume_all(service, play, [True])
    assert play["status"] == "success", play["error_message"]
    first, replayed = _effects(service.config, play["sid"])
    assert first == replayed == "list [1, 2] ['str'] None"
    assert play["output_data"] == {"seen": first}


async def test_a_side_effect_before_a_pause_happens_once_across_three_resumes(service: Service) -> None:
    """Inside a step that finished or raised: once. In the flow's own body: once per run."""
    wf = await service.push(
        EFFECT
        + """
@flow
def send_email(to: str):
    effect(f"email {to}")
    return "sent"

@flow
def post_webhook():
    effect("webhook")
    raise ConnectionError("the receiver answered 503")

@flow(name="notify")
def main():
    send_email(to="ops")
    try:
        post_webhook()
    except ConnectionError:
        pass
    effect("body")  # not in a step: this line repeats
    answers = [ask_user.text(f"Note {i}?", name=f"note{i}") for i in range(3)]
    return {"answers": answers}
""",
        name="notify",
    )
    play = await service.run(wf)
    play = await _resume_all(service, play, ["a", "b", "c"])
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == {"answers": ["a", "b", "c"]}
    effects = _effects(service.config, play["sid"])
    assert effects.count("email ops") == 1
    assert effects.count("webhook") == 1
    assert effects.count("body") == 4  # the first run and three resumes


async def test_an_exception_that_cannot_be_rebuilt_is_step_failed_on_every_run(service: Service) -> None:
    """A class defined in a function cannot be found again: the caller gets flow.StepFailed,
    on the first run as on replay, carrying the original type name and message."""
    wf = await service.push(
        EFFECT
        + """
@flow
def parse():
    class BadInput(Exception):
        pass
    effect("parse")
    raise BadInput("line 3 is empty")

@flow(name="parsing")
def main():
    try:
        parse()
        seen = "parsed"
    except flow.StepFailed as exc:
        seen = f"{exc.type_name}: {exc.message}"
    effect(seen)
    ask_user.confirm("Go on?")
    return {"seen": seen}
""",
        name="parsing",
    )
    play = await service.run(wf)
    play = await _resume_all(service, play, [True])
    assert play["status"] == "success", play["error_message"]
    seen = "__hero_flow__.parse.<locals>.BadInput: line 3 is empty"
    assert _effects(service.config, play["sid"]) == ["parse", seen, seen]


async def test_a_step_that_raised_is_not_rerun_by_crash_recovery(root: Path) -> None:
    """A service stop leaves the play running; the recovered run replays the failure."""
    config = make_config(root)
    source = (
        EFFECT
        + """
import time

@flow
def reserve():
    effect("reserve")
    raise RuntimeError("no seats left")

@flow(name="booking")
def main():
    try:
        reserve()
    except RuntimeError as exc:
        effect(f"caught {exc}")
    time.sleep(60)
"""
    )
    play_sid = ""
    for attempt in (1, 2):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, config)
            async with AsyncClient(config.rpc_socket) as client:
                svc = Service(config, client)
                if not play_sid:
                    wf = await svc.push(source, name="booking")
                    play_sid = await svc.call("play_start", workflow_sid=wf["sid"])
                with trio.fail_after(20):
                    while True:
                        play = await svc.call("play_status", play_sid=play_sid)
                        spans = await svc.call("play_spans", play_sid=play_sid)
                        stored = any(s["name"] == "reserve" and s["end_ms"] for s in spans)
                        if play["attempts"] == attempt and stored and len(_effects(config, play_sid)) >= attempt + 1:
                            break
                        await trio.sleep(0.05)
            nursery.cancel_scope.cancel()  # the service stops; the play stays "running"
    assert _effects(config, play_sid) == ["reserve", "caught no seats left", "caught no seats left"]
