"""The schedules panel of the workflow page, in a real browser: create a schedule, see its next
fire time, pause it, run it now and see its play, and its missed ticks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from . import test_admin_browser as kit
from ._admin_kit import start_admin

if TYPE_CHECKING:
    from collections.abc import Iterator

    import trio
    from playwright.sync_api import Browser

    from .conftest import Service

pytestmark = pytest.mark.browser

TICKER = """
from hero_tracing import flow

@flow(name="ticker")
def main(n: int = 0):
    return n
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[kit.BrowserThread]:
    """Chromium in its own thread (the admin browser tests' own)."""
    yield from kit.browser.__wrapped__()


async def test_the_workflow_page_creates_pauses_and_runs_a_schedule(service: Service, nursery: trio.Nursery, browser: kit.BrowserThread) -> None:
    host = await start_admin(service, nursery)
    wf = await service.push(TICKER, name="ticker")

    def drive(b: Browser) -> None:
        from playwright.sync_api import expect

        page, errors = kit.open_page(b, f"http://{host}/workflows/{wf['sid']}")
        panel = page.locator("#schedules")
        expect(panel).to_contain_text("No schedules.")
        panel.locator("#schedule-name").fill("morning")
        panel.locator("#schedule-timing").fill("0 9 * * *")
        panel.locator("#schedule-timezone").fill("Europe/Paris")
        panel.locator("#schedule-overlap").select_option("buffer_one")
        panel.locator("#schedule-create").click()
        row = panel.locator("tr.schedule")
        expect(row).to_contain_text("morning")
        expect(row).to_contain_text("0 9 * * * · Europe/Paris")
        expect(row.locator(".missed")).to_have_text("0")
        row.get_by_role("button", name="Pause").click()
        expect(row.locator(".next-fire")).to_contain_text("paused")
        row.get_by_role("button", name="Run now").click()
        expect(row.get_by_role("link")).to_be_visible()
        row.get_by_role("button", name="Plays").click()
        expect(panel.locator("#schedule-plays")).to_contain_text("schedule:morning:")
        panel.locator("#schedule-timing").fill("61 * * * *")
        panel.locator("#schedule-create").click()
        expect(page.locator(".toast").last).to_contain_text("cron")
        assert not [e for e in errors if "61 * * * *" not in e], errors
        page.close()

    await browser(drive)
    (schedule,) = await service.call("schedule_list", workflow_sid=wf["sid"])
    assert (schedule["name"], schedule["paused"], schedule["overlap"]) == ("morning", True, "buffer_one")
    assert schedule["last_play_sid"]
