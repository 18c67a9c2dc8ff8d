"""Headless Chromium for the pages analysts and operators open: the docs site, the report.

Playwright drives Debian's ``chromium`` (installed by ``make install``); Playwright's own
browser download is never needed. The flags keep a closed network from slowing start-up.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",  # Chromium refuses to start as root otherwise (containers, CI)
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    raise FileNotFoundError(
        "Chromium not found: run `make install` (it installs Debian's chromium) or "
        "`sudo apt-get install chromium`"
    )


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def given_or_new(browser: Browser | None) -> Iterator[Browser]:
    """``browser`` when one is open already (a test's), else a new one, closed after."""
    if browser is not None:
        yield browser
        return
    with chromium() as launched:
        yield launched
