"""Serve the latest run report on this machine (``make report``), and screenshot it.

The report folder is what ``make run`` publishes to ``Settings.site_dir / "report"`` (the
lake's ``reports/`` prefix in AWS): ``index.html`` is the newest run date's page.
"""

from __future__ import annotations

import argparse
import functools
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lake import layout
from local.servers import free_port
from orchestration.settings import load_settings

# Wide enough for the tables, tall enough for the first charts.
SCREENSHOT_SIZE = {"width": 1280, "height": 1600}


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


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
    handler = functools.partial(QuietHandler, directory=str(report_dir))
    server = ThreadingHTTPServer(("127.0.0.1", port or free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/{layout.REPORT_INDEX}"
    finally:
        server.shutdown()
        server.server_close()


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
    from local.browser import chromium

    out.parent.mkdir(parents=True, exist_ok=True)
    with serving(report_dir) as url, contextmanager_or(browser, chromium) as launched:
        page = launched.new_page(viewport=SCREENSHOT_SIZE)
        try:
            page.goto(url)
            wait_for_charts(page)
            page.screenshot(path=str(out), full_page=False)
        finally:
            page.close()
    return out


@contextmanager
def contextmanager_or(given: Any, factory: Any) -> Iterator[Any]:
    """``given`` if there is one, else what ``factory()`` opens (and closes after)."""
    if given is not None:
        yield given
        return
    with factory() as made:
        yield made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the latest run report.")
    parser.add_argument("--dir", type=Path, default=load_settings().site_dir / "report")
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
