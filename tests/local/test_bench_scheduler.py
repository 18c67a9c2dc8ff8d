"""`make bench` reads the dbt stage's span under the scheduler from Airflow's task instances,
and ships the logs so that the run an unpaused DAG starts claims them."""

from __future__ import annotations

from datetime import UTC, datetime

from local.bench_scheduler import dbt_span, medians, scheduled_run_start
from orchestration.tasks.pipeline import run_date_of


def test_the_dbt_stage_runs_from_its_first_tasks_start_to_its_last_tasks_end() -> None:
    rows = [
        ("load_raw", "2026-12-02 10:00:00.000000", "2026-12-02 10:00:05.000000"),
        ("dbt.dbt_producer_watcher", "2026-12-02 10:00:06.500000", "2026-12-02 10:00:20.000000"),
        ("dbt.fct_orders", "2026-12-02 10:00:21.000000", "2026-12-02 10:00:29.250000"),
        ("dbt.dim_date", "2026-12-02 10:00:21.000000", "2026-12-02 10:00:22.000000"),
        ("dbt_docs", "2026-12-02 10:00:30.000000", "2026-12-02 10:00:40.000000"),
    ]
    assert dbt_span(rows) == 22.75


def test_no_span_when_a_dbt_task_never_ran() -> None:
    rows = [("dbt.dbt_producer_watcher", "2026-12-02 10:00:06+00:00", None)]
    assert dbt_span(rows) is None
    assert dbt_span([("load_raw", "2026-12-02 10:00:00", "2026-12-02 10:00:01")]) is None


def test_logs_arrive_on_the_day_the_scheduled_run_processes() -> None:
    now = datetime(2026, 12, 2, 0, 20, tzinfo=UTC)  # just after the daily 00:15 run is due
    # Catchup off: the run for the last full interval, whose start is yesterday 00:15.
    scheduled_logical_date = datetime(2026, 12, 1, 0, 15, tzinfo=UTC)
    arrival = scheduled_run_start(now)
    assert arrival.date() == run_date_of(scheduled_logical_date, now)
    # Before 00:15 the latest due run is the one for the day before yesterday.
    early = datetime(2026, 12, 2, 0, 10, tzinfo=UTC)
    assert scheduled_run_start(early).date() == datetime(2026, 11, 30, tzinfo=UTC).date()


def run(state: str, stage: float | None, plain: float | None) -> dict[str, object]:
    ratio = round(stage / plain, 2) if stage is not None and plain else None
    return {"run_state": state, "dbt_stage_seconds": stage, "dbt_build_plain_seconds": plain,
            "dbt_stage_ratio": ratio, "run_seconds": 60.0, "dbt_tasks": 23}  # fmt: skip


def test_the_scheduler_figures_are_the_medians_of_the_runs_that_measured_them() -> None:
    runs = [run("success", 23.69, 13.75), run("success", 18.6, 13.22), run("success", 19.67, 18.3)]
    summary = medians(runs)
    assert summary["dbt_stage_seconds"] == 19.67
    assert summary["dbt_build_plain_seconds"] == 13.75
    assert summary["dbt_stage_ratio"] == 1.41  # each run's ratio over its own plain build
    assert summary["run_state"] == "success" and summary["dbt_tasks"] == 23


def test_a_failed_run_is_shown_and_left_out_of_the_medians() -> None:
    summary = medians([run("success", 20.0, 16.0), run("failed", 30.0, None)])
    assert summary["run_state"] == "failed"
    assert summary["dbt_stage_ratio"] == 1.25
    assert summary["dbt_stage_seconds"] == 20.0
