"""The admin in a real browser: Debian's chromium driven by Playwright (tests/_browser_kit.py).

Set ``HERO_LOGIC_SCREENSHOTS=docs/screenshots`` to save the screenshots the docs show.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import pytest

from ._admin_kit import start_admin
from ._browser_kit import BrowserThread, launch_browser, open_page, screenshot_folder

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

GROWER = '''
import time
from hero_tracing import flow

STEPS = 3

@flow
def stage(i: int):
    """One stage of the pipeline."""
    flow.current_span.tag(stage=i, label=f"stage {i}")
    flow.current_span.log(f"stage {i} working")
    time.sleep(0.4)
    return i * i

@flow(name="grower", description="Grows its span tree a step at a time", inputs={"who": {"type": "string", "required": True}})
def main(who):
    total = sum(stage(i=i) for i in range(STEPS))
    return {"who": who, "stages": STEPS, "total": total}
'''

OTHER = '''
from hero_tracing import flow

@flow(name="unrelated", description="Something else entirely")
def main():
    return 1
'''

SIZES = '''
from hero_tracing import ask_user, flow

@flow
def measure(item: str):
    flow.current_span.tag(item=item)
    return len(item)

@flow(name="sizes", inputs={"item": {"type": "string", "default": "shirt"}})
def main(item):
    length = measure(item=item)
    size = ask_user.choice("Which size?", options=["S", "M", "L"], name="size")
    return {"item": item, "length": length, "size": size}
'''

SLEEPER = '''
import time
from hero_tracing import flow

@flow
def nap(seconds: float):
    time.sleep(seconds)
    return seconds

@flow(name="sleeper")
def main():
    return nap(seconds=60)
'''


async def test_search_edit_save_run_and_watch_the_graph_grow(
    service: Service, nursery: trio.Nursery, browser: BrowserThread, shots: Path
) -> None:
    host = await start_admin(service, nursery)
    wf = await service.push(GROWER, name="grower", description="Grows its span tree a stage at a time", tags=["demo"])
    await service.push(OTHER, name="unrelated", description="Something else entirely")
    sizes = await service.push(SIZES, name="sizes", description="Asks which size to order", tags=["human-in-the-loop"])
    assert (await service.run(sizes))["status"] == "awaiting_resume"  # one play waits, on the dashboard
    preset = "for Ada"
    try:
        await service.call("example_upsert", workflow_sid=wf["sid"], name=preset, input_values={"who": "Ada"})
    except Exception:  # a service without presets: the form is filled by hand below
        preset = ""

    def journey(b: Browser) -> dict[str, Any]:
        from playwright.sync_api import expect

        page, errors = open_page(b, f"http://{host}/")
        # Dashboard: both workflows, then the search narrows to one.
        expect(page.locator(".wf-item")).to_have_count(3)
        expect(page.locator('[data-count="running"] .value')).to_have_text("0")
        expect(page.locator('[data-count="awaiting_resume"] .value')).to_have_text("1")
        page.fill("#workflow-search", "grower")
        expect(page.locator('.wf-item[data-name="unrelated"]')).to_have_count(0)
        expect(page.locator(".wf-item .name").first).to_have_text("grower")
        page.click(".wf-item")

        # Workflow page: the source in CodeMirror, with line numbers and highlighting.
        page.wait_for_url(re.compile(r"/workflows/"))
        expect(page.locator("#editor .cm-editor")).to_be_visible()
        assert page.locator("#editor .cm-lineNumbers .cm-gutterElement").count() >= 10
        keyword = page.locator("#editor .cm-line", has_text="from hero_tracing import flow").locator("span").first
        assert keyword.evaluate("el => getComputedStyle(el).color") != page.locator("#editor .cm-content").evaluate("el => getComputedStyle(el).color")
        # Edit: STEPS = 3 -> STEPS = 5, typed into the editor.
        line = page.locator("#editor .cm-line", has_text="STEPS = 3")
        line.click()
        page.keyboard.press("End")
        page.keyboard.press("Backspace")
        page.keyboard.type("5")
        expect(page.locator("#editor .cm-line", has_text="STEPS = 5")).to_have_count(1)
        page.fill("#version-label", "five-stages")
        page.fill("#version-notes", "more stages")
        page.click("#save-version")
        expect(page.locator("#current-version")).to_have_text("current: five-stages")
        expect(page.locator("#versions tbody tr")).to_have_count(2)
        page.locator("#versions tbody tr").first.get_by_role("button", name="Diff").click()
        expect(page.locator("#diff .cm-mergeView")).to_be_visible()
        expect(page.locator("#diff .cm-changedLine").first).to_be_visible()
        page.wait_for_timeout(500)  # let the merge view settle its gutters before the picture
        page.screenshot(path=str(shots / "admin-workflow.png"), full_page=True)

        # Run from the preset (or fill the form), then watch the tree grow while it runs.
        if preset:
            page.select_option("#preset-select", label=preset)
            expect(page.locator("#input-who")).to_have_value("Ada")
        else:
            page.fill("#input-who", "Ada")
        page.click("#run-button")
        page.wait_for_url(re.compile(r"/plays/"))
        status = page.locator("#play-status .pill")
        expect(status).to_have_attribute("data-status", "running")
        seen: list[int] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and status.get_attribute("data-status") == "running":
            count = page.locator("#span-graph .span-row").count()
            if not seen or count != seen[-1]:
                seen.append(count)
            page.wait_for_timeout(60)
        expect(status).to_have_attribute("data-status", "success")
        final = page.locator("#span-graph .span-row").count()
        page.locator('#span-graph .span-row[data-kind="step"]').nth(2).click()
        expect(page.locator("#inspected-name")).to_have_text("stage")
        expect(page.locator("#span-tags")).to_contain_text("stage 2")
        expect(page.locator("#span-logs")).to_contain_text("stage 2 working")
        expect(page.locator("#play-output")).to_contain_text('"total": 30')
        page.screenshot(path=str(shots / "admin-play.png"), full_page=True)
        play_url = page.url

        page.goto(f"http://{host}/")
        expect(page.locator("#recent-plays tbody tr")).to_have_count(2)
        expect(page.locator("#recent-plays tbody tr .pill").first).to_have_attribute("data-status", "success")
        page.screenshot(path=str(shots / "admin-dashboard.png"), full_page=True)
        assert not errors, errors
        page.close()
        return {"seen": seen, "final": final, "play_url": play_url}

    result = await browser(journey)
    seen = result["seen"]
    assert result["final"] == 6  # the flow root and five stages
    growing = [n for n in seen if 0 < n < result["final"]]
    assert len(growing) >= 2, f"the tree did not grow while the play ran: {seen}"
    assert growing == sorted(growing)
    play_sid = result["play_url"].rsplit("/", 1)[1]
    play = await service.call("play_status", play_sid=play_sid)
    version = await service.call("workflow_version_fetch", version_sid=play["workflow_version_sid"])
    assert version["version_label"] == "five-stages"
    assert "STEPS = 5" in version["python_source"]
    assert play["output_data"] == {"who": "Ada", "stages": 5, "total": 30}
    for name in ("admin-dashboard.png", "admin-workflow.png", "admin-play.png"):
        assert (shots / name).stat().st_size > 10_000


async def test_answer_a_choice_pause_in_its_form_and_see_the_play_finish(
    service: Service, nursery: trio.Nursery, browser: BrowserThread, shots: Path
) -> None:
    host = await start_admin(service, nursery)
    wf = await service.push(SIZES, name="sizes")
    play = await service.run(wf, item="sock")
    assert play["status"] == "awaiting_resume"

    def answer(b: Browser) -> None:
        from playwright.sync_api import expect

        page, errors = open_page(b, f"http://{host}/plays/{play['sid']}")
        form = page.locator('.resume-form[data-kind="choice"]')
        expect(form.locator(".prompt")).to_have_text("Which size?")
        expect(form.locator(".check")).to_have_text(["S", "M", "L"])
        page.screenshot(path=str(shots / "admin-pause.png"), full_page=True)
        form.get_by_role("button", name="Send answer").click()
        expect(form).to_contain_text("pick one of the options")  # nothing chosen yet: not sent
        form.get_by_label("M").check()
        form.get_by_role("button", name="Send answer").click()
        expect(page.locator("#play-status .pill")).to_have_attribute("data-status", "success")
        expect(page.locator("#play-output")).to_contain_text('"size": "M"')
        expect(page.locator(".resume-form")).to_have_count(0)
        measured = page.locator('#span-graph .span-row[data-kind="step"]')
        expect(measured).to_have_attribute("data-status", "replayed")  # ran before the pause
        expect(measured.locator(".badge.replayed")).to_be_visible()
        assert not errors, errors
        page.close()

    await browser(answer)
    done = await service.call("play_status", play_sid=play["sid"])
    assert done["output_data"] == {"item": "sock", "length": 4, "size": "M"}
    assert [r["payload"] for r in done["received_resumes"]] == ["M"]


async def test_cancel_a_running_play(service: Service, nursery: trio.Nursery, browser: BrowserThread) -> None:
    host = await start_admin(service, nursery)
    wf = await service.push(SLEEPER, name="sleeper")
    play_sid = await service.call("play_start", workflow_sid=wf["sid"])

    def cancel(b: Browser) -> None:
        from playwright.sync_api import expect

        page, errors = open_page(b, f"http://{host}/plays/{play_sid}")
        expect(page.locator('#span-graph .span-row[data-kind="step"]')).to_have_attribute("data-status", "running")
        page.click("#cancel-play")
        expect(page.locator("#cancel-play")).to_have_text("Confirm cancel")
        page.click("#cancel-play")
        expect(page.locator("#play-status .pill")).to_have_attribute("data-status", "cancelled")
        expect(page.locator('#span-graph .span-row[data-kind="step"]')).to_have_attribute("data-status", "cancelled")
        expect(page.locator("#retry-play")).to_be_visible()
        assert not errors, errors
        page.close()

    await browser(cancel)
    assert (await service.call("play_status", play_sid=play_sid))["status"] == "cancelled"


GIFT = """
from hero_tracing import ask_user, flow

