"""`make airflow`'s stack runs tasks: on a fresh Airflow home, the scheduler's worker and
the API server agree on the token each task runs with, and the pipeline's first task
succeeds under the real scheduler (not `airflow dags test`)."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import pytest

from local.airflow_runner import (
    DAG_ID,
    admin_log,
    airflow_env,
    airflow_home,
    running_airflow,
    unpause_when_parsed,
)
from local.aws import provision_local
from orchestration.runners.dbt import build_manifest
from orchestration.settings import load_settings

pytestmark = pytest.mark.integration

FINISHED = {"success", "failed", "up_for_retry", "upstream_failed"}


def first_task_state(database: Path, timeout: float = 240) -> str | None:
    """The state the scheduled run's first task ends in, or its last state at the timeout."""
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        time.sleep(2)
        with sqlite3.connect(database) as db:
            row = db.execute(
                "select state from task_instance where dag_id = ? and task_id = 'run_date'",
                (DAG_ID,),
            ).fetchone()
        state = row[0] if row else None
        if state in FINISHED:
            return state
    return state


def test_the_scheduler_runs_the_pipelines_first_task(tmp_path: Path, own_aws_endpoint: str) -> None:
    settings = replace(load_settings("local"), work_dir=tmp_path / "work")
    settings = settings.with_endpoint(own_aws_endpoint)
    provision_local(settings)
    build_manifest(settings, tmp_path / "dbt.log")
    with running_airflow(settings):
        # Unpaused, the DAG's daily schedule starts a run for the last full day.
        unpause_when_parsed(airflow_env(settings), admin_log(settings))
        state = first_task_state(airflow_home(settings) / "airflow.db")
    scheduler_log = (settings.work_dir / "logs" / "airflow-scheduler.log").read_text()
    assert state == "success", scheduler_log[-3000:]
    assert "Invalid auth token" not in scheduler_log
