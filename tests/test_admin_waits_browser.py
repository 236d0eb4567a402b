"""The admin's cards for waits, in a real browser: a sleep's wake time with a countdown and
"Wake now", an event wait's key with a form that sends the event, a wait_any's branches and
deadline."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio

from . import test_admin_browser as kit
from ._admin_kit import start_admin

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser

    from .conftest import Service

pytestmark = pytest.mark.browser

WAITS = """
from hero_tracing import flow

@flow(name="waits")
def main(mode: str):
    if mode == "sleep":
        flow.sleep(3600)
        return "awake"
    if mode == "event":
        return flow.wait_event("deploy:done", timeout=3600)
    return list(flow.wait_any(timeout=3600, ok=flow.on_answer("ok?", schema={"type": "boolean"}), paid=flow.on_event("pay:1")))
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[kit.BrowserThread]:
    """Chromium in its own thread (the admin browser tests' own)."""
    yield from kit.browser.__wrapped__()


async def _waiting(service: Service, mode: str) -> str:
    wf = await service.call("workflow_list")
    sid = next((w["sid"] for w in wf if w["name"] == "waits"), None) or (await service.push(WAITS, name="waits"))["sid"]
    play_sid: str = await service.call("play_start", workflow_sid=sid, input_data={"mode": mode})
    with trio.fail_after(20):
        while (await service.call("play_status", play_sid=play_sid))["status"] != "awaiting_resume":
            await trio.sleep(0.02)
    return play_sid


async def _ended(service: Service, play_sid: str) -> dict:  # type: ignore[type-arg]
    with trio.fail_after(20):
        while (play := await service.call("play_status", play_sid=play_sid))["status"] not in ("success", "failed"):
            await trio.sleep(0.05)
    return play  # type: ignore[no-any-return]


async def test_a_sleeping_play_shows_its_wake_time_and_wakes_now(service: Service, nursery: trio.Nursery, browser: kit.BrowserThread) -> None:
    host = await start_admin(service, nursery)
    play_sid = await _waiting(service, "sleep")

    def wake(b: Browser) -> None:
        from playwright.sync_api import expect

        page, errors = kit.open_page(b, f"http://{host}/plays/{play_sid}")
        card = page.locator('.wait-card[data-kind="timer"]')
        expect(card).to_contain_text("Sleeping (sleep)")
        expect(card.locator(".countdown")).to_have_text(kit.re.compile(r"in (59 m|1 h)"))
        card.get_by_role("button", name="Wake now").click()
        expect(page.locator("#play-status .pill")).to_have_attribute("data-status", "success")
        assert not errors, errors
        page.close()

    await browser(wake)
    play = await _ended(service, play_sid)
    assert play["received_resumes"][0]["via"] == "rpc"


async def test_an_event_wait_shows_its_key_and_sends_the_event(service: Service, nursery: trio.Nursery, browser: kit.BrowserThread) -> None:
    host = await start_admin(service, nursery)
    play_sid = await _waiting(service, "event")

    def send(b: Browser) -> None:
        from playwright.sync_api import expect

        page, errors = kit.open_page(b, f"http://{host}/plays/{play_sid}")
        card = page.locator('.wait-card[data-kind="event"]')
        expect(card.locator("h2")).to_contain_text("deploy:done")
        expect(card.locator(".countdown")).to_be_visible()
        card.locator("textarea").fill('{"version": 3}')
        card.get_by_role("button", name="Send event").click()
        expect(page.locator("#play-status .pill")).to_have_attribute("data-status", "success")
        expect(page.locator("#play-output")).to_contain_text('"version": 3')
        assert not errors, errors
        page.close()

    await browser(send)


async def test_a_wait_any_shows_its_branches_and_deadline(service: Service, nursery: trio.Nursery, browser: kit.BrowserThread) -> None:
    host = await start_admin(service, nursery)
    play_sid = await _waiting(service, "any")

    def answer(b: Browser) -> None:
        from playwright.sync_api import expect

        page, errors = kit.open_page(b, f"http://{host}/plays/{play_sid}")
        card = page.locator('.wait-card[data-kind="group"]')
        expect(card.locator("h2")).to_have_text("Waiting for the first of: ok, paid")
        expect(card.locator(".event-form")).to_have_count(1)
        expect(card.locator(".wait-deadline")).to_contain_text("times out at")
        card.get_by_role("button", name="Yes").click()
        expect(page.locator("#play-status .pill")).to_have_attribute("data-status", "success")
        assert not errors, errors
        page.close()

    await browser(answer)
    play = await _ended(service, play_sid)
    assert play["output_data"] == ["ok", True]
    assert {w["branch"] for w in play["withdrawn_resumes"]} == {"paid", "timeout"}
