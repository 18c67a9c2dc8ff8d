"""The dbt docs site on this machine: ``make docs`` serves it, ``screenshot_docs`` opens it
in headless Chromium and photographs what an analyst sees.

    python -m local.docs_site            # serve the published site, build it first if needed

The site served is the one the last run published to ``Settings.site_dir / "docs"`` (the
local twin of the lake's ``docs/`` prefix): ``index.html``, ``manifest.json`` and
``catalog.json``, nothing else (the star schema diagram is inside the manifest).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.servers import serving_folder
from orchestration import stages
from orchestration.settings import Settings, settings_for_command

# The pages photographed, as the site's own routes (dbt docs is an AngularJS app).
OVERVIEW = "#!/overview"
FCT_ORDERS = "#!/model/model.shoplogs.fct_orders"
# A ratio metric, and through it the simple metric, semantic model and mart it reads.
METRIC = "#!/metric/metric.shoplogs.conversion_rate"
LINEAGE_BUTTON = "[ng-click='onLauncherClick()']"  # "View Lineage Graph", bottom right
FULL_SCREEN = "[ng-click='showExpanded()']"  # the graph panel's expand control
ERD_IMAGE = "img[alt^='The star schema']"  # orchestration/erd.py writes it
PAGE_TIMEOUT_MS = 60_000


@contextmanager
def serving(site_dir: Path, port: int | None = None) -> Iterator[str]:
    """Serve ``site_dir`` on a free loopback port; yields the site's URL."""
    if not (site_dir / "index.html").is_file():
        raise FileNotFoundError(
            f"{site_dir} holds no docs site (index.html): run `make run` first, or `make docs`"
        )
    with serving_folder(site_dir, port) as url:
        yield url


def build_site(settings: Settings) -> Path:
    """Generate the docs from the local warehouse and publish them to the local folder
    only (``make docs`` without a run: no S3 to publish to), whatever site was kept."""
    target = stages.generate_docs(settings, again=True).parent
    site = settings.site_dir / "docs"
    site.mkdir(parents=True, exist_ok=True)
    for name in stages.SITE_FILES:
        shutil.copy2(target / name, site / name)
    return site


@dataclass
class DocsShots:
    """What the browser saw, and where the screenshots are."""

    marts_listed: list[str] = field(default_factory=list)
    fct_orders_columns: list[str] = field(default_factory=list)
    erd_size: tuple[int, int] = (0, 0)  # the diagram image's natural width and height
    graph_size: tuple[int, int] = (0, 0)  # the lineage graph's drawing surface
    # The page text of the metric, of its input metric and of their semantic model, in the
    # order followed from the metric's "Depends On" links.
    metric_pages: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)


def _shoot(page: Any, out: Path, name: str, shots: DocsShots) -> None:
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    shots.screenshots.append(path)


def _overview(page: Any, url: str, out: Path, shots: DocsShots) -> None:
    page.goto(url + OVERVIEW)
    image = page.wait_for_selector(ERD_IMAGE, timeout=PAGE_TIMEOUT_MS)
    page.wait_for_function(
        f'document.querySelector("{ERD_IMAGE}").complete', timeout=PAGE_TIMEOUT_MS
    )
    width, height = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    shots.erd_size = (int(width), int(height))
    shots.marts_listed = [name for name in stages.MARTS if page.locator(f"text={name}").count() > 0]
    _shoot(page, out, "docs-overview", shots)
    image.scroll_into_view_if_needed()
    _shoot(page, out, "docs-erd", shots)


def _model(page: Any, url: str, out: Path, shots: DocsShots) -> None:
    page.goto(url + FCT_ORDERS)
    page.wait_for_selector("text=net_revenue_usd", timeout=PAGE_TIMEOUT_MS)
    cells = page.locator("table tr td:first-child").all_inner_texts()
    # Each column's row is followed by a row of its details, starting with "Details".
    shots.fct_orders_columns = [
        cell.strip() for cell in cells if cell.strip() and len(cell.split()) == 1
    ]
    _shoot(page, out, "docs-fct-orders", shots)


def _metric(page: Any, url: str, out: Path, shots: DocsShots) -> None:
    page.goto(url + METRIC)
    page.wait_for_selector("text=Depends On", timeout=PAGE_TIMEOUT_MS)
    shots.metric_pages.append(page.inner_text(".app-content"))
    _shoot(page, out, "docs-metric", shots)
    # What it reads: its input metric, then that metric's semantic model (and its mart).
    for link in ("converted_sessions", "web_sessions"):
        page.click(f"a:text-is('{link}')", timeout=PAGE_TIMEOUT_MS)
        page.wait_for_selector(f"text={link}", timeout=PAGE_TIMEOUT_MS)
        page.wait_for_selector("text=Depends On", timeout=PAGE_TIMEOUT_MS)
        shots.metric_pages.append(page.inner_text(".app-content"))


def _lineage(page: Any, url: str, out: Path, shots: DocsShots) -> None:
    page.goto(url + FCT_ORDERS)
    page.click(LINEAGE_BUTTON, timeout=PAGE_TIMEOUT_MS)
    page.click(FULL_SCREEN, timeout=PAGE_TIMEOUT_MS)
    page.wait_for_function(
        "[...document.querySelectorAll('#cy canvas')].some(c => c.width > 0)",
        timeout=PAGE_TIMEOUT_MS,
    )
    page.mouse.move(700, 600)  # away from the expand control: no tooltip in the picture
    page.wait_for_timeout(1500)  # the graph lays itself out after the canvas appears
    canvas = page.locator("#cy canvas").first
    box = canvas.bounding_box() or {"width": 0, "height": 0}
    shots.graph_size = (int(box["width"]), int(box["height"]))
    _shoot(page, out, "docs-lineage", shots)


def screenshot_docs(site_dir: Path, out: Path, browser: Any | None = None) -> DocsShots:
    """Serve ``site_dir``, open the overview (with the star schema diagram), ``fct_orders``,
    its lineage graph and a metric in headless Chromium, and save a screenshot of each in
    ``out``."""
    from local.browser import given_or_new

    out.mkdir(parents=True, exist_ok=True)
    shots = DocsShots()
    with serving(site_dir) as url, given_or_new(browser) as launched:
        page = launched.new_page(viewport={"width": 1400, "height": 1000})
        try:
            _overview(page, url, out, shots)
            _model(page, url, out, shots)
            _metric(page, url, out, shots)
            _lineage(page, url, out, shots)  # last: it leaves the graph full screen
        finally:
            page.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the dbt docs site on a free port.")
    parser.add_argument("--port", type=int, help="port to serve on (default: a free one)")
    parser.add_argument(
        "--rebuild", action="store_true", help="generate the docs again before serving"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    settings = settings_for_command("make docs")
    site = settings.site_dir / "docs"
    try:
        if args.rebuild or not (site / "index.html").is_file():
            print(f"Building the docs site into {site} ...", flush=True)
            build_site(settings)
        with serving(site, args.port) as url:
            print(f"dbt docs site: {url}  (serving {site}; Ctrl-C stops)", flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        return 0
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"make docs FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
