"""Managing workflows in the admin, in Debian's chromium: presets edited and deleted, benchmark
notes that name the output key that differed, the picker's reasoning, renaming and deleting a
workflow, and the layout at 1280 px (tables not clipped, the diff's fold markers drawn).

Set ``HERO_LOGIC_SCREENSHOTS=docs/screenshots`` to keep the pictures docs/admin.md shows.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from ._admin_kit import start_admin
from ._browser_kit import (
    BrowserThread,
    clipped_tables,
    launch_browser,
    open_page,
    screenshot_folder,
    shoot,
)
from .test_admin_fleet import GREETER

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import trio
    from playwright.sync_api import Browser

    from .conftest import Service

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserThread]:
    yield from launch_browser()


@pytest.fixture(scope="module")
def shots() -> Iterator[Path]:
    yield from screenshot_folder()


async def test_presets_are_edited_and_deleted_benchmark_notes_name_the_key_and_pick_reasoning_keeps_its_lines(
    service: Service, nursery: trio.Nursery, browser: BrowserThread, shots: Path
) -> None:
    host = await start_admin(service, nursery)
    wf = await service.push(GREETER, name="greeter")
    await service.call("example_upsert", workflow_sid=wf["sid"], name="for Ada", input_values={"who": "Ada"}, expected_output={"greeting": "hi Ada"})
    await service.call("example_upsert", workflow_sid=wf["sid"], name="spare", input_values={"who": "Bob"})

    def manage(b: Browser) -> None:
        from playwright.sync_api import expect

        page, errors = open_page(b, f"http://{host}/workflows/{wf['sid']}", width=1280)
        presets = page.locator("#presets-list tbody tr")
        expect(presets).to_have_count(2)
        # Edit: the dialog holds the preset's values as JSON; a bad one is refused, named.
        presets.filter(has_text="spare").get_by_role("button", name="Edit").click()
        dialog = page.locator("#preset-dialog")
        expect(dialog).to_be_visible()
        expect(page.locator("#preset-inputs")).to_have_value(re.compile(r'"who": "Bob"'))
        page.fill("#preset-inputs", '{"who": ')
        page.click("#preset-save")
        expect(dialog).to_contain_text("input values: not valid JSON")
        page.fill("#preset-inputs", '{"who": "Grace"}')
        page.fill("#preset-expected", '{"greeting": "hello Grace"}')
        page.click("#preset-save")
        expect(dialog).to_be_hidden()
        expect(presets.filter(has_text="spare")).to_contain_text("Grace")
        # Delete, after saying yes.
        presets.filter(has_text="spare").get_by_role("button", name="Delete").click()
        expect(page.locator("#confirm-dialog")).to_contain_text("spare")
        page.click("#confirm-no")
        expect(presets).to_have_count(2)
        presets.filter(has_text="spare").get_by_role("button", name="Delete").click()
        page.click("#confirm-yes")
        expect(presets).to_have_count(1)

        # A benchmark whose preset expects another greeting says which key differed.
        page.click("#benchmark-run")
        expect(page.locator("#benchmarks tbody tr.bench .pill").first).to_have_attribute("data-status", "done", timeout=30_000)
        notes = page.locator("#benchmarks .bench-notes")
        expect(notes).to_contain_text("key 'greeting': expected 'hi Ada', got 'hello Ada'")
        expect(notes.locator("a").first).to_have_attribute("href", re.compile(r"^/plays/play_"))

        # The picker's reasoning keeps its line breaks.
        page.click("#pick-button")
        reasoning = page.locator("#pick-reasoning")
        expect(reasoning).to_be_visible()
        assert reasoning.evaluate("el => getComputedStyle(el).whiteSpace") in ("pre-line", "pre-wrap")
        assert "\n" in reasoning.inner_text()
        shoot(page, shots / "admin-library.png")
        assert clipped_tables(page) == []
        assert not errors, errors
        page.close()

    await browser(manage)
    (left,) = await service.call("example_list", workflow_sid=wf["sid"])
    assert left["name"] == "for Ada"


async def test_a_workflow_is_renamed_and_deleted_after_confirmation(
    service: Service, nursery: trio.Nursery, browser: BrowserThread
) -> None:
    host = await start_admin(service, nursery)
    wf = await service.push(GREETER, name="greeter")

    def rename_and_delete(b: Browser) -> None:
        from playwright.sync_api import expect

        page, errors = open_page(b, f"http://{host}/workflows/{wf['sid']}")
        page.click("#rename-workflow")
        expect(page.locator("#rename-name")).to_have_value("greeter")
        page.fill("#rename-name", "welcomer")
        page.fill("#rename-description", "Says hello")
        page.click("#rename-save")
        expect(page.locator("h1")).to_have_text("welcomer")
        expect(page.locator(".page-head .sub")).to_contain_text("Says hello")
        page.click("#delete-workflow")
        confirm = page.locator("#confirm-dialog")
        expect(confirm).to_contain_text("welcomer")
        expect(page.locator("#confirm-yes")).to_be_disabled()  # until the name is typed
        page.fill("#confirm-typed", "welcomer")
        page.click("#confirm-yes")
        page.wait_for_url(f"http://{host}/")
        expect(page.locator(".wf-item")).to_have_count(0)
        assert not errors, errors
        page.close()

    await browser(rename_and_delete)
    assert await service.call("workflow_list") == []


async def test_at_1280_px_no_table_is_clipped_and_the_diff_fold_markers_are_drawn(
    service: Service, nursery: trio.Nursery, browser: BrowserThread, shots: Path
) -> None:
    host = await start_admin(service, nursery)
    body = "\n".join(f"    x{i} = {i}" for i in range(30))
    first = f"from hero_tracing import flow\n\n@flow(name='long')\ndef main():\n{body}\n    return x0\n"
    wf = await service.push(first, name="long", description="A long flow with a one-line change")
    await service.call("workflow_create_version", workflow_sid=wf["sid"], python_source=first.replace("x15 = 15", "x15 = 1500"), version_label="v2")
    play = await service.run(wf)
    assert play["status"] == "success"

    def look(b: Browser) -> None:
        from playwright.sync_api import expect

        page, errors = open_page(b, f"http://{host}/", width=1280)
        expect(page.locator("#recent-plays tbody tr")).to_have_count(1)
        assert clipped_tables(page) == []
        page.goto(f"http://{host}/plays/{play['sid']}")
        expect(page.locator("#play-status .pill")).to_have_attribute("data-status", "success")
        assert clipped_tables(page) == []
        page.goto(f"http://{host}/workflows/{wf['sid']}")
        page.locator("#versions tbody tr").first.get_by_role("button", name="Diff").click()
        folds = page.locator("#diff .cm-collapsedLines")
        expect(folds.first).to_be_visible()
        for pseudo in ("::before", "::after"):
            content = folds.first.evaluate(f"el => getComputedStyle(el, '{pseudo}').content")
            assert "\u299a" not in content, content  # no font on Debian has it: a box was drawn
        assert clipped_tables(page) == []
        page.wait_for_timeout(300)
        shoot(page, shots / "admin-workflow-1280.png")
        assert not errors, errors
        page.close()

    await browser(look)
