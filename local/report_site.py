"""Serve the latest run report on this machine (``make report``), and screenshot it.

The report folder is what ``make run`` publishes to ``Settings.site_dir / "report"`` (the
lake's ``reports/`` prefix in AWS): ``index.html`` is the newest run date's page.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import ViewportSize

from lake import layout
from local.servers import serving_folder
from orchestration.settings import settings_for_command

# Wide enough for the tables, tall enough for the first charts.
SCREENSHOT_SIZE: ViewportSize = {"width": 1280, "height": 1600}


def latest_page(report_dir: Path) -> Path:
    page = report_dir / layout.REPORT_INDEX
    if not page.is_file():
        raise FileNotFoundError(
            f"no run report in {report_dir}: run `make run` first, it publishes one"
        )
    return page


@contextmanager
def serving(report_dir: Path, port: int | None = None) -> Iterator[str]:
    """An HTTP server on loopback for ``report_dir``; yields the latest page's URL."""
    latest_page(report_dir)
    with serving_folder(report_dir, port) as url:
        yield url + layout.REPORT_INDEX


def wait_for_charts(page: Any) -> None:
    """Until plotly has drawn every chart (each draws an ``svg.main-svg``)."""
    charts = page.locator("div.plotly-graph-div").count()
    page.wait_for_function(
        "n => document.querySelectorAll('div.plotly-graph-div svg.main-svg').length >= n",
        arg=charts,
        timeout=30_000,
    )


def screenshot_report(report_dir: Path, out: Path, browser: Any = None) -> Path:
    """Serve the latest report, open it in headless Chromium and save a screenshot of it
    to ``out`` (a PNG); ``browser`` reuses an open Playwright browser."""
    from local.browser import given_or_new

    out.parent.mkdir(parents=True, exist_ok=True)
    with serving(report_dir) as url, given_or_new(browser) as launched:
        page = launched.new_page(viewport=SCREENSHOT_SIZE)
        try:
            page.goto(url)
            wait_for_charts(page)
            page.screenshot(path=str(out), full_page=False)
        finally:
            page.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the latest run report.")
    site = settings_for_command("make report").site_dir
    parser.add_argument("--dir", type=Path, default=site / "report")
    parser.add_argument("--port", type=int, help="default: a free port")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        with serving(args.dir, args.port) as url:
            print(f"Run report: {url}  (Ctrl-C stops the server)", flush=True)
            threading.Event().wait()
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
