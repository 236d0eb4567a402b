"""The approval page in a real browser (Debian's chromium, tests/_browser_kit.py): a person
opens the link a paused play gives, over the ingress's TCP address, answers the question with
the form, and the play goes on with that answer, recorded ``via: url``. The page needs no
JavaScript: it works the same with scripts turned off."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ._browser_kit import WAIT_MS, BrowserThread, launch_browser
from ._ingress_kit import ASK, open_ingress

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    import httpx
    import trio
    from playwright.sync_api import Browser

    from .conftest import Service

pytestmark = pytest.mark.browser

NOTE = """
from hero_tracing import flow, ask_user

@flow(name="note")
def main() -> dict:
    note = ask_user.text("Anything to add?")
    sure = ask_user.confirm("Send it?")
    return {"note": note, "sure": sure}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserThread]:
    yield from launch_browser(admin=False)


@pytest.fixture
async def tcp(root: Path, nursery: trio.Nursery) -> AsyncIterator[tuple[Service, httpx.AsyncClient]]:
    """A service whose ingress listens on a free loopback port (the browser needs TCP)."""
    async with open_ingress(root, nursery, tcp=True) as served:
        yield served
    nursery.cancel_scope.cancel()


async def _question(service: Service, play_sid: str) -> dict[str, Any]:
    """The one open question of a play, once it is waiting for it (with its ``url``)."""
    play = await service.call("play_wait", play_sid=play_sid, timeout_ms=20000)
    assert play["status"] == "awaiting_resume", play["error_message"]
    (question,) = play["pending_resumes"]
    assert question["url"].startswith(f"http://{service.config.webhook_bind}/r/")
    return question  # type: ignore[no-any-return]


async def test_a_person_answers_a_choice_and_a_confirm_on_the_approval_page(tcp: tuple[Service, httpx.AsyncClient], browser: BrowserThread) -> None:
    service, _web = tcp
    wf = await service.push(ASK, name="ask")
    play_sid = await service.call("play_start", workflow_sid=wf["sid"])
    choice = await _question(service, play_sid)

    def pick(b: Browser, url: str) -> None:
        from playwright.sync_api import expect

        page = b.new_page()
        page.set_default_timeout(WAIT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        expect(page.locator("h1")).to_have_text("Which size?")
        expect(page.locator("select option")).to_have_text(["S", "M", "L"])
        page.select_option("select", label="L")
        page.get_by_label("Your name (optional)").fill("Ann")
        page.get_by_role("button", name="Send").click()
        expect(page.locator("h1")).to_have_text("Thank you")
        page.goto(url)  # the link again: the question is answered, and says with what
        expect(page.locator("h1")).to_have_text("Already answered")
        expect(page.locator("body")).to_contain_text('"L"')
        assert not errors, errors
        page.close()

    await browser(pick, choice["url"])
    confirm = await _question(service, play_sid)

    def yes(b: Browser, url: str) -> None:
        from playwright.sync_api import expect

        page = b.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(url)
        expect(page.locator("h1")).to_have_text("Ship it?")
        page.get_by_role("button", name="Yes").click()
        expect(page.locator("h1")).to_have_text("Thank you")
        page.close()

    await browser(yes, confirm["url"])
    play = await service.call("play_wait", play_sid=play_sid, timeout_ms=20000)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == {"size": "L", "ok": True}
    received = [(r["name"], r["payload"], r["via"], r["answered_by"]) for r in play["received_resumes"]]
    assert received == [(choice["name"], "L", "url", "Ann"), (confirm["name"], True, "url", "")]


async def test_the_page_works_with_javascript_turned_off(tcp: tuple[Service, httpx.AsyncClient], browser: BrowserThread) -> None:
    service, _web = tcp
    wf = await service.push(NOTE, name="note")
    play_sid = await service.call("play_start", workflow_sid=wf["sid"])
    text = await _question(service, play_sid)

    def answer(b: Browser, url: str, fill: str | None, button: str) -> None:
        from playwright.sync_api import expect

        context = b.new_context(java_script_enabled=False)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(url)
        if fill is not None:
            page.get_by_label("Your answer").fill(fill)
        page.get_by_role("button", name=button).click()
        expect(page.locator("h1")).to_have_text("Thank you")
        context.close()

    await browser(answer, text["url"], "ship on Friday", "Send")
    confirm = await _question(service, play_sid)
    await browser(answer, confirm["url"], None, "No")
    play = await service.call("play_wait", play_sid=play_sid, timeout_ms=20000)
    assert play["status"] == "success", play["error_message"]
    assert play["output_data"] == {"note": "ship on Friday", "sure": False}
    assert [(r["payload"], r["via"]) for r in play["received_resumes"]] == [("ship on Friday", "url"), (False, "url")]
