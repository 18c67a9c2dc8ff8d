"""`make airflow`'s stack runs tasks: on a fresh Airflow home, the scheduler's worker and
the API server agree on the token each task runs with, and the pipeline's first task
succeeds under the real scheduler (not `airflow dags test`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from local.airflow_runner import DAG_ID, poll_row, scheduled_run
from local.aws import provision_local
from orchestration.settings import load_settings

pytestmark = pytest.mark.integration

FINISHED = {"success", "failed", "up_for_retry", "upstream_failed"}


def test_the_scheduler_runs_the_pipelines_first_task(tmp_path: Path, own_aws_endpoint: str) -> None:
    settings = replace(load_settings("local"), work_dir=tmp_path / "work")
    settings = settings.with_endpoint(own_aws_endpoint)
    provision_local(settings)
    with scheduled_run(settings) as database:
        # Unpaused, the DAG's daily schedule starts a run for the last full day.
        row = poll_row(
            database,
            "select state from task_instance where dag_id = ? and task_id = 'run_date'",
            (DAG_ID,),
            done=lambda found: found[0] in FINISHED,
            timeout=240,
        )
    scheduler_log = (settings.work_dir / "logs" / "airflow-scheduler.log").read_text()
    assert row is not None and row[0] == "success", scheduler_log[-3000:]
    assert "Invalid auth token" not in scheduler_log
