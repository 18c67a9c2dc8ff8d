"""``make screenshots``: the README's pictures of the docs site and the run report, taken in
headless Chromium from what the last ``make run`` published (``Settings.site_dir``)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from local.browser import chromium
from local.docs_site import screenshot_docs
from local.report_site import screenshot_report
from orchestration.settings import REPO_ROOT, settings_for_command

IMAGES = REPO_ROOT / "docs" / "images"
README_SHOTS = {"docs-erd", "docs-lineage"}  # of the docs site's pages (local/docs_site.py)


def main() -> int:
    site = settings_for_command("make screenshots").site_dir
    IMAGES.mkdir(parents=True, exist_ok=True)
    try:
        with chromium() as browser, tempfile.TemporaryDirectory() as scratch:
            shots = screenshot_docs(site / "docs", Path(scratch), browser)
            for shot in shots.screenshots:
                if shot.stem in README_SHOTS:
                    shutil.copy(shot, IMAGES / shot.name)
            screenshot_report(site / "report", IMAGES / "run-report.png", browser)
    except FileNotFoundError as exc:
        print(f"make screenshots: {exc}", file=sys.stderr)
        return 1
    for image in sorted(IMAGES.glob("*.png")):
        print(image.relative_to(REPO_ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
