"""The hero_logic command as a person uses it, against a real service."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from .conftest import Service

EXAMPLE = Path(__file__).parent.parent / "examples" / "flows" / "hello.py"


async def _cli(service: Service, *args: str, check: bool = True) -> tuple[int, str]:
    env = {**os.environ, "PATH_ROOT": str(service.config.root), "COLUMNS": "200", "NO_COLOR": "1"}
    result = await trio.run_process(
        [sys.executable, "-m", "hero_logic.cli", *args], env=env, capture_stdout=True, capture_stderr=True, check=False
    )
    out = result.stdout.decode() + result.stderr.decode()
    if check:
        assert result.returncode == 0, out
    return result.returncode, out


async def test_push_run_list_and_show_a_tree(service: Service) -> None:
    _, out = await _cli(service, "flow", "push", str(EXAMPLE))
    assert "created workflow hello" in out
    _, out = await _cli(service, "flow", "push", str(EXAMPLE), "--notes", "again")
    assert "new version v2" in out
    _, out = await _cli(service, "run", "hello", "-i", "who=Ada", "-i", "times=2")
    assert "hello Ada! hello Ada!" in out
    assert "warm-up" in out
    assert "double" in out
    assert "success" in out
    play_sid = (await service.call("play_list", limit=1))[0]["sid"]
    _, out = await _cli(service, "plays")
    assert play_sid in out
    assert "hello" in out
    _, out = await _cli(service, "tree", play_sid)
    assert "double" in out
    assert "doubled=" in out
    code, out = await _cli(service, "run", "hello", "-i", "who=  ", check=False)
    assert code == 1
    assert "nobody to greet" in out
    code, out = await _cli(service, "run", "hello", "-i", "times=many", check=False)
    assert code != 0
    assert "times" in out


async def test_resume_validates_the_answer_before_sending(service: Service) -> None:
    await service.push(
        """
        from hero_tracing import ask_user, flow

        @flow(name="pick")
        def main():
            return {"size": ask_user.choice("Which size?", options=["S", "M", "L"])}
        """,
        name="pick",
    )
    _, out = await _cli(service, "run", "pick")
    assert "waiting for an answer to:" in out
    assert "Which size?" in out
    (play,) = await service.call("play_list", status="awaiting_resume")
    assert f"hero_logic resume {play['sid']}" in out  # the command that answers it, sid uncut
    code, out = await _cli(service, "resume", play["sid"], "--answer", "XL", check=False)
    assert code == 1
    assert "does not fit" in out
    assert (await service.call("play_status", play_sid=play["sid"]))["status"] == "awaiting_resume"
    _, out = await _cli(service, "resume", play["sid"], "--answer", "2", "--wait")
    assert "Which size?" in out
    assert '"M"' in out
    assert (await service.call("play_status", play_sid=play["sid"]))["output_data"] == {"size": "M"}


async def test_cli_without_a_service_says_how_to_start_it(root: Path) -> None:
    env = {**os.environ, "PATH_ROOT": str(root)}
    result = await trio.run_process(
        [sys.executable, "-m", "hero_logic.cli", "plays"], env=env, capture_stderr=True, check=False
    )
    assert result.returncode == 1
    assert b"hero_logic --start" in result.stderr


async def test_background_service_start_status_stop(root: Path) -> None:
    env = {**os.environ, "PATH_ROOT": str(root), "HERO_LOGIC_SANDBOX": "env_scrub"}

    async def cli(*args: str) -> tuple[int, str]:
        result = await trio.run_process(
            [sys.executable, "-m", "hero_logic.cli", *args], env=env, capture_stdout=True, capture_stderr=True, check=False
        )
        return result.returncode, (result.stdout + result.stderr).decode()

    code, out = await cli("--status")
    assert code == 3
    assert "not running" in out
    code, out = await cli("--start")
    assert code == 0, out
    try:
        pid = int((root / "var" / "hero_logic" / "hero_logic.pid").read_text())
        code, out = await cli("--status")
        assert code == 0
        assert str(pid) in out
        code, out = await cli("--start")
        assert code == 0
        assert "already running" in out
    finally:
        code, out = await cli("--stop")
    assert code == 0
    assert "stopped" in out
    code, _ = await cli("--status")
    assert code == 3
    code, out = await cli("--info")
    assert code == 0
    assert "hero_logic_server" in out
    assert "PATH_ROOT" in out


async def test_search_finds_flows_despite_a_typo(service: Service) -> None:
    await service.push(
        """
        from hero_tracing import flow

        @flow(name="invoice_total", description="Adds up the lines of an invoice")
        def main(lines: list):
            return sum(lines)
        """,
        name="invoice_total",
    )
    _, out = await _cli(service, "search", "invoce")
    assert "invoice_total" in out
    code, out = await _cli(service, "search", "zzzqqq", check=False)
    assert code == 1
    assert "no flow matches" in out
