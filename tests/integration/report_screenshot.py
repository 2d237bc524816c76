"""The simulation's HTML report in headless Chromium (as the browser tests drive it), offline:
every request but the file itself is refused and recorded, so a report that fetched anything
would show it. `python -m tests.integration.report_screenshot REPORT.html OUT.png` makes the
screenshot in docs/ from a real run's report."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.integration.test_web_browser import CHROMIUM, CHROMIUM_ARGS


@dataclass
class Opened:
    page: Any
    refused: list[str] = field(default_factory=list)  # URLs the report tried to fetch


async def open_offline(browser: Any, document: str) -> Opened:
    """The report at the file:// URL `document` in a new page."""
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    opened = Opened(page)

    async def only_the_file(route: Any) -> None:
        if route.request.url == document:
            await route.continue_()
        else:
            opened.refused.append(route.request.url)
            await route.abort()

    await page.route("**/*", only_the_file)
    await page.goto(document)
    return opened


async def screenshot(document: str) -> bytes:
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            opened = await open_offline(browser, document)
            if opened.refused:
                raise SystemExit(f"the report tried to fetch {opened.refused}")
            shot: bytes = await opened.page.screenshot(full_page=True)
            return shot
        finally:
            await browser.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m tests.integration.report_screenshot REPORT.html OUT.png")
    out = Path(sys.argv[2])
    out.write_bytes(asyncio.run(screenshot(Path(sys.argv[1]).resolve().as_uri())))
    print(f"written to {out}")
