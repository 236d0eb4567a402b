"""The admin's failed-play view in a real browser: a step's input and output in the span
inspector, the play's input, "Fork from here" on a step onto a fixed version, and "Retry on
the current version" (a fork from the failed step)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ._admin_kit import start_admin
from .test_admin_browser import BrowserThread, open_page
from .test_admin_browser import browser as browser  # the module's chromium, started once

if TYPE_CHECKING:
    import trio
    from playwright.sync_api import Browser

    from .conftest import Service

pytestmark = pytest.mark.browser

ROWS = """
from hero_tracing import flow

@flow
def enrich(row: int):
    if row == 3 and BROKEN:
        raise ValueError(f"row {row} has no customer id")
    return {"row": row, "score": row * 2}

@flow(name="rows")
def main(rows: int = 5):
    return {"total": sum(enrich(row=r)["score"] for r in range(1, rows + 1))}
"""


async def test_fork_a_failed_play_from_its_failed_step_onto_the_fixed_version(
    service: Service, nursery: trio.Nursery, browser: BrowserThread
) -> None:
    host = await start_admin(service, nursery)
    wf = await service.push(ROWS.replace("BROKEN", "True"), name="rows")
    failed = await service.run(wf, rows=5)
    assert failed["status"] == "failed"
    fixed = await service.call(
        "workflow_create_version", workflow_sid=wf["sid"], python_source=ROWS.replace("BROKEN", "False"),
        version_label="fixed",
    )

    def fork_from_here(b: Browser) -> str:
        from playwright.sync_api import expect

        page, errors = open_page(b, f"http://{host}/plays/{failed['sid']}")
        expect(page.locator("#play-input")).to_contain_text('"rows": 5')
        row3 = page.locator('#span-graph .span-row[data-kind="step"][data-status="failed"]')
        expect(row3).to_have_count(1)
        row3.click()
        expect(page.locator("#span-input")).to_contain_text('"row": 3')
        page.locator('#span-graph .span-row[data-kind="step"][data-status="ok"]').first.click()
        expect(page.locator("#span-output")).to_contain_text('"score": 2')
        row3.click()
        page.click("#fork-from-here")
        expect(page.locator("#fork-version option")).to_have_count(2)
        page.select_option("#fork-version", label="fixed (current)")
        page.click("#fork-submit")
        page.wait_for_url(lambda url: "/plays/play_" in url and failed["sid"] not in url)
        expect(page.locator("#play-status .pill")).to_have_attribute("data-status", "success")
        expect(page.locator('#span-graph .span-row[data-status="replayed"]')).to_have_count(2)
        assert not errors, errors
        fork_sid = page.url.rsplit("/", 1)[1]
        page.close()
        return fork_sid

    fork_sid = await browser(fork_from_here)
    fork = await service.call("play_status", play_sid=fork_sid)
    assert fork["workflow_version_sid"] == fixed["sid"]
    assert fork["output_data"] == {"total": 30}

    def retry_on_current_version(b: Browser) -> str:
        from playwright.sync_api import expect

        page, errors = open_page(b, f"http://{host}/plays/{failed['sid']}")
        page.click("#retry-current-version")
        page.wait_for_url(lambda url: "/plays/play_" in url and failed["sid"] not in url)
        expect(page.locator("#play-status .pill")).to_have_attribute("data-status", "success")
        assert not errors, errors
        retried = page.url.rsplit("/", 1)[1]
        page.close()
        return retried

    retried_sid = await browser(retry_on_current_version)
    retried = await service.call("play_status", play_sid=retried_sid)
    assert retried["fork_of"] == failed["sid"]
    assert retried["workflow_version_sid"] == fixed["sid"]
    spans = await service.call("play_spans", play_sid=retried_sid)
    assert [s["input"]["row"] for s in spans if s["status"] == "replayed"] == [1, 2]