@flow(name="gift", inputs={"wrap": {"type": "boolean", "default": True}})
def main(wrap):
    colour = ask_user.choice("Which colour?", options=["red", "blue"])
    return {"wrap": wrap, "colour": colour}
"""


async def test_run_from_a_preset_with_its_answers_and_a_false_boolean(
    service: Service, nursery: trio.Nursery, browser: BrowserThread
) -> None:
    host = await start_admin(service, nursery)
    wf = await service.push(GIFT, name="gift")
    await service.call(
        "example_upsert", workflow_sid=wf["sid"], name="blue one", input_values={"wrap": True},
        prefill_resumes={"Which colour?": "blue"},
    )

    def run(b: Browser) -> str:
        from playwright.sync_api import expect

        page, errors = open_page(b, f"http://{host}/workflows/{wf['sid']}")
        box = page.locator("#input-wrap")
        expect(box).to_be_checked()  # the declared default
        page.select_option("#preset-select", label="blue one")
        expect(page.locator("#use-prefills")).to_be_checked()
        box.uncheck()
        page.click("#run-button")
        page.wait_for_url(re.compile(r".*/plays/play_.*"))
        expect(page.locator("#play-status .pill")).to_have_attribute("data-status", "success")
        assert not errors, errors
        sid = page.url.rsplit("/", 1)[-1]
        page.close()
        return sid

    play_sid = await browser(run)
    play = await service.call("play_status", play_sid=play_sid)
    assert play["output_data"] == {"wrap": False, "colour": "blue"}


PROFILE = """
from hero_tracing import flow

