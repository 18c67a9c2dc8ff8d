"""Source freshness is measured on event time and stops the run past its error threshold.

dbt compares the newest event with the warehouse's clock, so the data is dated relative to
it: events from the year 2000 are stale whenever the test runs, events an hour old fresh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestration import stages
from orchestration.settings import DBT_PROJECT_DIR, load_settings
from orchestration.tools import ToolFailed

DBT = str(Path(sys.executable).with_name("dbt"))
# The event-time column each source table is measured on (order_lines: its run date).
EVENT_TIME = {"customers": "event_at", "orders": "event_at", "web_requests": "request_at"}
TABLES = [*EVENT_TIME, "order_lines"]


def write_zone(root: Path, newest_event: datetime) -> str:
    """A processed zone with one file per table whose newest event is ``newest_event``, in
    today's partition: a run date says nothing of how old the events it brought are."""
    run_date = datetime.now(UTC).date()
    for table in TABLES:
        folder = root / table / f"dt={run_date.isoformat()}"
        folder.mkdir(parents=True)
        column = EVENT_TIME.get(table, "event_id")
        value = newest_event.replace(tzinfo=None) if table in EVENT_TIME else "e-1"
        pq.write_table(pa.table({column: [value]}), folder / "part-00000.parquet")
    return str(root / "{name}" / "dt=*" / "*.parquet")


def source_freshness(tmp_path: Path, newest_event: datetime) -> subprocess.CompletedProcess[str]:
    zone = write_zone(tmp_path / "processed", newest_event)
    return subprocess.run(
        [DBT, "source", "freshness", "--target", "duckdb", "--target-path",
         str(tmp_path / "target")],
        cwd=DBT_PROJECT_DIR, capture_output=True, text=True, timeout=300,
        env={**os.environ, "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
             "DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
             "SHOPLOGS_PROCESSED_PARQUET": zone},
    )  # fmt: skip


@pytest.mark.integration
def test_events_older_than_the_error_threshold_fail_naming_the_source(tmp_path: Path) -> None:
    result = source_freshness(tmp_path, datetime(2000, 1, 1, 12, tzinfo=UTC))
    assert result.returncode != 0
    for table in ("shop.customers", "shop.orders", "web.web_requests"):
        assert f"ERROR STALE freshness of {table}" in result.stdout, result.stdout[-3000:]
    statuses = stages.freshness_statuses(tmp_path / "target" / "sources.json")
    assert statuses["shop.customers"] == "error"


@pytest.mark.integration
def test_recent_events_pass(tmp_path: Path) -> None:
    result = source_freshness(tmp_path, datetime.now(UTC) - timedelta(hours=1))
    assert result.returncode == 0, result.stdout[-3000:]
    statuses = stages.freshness_statuses(tmp_path / "target" / "sources.json")
    measured = ("shop.customers", "shop.orders", "web.web_requests")
    assert {statuses[name] for name in measured} == {"pass"}


def failing_dbt(*_args: object, **_kwargs: object) -> None:
    raise ToolFailed("`dbt source freshness` failed")


TODAY = date(2026, 11, 23)


@pytest.mark.parametrize(
    ("fails_run", "run_date", "raises"),
    [
        (True, TODAY, True),  # an asset-triggered run of today
        (True, TODAY - timedelta(days=1), True),  # the nightly run of yesterday
        (True, TODAY - timedelta(days=2), False),  # a backfill reports, never fails
        (True, date(2026, 1, 5), False),
        (False, TODAY, False),  # local: the demo's events carry fixed dates
    ],
)
def test_a_stale_source_fails_the_current_run_where_the_environment_says_so(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fails_run: bool,
    run_date: date,
    raises: bool,
) -> None:
    monkeypatch.setattr(stages, "run_dbt", failing_dbt)
    monkeypatch.setenv("SHOPLOGS_WORK_DIR", str(tmp_path))
    settings = load_settings("local")
    settings = replace(settings, freshness_fails_run=fails_run)
    # What dbt source freshness left in the run's target/ (under the work dir).
    settings.dbt_target_dir.mkdir(parents=True)
    results = [{"unique_id": "source.shoplogs.shop.customers", "status": "error"}]
    (settings.dbt_target_dir / "sources.json").write_text(json.dumps({"results": results}))
    if raises:
        with pytest.raises(ToolFailed):
            stages.check_freshness(settings, run_date, TODAY)
    else:
        assert stages.check_freshness(settings, run_date, TODAY) == {"shop.customers": "error"}


def test_only_local_runs_carry_on_past_a_stale_source() -> None:
    assert load_settings("local").freshness_fails_run is False
    assert load_settings("prod").freshness_fails_run is True
