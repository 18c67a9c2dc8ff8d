"""The whole local pipeline on a small seeded demo: counts reconcile and the marts hold
exactly what the generator wrote. Then the same date is re-run, and the logs are resent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from lake import layout, zones
from local.report_site import screenshot_report, serving, wait_for_charts
from local.run import report_dir, run_pipeline
from orchestration import stages
from orchestration.summary import RunReport, reconcile
from tests.expectations import assert_marts_hold_the_demo, mart_rows

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pipeline(demo_run: dict[str, Any]) -> dict[str, Any]:
    return demo_run


@pytest.fixture
def lake_s3(pipeline: dict[str, Any]) -> Any:
    settings = pipeline["settings"]
    return boto3.client("s3", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)


def marts(duckdb_path: Path) -> dict[str, list[tuple]]:
    return mart_rows(duckdb_path, stages.MARTS)


def test_counts_reconcile_and_match_what_was_written(pipeline: dict[str, Any]) -> None:
    report, truth = pipeline["report"], pipeline["truth"]
    assert reconcile(report) == []
    for name, expected in truth.streams.items():
        got = report.streams[name]
        assert (got.read, got.shipped, got.processed, got.duplicates) == (
            expected.lines,
            expected.lines,
            expected.valid,
            expected.duplicates,
        )
        assert dict(got.quarantined) == dict(expected.quarantined)


def test_marts_hold_exactly_the_expected_rows(pipeline: dict[str, Any]) -> None:
    assert_marts_hold_the_demo(pipeline["settings"].duckdb_path, pipeline["truth"])


def test_malformed_lines_are_in_the_quarantine_zone_with_reasons(
    pipeline: dict[str, Any], lake_s3: Any
) -> None:
    s3 = lake_s3
    bucket = pipeline["settings"].lake_bucket
    found: dict[str, dict[str, int]] = {}
    for key in zones.list_keys(s3, bucket, "quarantine/"):
        for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines():
            row = json.loads(line)
            assert row["raw_line"] and row["detail"]
            per_stream = found.setdefault(row["stream"], {})
            per_stream[row["reason"]] = per_stream.get(row["reason"], 0) + 1
    expected = {name: dict(t.quarantined) for name, t in pipeline["truth"].streams.items()}
    assert found == expected


def test_processed_data_is_registered_in_the_glue_catalog(pipeline: dict[str, Any]) -> None:
    glue = boto3.client(
        "glue", endpoint_url=pipeline["settings"].aws_endpoint_url, region_name="us-east-1"
    )
    run_date = pipeline["run_date"].isoformat()
    for table in ["customers", "orders", "order_lines", "web_requests"]:
        described = glue.get_table(DatabaseName="shoplogs_local", Name=table)["Table"]
        assert described["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
        [partition] = glue.get_partitions(DatabaseName="shoplogs_local", TableName=table)[
            "Partitions"
        ]
        assert partition["Values"] == [run_date]
        location = partition["StorageDescriptor"]["Location"]
        assert location == f"s3://demo-lake/processed/{table}/dt={run_date}/"
    columns = glue.get_table(DatabaseName="shoplogs_local", Name="order_lines")["Table"]
    types = {c["Name"]: c["Type"] for c in columns["StorageDescriptor"]["Columns"]}
    assert types["unit_price"] == "decimal(12,2)" and types["quantity"] == "int"


def test_docs_site_is_generated(pipeline: dict[str, Any]) -> None:
    assert pipeline["report"].docs_path.is_file()


def test_the_run_report_is_published_to_the_lake_and_the_site_folder(
    pipeline: dict[str, Any], lake_s3: Any
) -> None:
    settings, run_date, report = pipeline["settings"], pipeline["run_date"], pipeline["report"]
    names = [layout.REPORT_INDEX, layout.report_page(run_date), layout.report_data(run_date)]
    assert set(zones.list_keys(lake_s3, settings.lake_bucket, layout.REPORTS)) >= {
        layout.REPORTS + name for name in names
    }
    assert all((report_dir(settings) / name).is_file() for name in names)
    body = (report_dir(settings) / layout.report_data(run_date)).read_bytes()
    published = RunReport.from_dict(json.loads(body))
    assert published.streams == report.streams and reconcile(published) == []
    # A sample line for every reason a line was quarantined for, as the lake holds it.
    expected = {name: set(t.quarantined) for name, t in pipeline["truth"].streams.items()}
    assert {name: set(s) for name, s in published.quarantine_samples.items()} == {
        name: reasons for name, reasons in expected.items() if reasons
    }
    assert all(s.line for by in published.quarantine_samples.values() for s in by.values())
    # The build's tests, kept before `dbt docs generate` wrote its own run_results.json.
    assert len(published.tests) > 50 and {t.status for t in published.tests} == {"pass"}
    assert {t.tested for t in published.tests} >= set(stages.MARTS)
    assert published.marts == report.marts and "spark" in published.seconds
    assert set(published.freshness) == set(report.freshness) != set()


def test_the_report_page_shows_the_runs_numbers_in_a_browser(
    pipeline: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    report, folder = pipeline["report"], report_dir(pipeline["settings"])
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    with serving(folder) as url:
        page.goto(url)
        wait_for_charts(page)
        assert page.title() == f"Run report: {report.run_date}"
        cells = page.locator("#counts tbody tr").evaluate_all(
            "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
        )
        assert cells[: len(report.streams)] == [
            [name, *map(str, (c.read, c.shipped, c.spark_read, c.processed,
                              c.quarantined_total, c.duplicates, c.erased))]
            for name, c in report.streams.items()
        ]  # fmt: skip
        charts = page.locator("svg.main-svg")
        assert charts.count() >= 3
        for index in range(charts.count()):
            box = charts.nth(index).bounding_box()
            assert box and box["width"] > 300 and box["height"] > 200
        assert page.locator("#records-chart .trace.bars").count() == len(report.streams)
    page.close()
    shot = screenshot_report(folder, tmp_path / "report.png", browser)
    assert shot.stat().st_size > 20_000


def test_rerunning_the_same_date_and_resending_the_logs_change_nothing(
    pipeline: dict[str, Any], lake_s3: Any
) -> None:
    s3 = lake_s3
    settings, run_date = pipeline["settings"], pipeline["run_date"]
    bucket = settings.lake_bucket

    def processed() -> list[str]:
        return zones.list_keys(s3, bucket, "processed/")

    before = processed()
    # Re-run every stage after shipping for the same logical date.
    stages.claim_landing(settings, run_date)
    stages.preprocess_locally(settings, run_date)
    stages.promote_zones(settings, run_date)
    stages.build_warehouse(settings)
    assert len(processed()) == len(before)
    assert marts(settings.duckdb_path) == pipeline["marts"]
    # Ship every log a second time (a shipper that resent everything): still no doubles.
    report = run_pipeline(settings, pipeline["files"], run_date, roles=pipeline["roles"])
    assert marts(settings.duckdb_path) == pipeline["marts"]
    for name, expected in pipeline["truth"].streams.items():
        assert report.streams[name].duplicates == expected.duplicates * 2 + expected.valid