@flow(name="profile")
def main():
    schema = {"type": "object", "properties": {"age": {"type": "integer"}, "name": {"type": "string"}}, "required": ["age"]}
    return flow.pause("About you", schema=schema)
"""


async def test_a_pause_with_an_object_schema_gets_a_form_of_its_fields(
    service: Service, nursery: trio.Nursery, browser: BrowserThread
) -> None:
    host = await start_admin(service, nursery)
    wf = await service.push(PROFILE, name="profile")
    play = await service.run(wf)
    assert play["status"] == "awaiting_resume"

    def answer(b: Browser) -> None:
        from playwright.sync_api import expect

        page, errors = open_page(b, f"http://{host}/plays/{play['sid']}")
        form = page.locator('.resume-form[data-kind="object"]')
        form.get_by_role("button", name="Send answer").click()
        expect(form).to_contain_text("fill in age")
        form.get_by_label("age").fill("42")
        form.get_by_label("name").fill("Ada")
        form.get_by_role("button", name="Send answer").click()
        expect(page.locator("#play-status .pill")).to_have_attribute("data-status", "success")
        assert not errors, errors
        page.close()

    await browser(answer)
    done = await service.call("play_status", play_sid=play["sid"])
    assert done["output_data"] == {"age": 42, "name": "Ada"}
