"""`make report`: serving the latest run report, and a clear error before any run."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from local.report_site import main, serving
from orchestration.run_report import DirStore, publish_report
from orchestration.summary import RunReport, StreamCounts


def test_the_latest_report_is_served_over_http(tmp_path: Path) -> None:
    report = RunReport(run_date="2026-11-21", streams={"web": StreamCounts(read=7, shipped=7)})
    publish_report(DirStore(tmp_path), report)
    with serving(tmp_path) as url:
        assert url.endswith("/index.html")
        with urllib.request.urlopen(url, timeout=10) as response:
            page = response.read().decode()
    assert "Run report: 2026-11-21" in page


def test_serving_before_any_run_says_what_to_do(tmp_path: Path, capsys) -> None:
    assert main(["--dir", str(tmp_path / "report")]) == 1
    assert "run `make run` first" in capsys.readouterr().err
