"""The dbt stage under the real scheduler, for ``make bench``: ``make airflow``'s stack
(LocalExecutor, API server, DAG processor, triggerer) runs the pipeline DAG once on the demo,
and the dbt group's span is read from Airflow's database (its task instances' start and end),
where ``airflow dags test`` runs one task at a time and hides what pools and slots cost."""

from __future__ import annotations

import sqlite3
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from local.airflow_runner import DAG_ID, poll_row, scheduled_run
from local.aws import moto_server, provision_local, ship_logs
from local.run import fresh_warehouse
from orchestration import stages
from orchestration.settings import Settings

FINISHED_RUN = {"success", "failed"}
# The DAG's daily run is due at 00:15 UTC ("15 0 * * *").
SCHEDULE_OFFSET = timedelta(minutes=15)


def scheduled_run_start(now: datetime) -> datetime:
    """When the logs must arrive for the run an unpaused DAG starts at ``now``: its daily
    schedule (catchup off) runs the last full day, which claims what arrived on it."""
    due = (now - SCHEDULE_OFFSET).date()  # the day whose 00:15 run is the latest due
    return datetime.combine(due - timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=12)


def dbt_span(rows: list[tuple[str, str | None, str | None]]) -> float | None:
    """Seconds from the first ``dbt.*`` task's start to the last one's end, from task
    instances' (task_id, start_date, end_date); None if a dbt task never ran."""
    spans = [(start, end) for task, start, end in rows if task.startswith("dbt.")]
    if not spans or any(start is None or end is None for start, end in spans):
        return None
    starts = [datetime.fromisoformat(str(start)) for start, _ in spans]
    ends = [datetime.fromisoformat(str(end)) for _, end in spans]
    return (max(ends) - min(starts)).total_seconds()


def plain_dbt_build(settings: Settings, run_date: date) -> float:
    """Seconds of a plain ``dbt build`` of the work a run's dbt stage does: on a fresh
    warehouse with the run's raw layer loaded, for its run date. (A second build on the same
    warehouse is ~5% slower here: its incremental models delete before they insert.)"""
    fresh_warehouse(settings)
    stages.load_warehouse(settings, run_date)
    start = time.perf_counter()
    stages.build_warehouse(settings, run_date=run_date)
    return round(time.perf_counter() - start, 2)


def measure(
    settings: Settings, files: dict[str, list[Path]], runs: int = 3, timeout: float = 1200
) -> dict[str, Any]:
    """``measure_once`` ``runs`` times: the medians, and each run's figures beside them.

    The host's speed swings within minutes: four runs in ten minutes here gave plain builds
    of 13.2-21.1 s and ratios of 1.07-1.72, so one run's ratio says little."""
    each = [measure_once(settings, files, timeout) for _ in range(runs)]
    return {**medians(each), "runs": each}


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The medians of each figure over the runs that succeeded (a failed run's span is not
    the work's); ``run_state`` is the first state other than success, if any."""
    done = [run for run in runs if run["run_state"] == "success"]
    states = [run["run_state"] for run in runs]
    summary: dict[str, Any] = {
        "run_state": next((state for state in states if state != "success"), "success"),
    }
    for figure in ("dbt_stage_seconds", "dbt_build_plain_seconds", "dbt_stage_ratio",
                   "run_seconds"):  # fmt: skip
        values = [run[figure] for run in done if run[figure] is not None]
        summary[figure] = round(statistics.median(values), 2) if values else None
    summary["dbt_tasks"] = max((run["dbt_tasks"] for run in runs), default=0)
    return summary


def measure_once(
    settings: Settings, files: dict[str, list[Path]], timeout: float = 1200
) -> dict[str, Any]:
    """Run the DAG once under the scheduler on ``files``; the dbt group's span and the
    run's own, from Airflow's database, and a plain build of the same work right after."""
    now = datetime.now(UTC)
    logs = settings.work_dir / "logs"
    with moto_server(logs / "moto.log", clock_start=scheduled_run_start(now)) as endpoint:
        settings = settings.with_endpoint(endpoint)
        provision_local(settings)
        ship_logs(settings, files)
        with scheduled_run(settings) as database:
            found = poll_row(
                database,
                "select run_id, state from dag_run where dag_id = ? order by id limit 1",
                (DAG_ID,),
                done=lambda row: row[1] in FINISHED_RUN,
                timeout=timeout,
            )
        succeeded = found is not None and found[1] == "success"
        plain = plain_dbt_build(settings, scheduled_run_start(now).date()) if succeeded else None
    run_id, state = (str(found[0]), found[1]) if found else ("", None)
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "select task_id, start_date, end_date from task_instance where dag_id = ? and "
            "run_id = ?",
            (DAG_ID, run_id),
        ).fetchall()
        run = db.execute(
            "select start_date, end_date from dag_run where run_id = ?", (run_id,)
        ).fetchone()
    dbt = dbt_span(rows)
    whole = dbt_span([("dbt.run", *run)]) if run else None
    return {
        "run_state": state,
        "dbt_stage_seconds": round(dbt, 2) if dbt is not None else None,
        "dbt_build_plain_seconds": plain,
        "dbt_stage_ratio": round(dbt / plain, 2) if dbt is not None and plain else None,
        "run_seconds": round(whole, 2) if whole is not None else None,
        "dbt_tasks": sum(1 for task, *_ in rows if task.startswith("dbt.")),
    }
