"""The whole local pipeline on a small seeded demo: counts reconcile and the marts hold
exactly what the generator wrote. Then the same date is re-run, and the logs are resent."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingestion import zones
from ingestion.generator import FILE_NAMES, DemoSpec, generate
from orchestration import stages
from orchestration.run_local import run_pipeline
from orchestration.settings import load_settings
from orchestration.summary import reconcile

pytestmark = pytest.mark.integration

SPEC = DemoSpec(
    days=3,
    customers=40,
    orders_per_day=15,
    visits_per_day=25,
    malformed_rate=0.03,
    duplicate_rate=0.03,
    seed=11,
)


def marts(duckdb_path: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        return {
            m: sorted(con.execute(f"select * from marts.{m}").fetchall(), key=repr)
            for m in stages.MARTS
        }


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, aws_endpoint: str) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("e2e")
    truth = generate(SPEC, work / "logs")
    settings = replace(load_settings("local"), work_dir=work, lake_bucket="e2e-lake")
    settings = settings.with_endpoint(aws_endpoint)
    files = {name: [work / "logs" / file] for name, file in FILE_NAMES.items()}
    run_date = datetime.now(UTC).date()
    report = run_pipeline(settings, files, run_date)
    return {
        "truth": truth,
        "report": report,
        "settings": settings,
        "files": files,
        "run_date": run_date,
        "marts": marts(settings.duckdb_path),
    }


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
    truth = pipeline["truth"].to_json()
    with duckdb.connect(str(pipeline["settings"].duckdb_path), read_only=True) as con:
        orders = {
            row[0]: {
                "customer_id": row[1],
                "status": row[2],
                "currency": row[3],
                "total": str(row[4]),
                "lines": row[5],
            }
            for row in con.execute(
                "select order_id, customer_id, order_status, currency_code,"
                " cast(order_total as decimal(12, 2)), line_count from marts.fct_orders"
            ).fetchall()
        }
        assert orders == {
            k: {**v, "total": str(Decimal(v["total"]).quantize(Decimal("0.01")))}
            for k, v in truth["orders"].items()
        }
        customers = {
            r[0] for r in con.execute("select customer_id from marts.dim_customers").fetchall()
        }
        assert len(customers) == truth["customers"]
        lines = con.execute("select count(*) from marts.fct_order_lines").fetchone()
        assert lines == (truth["order_lines"],)
        sessions = dict(
            con.execute(
                "select case when is_bot then 'bot' else 'human' end, count(*)"
                " from marts.fct_web_sessions group by 1"
            ).fetchall()
        )
        assert sessions == truth["sessions"]
        page_views = con.execute("select sum(page_view_count) from marts.fct_web_sessions")
        assert page_views.fetchone() == (truth["page_views"],)
    assert pipeline["report"].marts["dim_products"] == 20


def test_malformed_lines_are_in_the_quarantine_zone_with_reasons(
    pipeline: dict[str, Any], s3: Any
) -> None:
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


def test_docs_site_is_generated(pipeline: dict[str, Any]) -> None:
    assert pipeline["report"].docs_path.is_file()


def test_rerunning_the_same_date_and_resending_the_logs_change_nothing(
    pipeline: dict[str, Any], s3: Any
) -> None:
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
    report = run_pipeline(settings, pipeline["files"], run_date)
    assert marts(settings.duckdb_path) == pipeline["marts"]
    for name, expected in pipeline["truth"].streams.items():
        assert report.streams[name].duplicates == expected.duplicates * 2 + expected.valid
