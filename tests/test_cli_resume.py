"""``hero_logic resume``: the question as the flow asked it, its options, and a clean exit when
no answer comes (end of input, Ctrl-C)."""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import trio

from hero_logic.cli._answers import parse_answer
from hero_logic.cli._report import describe_pause

from ._cli_kit import cli, cli_env

if TYPE_CHECKING:
    from .conftest import Service

ASKER = """
from hero_tracing import ask_user, flow

@flow(name="asker")
def main():
    size = ask_user.choice("Which size fits you?", options=["S", "M", "L"], name="size")
    count = ask_user.number("How many?", minimum=1, maximum=5, integer=True)
    return {"size": size, "count": count}
"""


async def _paused(service: Service) -> dict[str, Any]:
    wf = await service.push(ASKER, name="asker")
    play = await service.run(wf)
    assert play["status"] == "awaiting_resume"
    return play


def _pause(**fields: Any) -> dict[str, Any]:
    return {"id": "r1", "name": "q", "schema": None, "ui": None, "play_sid": "play_x", **fields}


def test_a_pause_is_described_by_its_prompt_options_and_what_answer_fits() -> None:
    choice = describe_pause(_pause(name="size", schema={"enum": ["S", "M"]}, ui={"kind": "choice", "prompt": "Which size?", "options": ["S", "M"]}))
    assert choice.splitlines()[0] == "Which size?"
    assert "  1. S" in choice
    assert "  2. M" in choice
    assert "the option's number or text" in choice
    assert "pause 'size'" in choice  # the name, since it is not the prompt
    assert "resume id r1" in choice
    number = describe_pause(_pause(schema={"type": "integer", "minimum": 1, "maximum": 5}, ui={"kind": "number", "prompt": "How many?", "integer": True, "minimum": 1, "maximum": 5}))
    assert "a whole number from 1 to 5" in number
    confirm = describe_pause(_pause(name="Ship?", schema={"type": "boolean"}, ui={"kind": "confirm", "prompt": "Ship?"}))
    assert "yes or no" in confirm
    assert "pause 'Ship?'" not in confirm  # the name is the prompt: said once
    text = describe_pause(_pause(schema={"type": "string", "default": "hi"}, ui={"kind": "text", "prompt": "Say?", "default": "hi"}))
    assert "empty for 'hi'" in text
    raw = describe_pause(_pause(name="approve", schema={"type": "object", "required": ["ok"]}))
    assert raw.splitlines()[0] == "approve"
    assert 'JSON matching {"type": "object", "required": ["ok"]}' in raw
    enum = describe_pause(_pause(schema={"enum": ["red", "blue"]}))
    assert "  2. blue" in enum  # options from the schema when there is no ui hint


def test_what_a_person_types_becomes_the_typed_answer() -> None:
    choice = _pause(schema={"enum": ["S", "M"]}, ui={"kind": "choice", "options": ["S", "M"]})
    assert parse_answer(choice, "2") == "M"
    assert parse_answer(choice, "S") == "S"
    multi = _pause(ui={"kind": "multi_choice", "options": ["a", "b", "c"]})
    assert parse_answer(multi, "1, c") == ["a", "c"]
    assert parse_answer(multi, "") == []
    assert parse_answer(_pause(ui={"kind": "confirm"}, schema={"type": "boolean"}), "Yes") is True
    assert parse_answer(_pause(ui={"kind": "number"}, schema={"type": "number"}), "2.5") == 2.5
    assert parse_answer(_pause(ui={"kind": "text", "default": "hi"}, schema={"type": "string", "default": "hi"}), "") == "hi"
    assert parse_answer(_pause(), '{"ok": true}') == {"ok": True}
    assert parse_answer(_pause(), "plain words") == "plain words"


async def test_resume_shows_the_question_text_and_its_options(service: Service) -> None:
    play = await _paused(service)
    _, out = await cli(service, "resume", play["sid"], "--answer", "3")
    assert "Which size fits you?" in out
    assert "1. S" in out
    assert "3. L" in out
    assert 'resumed play' in out
    assert '"L"' in out
    _, out = await cli(service, "resume", play["sid"], "--answer", "9", check=False)
    assert "How many?" in out
    assert "a whole number from 1 to 5" in out
    assert "does not fit" in out


async def test_resume_asks_again_until_the_answer_fits(service: Service) -> None:
    play = await _paused(service)
    code, out = await cli(service, "resume", play["sid"], "--wait", stdin=b"XL\n2\n")
    assert code == 0, out
    assert "does not fit" in out
    assert '"M"' in out
    assert "How many?" in out  # --wait: the next question


async def test_resume_at_end_of_input_exits_1_with_one_line(service: Service) -> None:
    play = await _paused(service)
    result = await trio.run_process(
        [sys.executable, "-m", "hero_logic.cli", "resume", play["sid"]],
        env=cli_env(service), stdin=b"", capture_stdout=True, capture_stderr=True, check=False,
    )
    err = result.stderr.decode()
    assert result.returncode == 1
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert "no answer given" in err
    assert f"hero_logic resume {play['sid']} --answer" in err  # the way to answer without a prompt
    assert (await service.call("play_status", play_sid=play["sid"]))["status"] == "awaiting_resume"


async def test_resume_interrupted_exits_130_with_one_line(service: Service) -> None:
    play = await _paused(service)
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "hero_logic.cli", "resume", play["sid"]],
        env=cli_env(service), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    seen = b""
    with trio.fail_after(30):
        while b"answer>" not in seen:
            chunk = await proc.stdout.receive_some()
            assert chunk, seen.decode()
            seen += chunk
        # A SIGINT that lands between the prompt and the read() would only be noticed once
        # read() returns: wait until the process sleeps in it, as it does under a person.
        stat = trio.Path(f"/proc/{proc.pid}/stat")
        while (await stat.read_text()).rpartition(")")[2].split()[0] != "S":
            await trio.sleep(0.01)
        await trio.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        err = b""
        while chunk := await proc.stderr.receive_some():
            err += chunk
        code = await proc.wait()
    assert code == 130
    text = err.decode()
    assert "Traceback" not in text
    assert len(text.strip().splitlines()) == 1, text
    assert "interrupted" in text
    assert "no answer sent" in text
    assert (await service.call("play_status", play_sid=play["sid"]))["status"] == "awaiting_resume"
