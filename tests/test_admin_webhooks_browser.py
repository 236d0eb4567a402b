"""The webhooks card of the dashboard, in a real browser: every webhook with what it does, its
scheme and its URL, and an unsigned one (scheme ``none``) visibly warned about."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from . import test_admin_browser as kit
from ._admin_kit import start_admin
from ._browser_kit import clipped_tables

if TYPE_CHECKING:
    from collections.abc import Iterator

    import trio
    from playwright.sync_api import Browser

    from .conftest import Service

pytestmark = pytest.mark.browser

ORDER = """
from hero_tracing import flow

@flow(name="order")
def main(order_id: str = ""):
    return order_id
"""

UNSIGNED = "unsigned: anyone who knows the URL can trigger it"


@pytest.fixture(scope="module")
def browser() -> Iterator[kit.BrowserThread]:
    """Chromium in its own thread (the admin browser tests' own)."""
    yield from kit.browser.__wrapped__()


async def test_the_dashboard_lists_webhooks_and_warns_about_an_unsigned_one(service: Service, nursery: trio.Nursery, browser: kit.BrowserThread) -> None:
    host = await start_admin(service, nursery)
    wf = await service.push(ORDER, name="order")
    signed = await service.call("webhook_create", name="signed-orders", action="start", workflow_sid=wf["sid"], scheme="github")
    open_hook = await service.call("webhook_create", name="open-orders", action="start", workflow_sid=wf["sid"], scheme="none")

    def look(b: Browser) -> None:
        from playwright.sync_api import expect

        page, errors = kit.open_page(b, f"http://{host}/")
        card = page.locator("#webhooks")
        rows = card.locator("tr.webhook")
        expect(rows).to_have_count(2)
        unsigned = card.locator(f'tr.webhook[data-sid="{open_hook["sid"]}"]')
        expect(unsigned).to_contain_text("open-orders")
        expect(unsigned).to_contain_text("none")
        expect(unsigned).to_contain_text(open_hook["url"])
        warning = unsigned.locator(".unsigned-warning")
        expect(warning).to_be_visible()
        expect(warning).to_contain_text(UNSIGNED)
        fine = card.locator(f'tr.webhook[data-sid="{signed["sid"]}"]')
        expect(fine).to_contain_text("github")
        expect(fine).to_contain_text("starts order")
        expect(fine.locator(".unsigned-warning")).to_have_count(0)
        assert clipped_tables(page) == []
        assert not errors, errors
        page.close()

    await browser(look)
