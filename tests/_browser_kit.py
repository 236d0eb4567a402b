"""Driving the admin in a real browser: Debian's chromium, owned by one Playwright thread.

Playwright's sync API runs in one dedicated thread per test module (its objects belong to the
thread that made them); each test drives it with ``await browser(fn)``, which waits in a trio
worker thread so the service under test keeps running on the trio loop. Every wait is bounded
by Playwright's own timeouts. A module declares its fixtures with the kit's generators::

    @pytest.fixture(scope="module")
    def browser() -> Iterator[BrowserThread]:
        yield from launch_browser()

Set ``HERO_LOGIC_SCREENSHOTS=docs/screenshots`` to keep the screenshots the docs show.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import trio

from hero_logic.admin._pages import EDITOR_BUNDLE

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from playwright.sync_api import Browser, Page

__all__ = ["CHROMIUM", "WAIT_MS", "BrowserThread", "clipped_tables", "launch_browser", "open_page", "screenshot_folder", "shoot"]

CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 15_000
LAUNCH_TIMEOUT_S = 45
T = TypeVar("T")


class BrowserThread:
    """Chromium, owned by one thread; ``await browser(fn, *args)`` runs ``fn(browser, *args)`` there."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="playwright")
        self._browser: Browser | None = None
        self._playwright: Any = None
        self._pool.submit(self._start).result(timeout=LAUNCH_TIMEOUT_S)

    def _start(self) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )

    def _stop(self) -> None:
        if self._browser is not None:
            self._browser.close()
        if self._playwright is not None:
            self._playwright.stop()

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._browser is not None
        future = self._pool.submit(fn, self._browser, *args)
        return await trio.to_thread.run_sync(future.result)

    def close(self) -> None:
        self._pool.submit(self._stop).result()
        self._pool.shutdown()


def launch_browser(*, admin: bool = True) -> Iterator[BrowserThread]:
    """A module's ``browser`` fixture: ``yield from launch_browser()`` (skips without chromium).
    ``admin=False`` for pages that are not the admin's (the ingress's approval page), which do
    not need its editor bundle."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing: `make chromium` (as root) installs Debian's chromium")
    assert not admin or EDITOR_BUNDLE.is_file(), "the admin's editor bundle is missing: run `make admin-assets`"
    thread = BrowserThread()
    yield thread
    thread.close()


def screenshot_folder() -> Iterator[Path]:
    """A module's ``shots`` fixture: a temporary folder, copied to $HERO_LOGIC_SCREENSHOTS when set."""
    folder = Path(tempfile.mkdtemp(prefix="hl-shots-"))
    yield folder
    target = os.environ.get("HERO_LOGIC_SCREENSHOTS")
    if target:
        for shot in folder.glob("*.png"):
            shutil.copy(shot, Path(target) / shot.name)
    shutil.rmtree(folder, ignore_errors=True)


def open_page(browser: Browser, url: str, *, width: int = 1400, height: int = 900) -> tuple[Page, list[str]]:
    """A new tab at ``url``, and the list its script errors and console errors go to."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(url)
    return page, errors


NO_CLIPPED_TABLES = """() => [...document.querySelectorAll('table')]
  .filter((t) => t.offsetParent !== null)
  .filter((t) => { const box = t.parentElement.getBoundingClientRect(); const r = t.getBoundingClientRect(); return r.right > box.right + 1 || t.scrollWidth > t.clientWidth + 1; })
  .map((t) => (t.closest('[id]') || t).id || t.className)"""


def shoot(page: Page, path: Path) -> None:
    """A full-page picture from the top (the sticky top bar stays where it belongs)."""
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=True)


def clipped_tables(page: Page) -> list[str]:
    """The ids of the cards whose table is wider than the room it has."""
    found: list[str] = page.evaluate(NO_CLIPPED_TABLES)
    return found
