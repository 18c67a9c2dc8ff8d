"""Where the time of an `airflow dags test` run goes, read from its output; what `make
airflow`'s executor does before it forks, and how its workers' supervisors wait."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from unittest import mock

import pytest
from airflow.sdk.execution_time import supervisor
from airflow.sdk.execution_time.supervisor import ActivitySubprocess, WatchedSubprocess

from local import airflow_executor
from local.airflow_executor import PRELOADED, parse_dag_files, parsed_dag_bag, service_until_exit
from local.airflow_runner import DAGS_FOLDER, airflow_home, dag_seconds, prepare, task_seconds
from orchestration.settings import DUCKDB_POOL, REPO_ROOT, load_settings

LOG = """\
2026-11-23T04:45:38.000000Z [info     ] Filling up the DagBag from /dags [dagbag]
2026-11-23T04:45:44.000000Z [info] [DAG TEST] starting task_id=run_date map_index=-1 [dag]
2026-11-23T04:45:51.000000Z [info] [DAG TEST] end task task_id=run_date map_index=-1 [dag]
2026-11-23T04:45:51.500000Z [info] [DAG TEST] starting task_id=dbt.dbt_producer_watcher
2026-11-23T04:46:05.000000Z [info] [DAG TEST] end task task_id=dbt.dbt_producer_watcher
2026-11-23T04:46:05.100000Z [info] [DAG TEST] starting task_id=dbt.fct_orders map_index=-1
2026-11-23T04:46:05.500000Z [info] [DAG TEST] end task task_id=dbt.fct_orders map_index=-1
2026-11-23T04:46:06.000000Z [info] [DAG TEST] starting task_id=summary map_index=-1 [dag]
2026-11-23T04:46:06.250000Z [info] [DAG TEST] end task task_id=summary map_index=-1 [dag]
"""


def test_a_task_group_counts_as_one_task_from_its_first_start_to_its_last_end() -> None:
    assert task_seconds(LOG.splitlines()) == {"run_date": 7.0, "dbt": 14.0, "summary": 0.25}


def test_the_rest_of_the_run_is_airflow_itself(tmp_path: Path) -> None:
    log = tmp_path / "airflow.log"
    log.write_text(LOG)
    seconds = dag_seconds(log, total=30.0)
    assert seconds["airflow itself"] == 30.0 - 7.0 - 14.0 - 0.25
    assert list(seconds) == ["run_date", "dbt", "summary", "airflow itself"]


def test_the_executor_preloads_only_what_a_task_process_imports_anyway() -> None:
    """The modules ``make airflow``'s executor imports before it forks its workers are ones
    a task process would import: Airflow's task runner, and the DAG file's own imports."""
    probe = (
        "import sys; from airflow.dag_processing.dagbag import DagBag; "
        "import airflow.sdk.execution_time.task_runner; "
        f"bag = DagBag(dag_folder={str(DAGS_FOLDER)!r}); assert not bag.import_errors; "
        f"print(sorted(set({list(PRELOADED)!r}) - set(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "AIRFLOW__COSMOS__ENABLE_CACHE": "False"}
    found = subprocess.run([sys.executable, "-c", probe], env=env, cwd=REPO_ROOT,
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert found.stdout.strip().splitlines()[-1] == "[]"


DAG_FILE = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
with DAG(dag_id="{dag_id}", start_date=datetime(2026, 1, 1), schedule=None):
    EmptyOperator(task_id="only")
"""


def test_a_task_runs_the_dag_as_its_file_reads_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executor parses each DAG file once before it forks; a task gets that parse while
    the file is unchanged, and its own parse of the file once it has been edited."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # a DagBag adds its bundle to sys.path
    dag_file = tmp_path / "dag.py"
    dag_file.write_text(DAG_FILE.format(dag_id="before"))
    monkeypatch.setattr(airflow_executor, "PARSED", parse_dag_files(tmp_path))
    parse = {"safe_mode": False, "load_op_links": False, "bundle_path": tmp_path,
             "bundle_name": "dags-folder"}  # fmt: skip

    assert list(parsed_dag_bag(dag_folder=str(dag_file), **parse).dags) == ["before"]
    first = parsed_dag_bag(dag_folder=str(dag_file), **parse)
    assert parsed_dag_bag(dag_folder=str(dag_file), **parse) is first

    dag_file.write_text(DAG_FILE.format(dag_id="after"))
    later = dag_file.stat().st_mtime_ns + 1_000_000_000
    os.utime(dag_file, ns=(later, later))
    assert list(parsed_dag_bag(dag_folder=str(dag_file), **parse).dags) == ["after"]


def closes_its_sockets_then_exits() -> None:
    """A task process's last moments: its sockets to the supervisor close before it exits."""
    for fd in range(64):
        with contextlib.suppress(OSError):
            os.close(fd)
    time.sleep(0.5)
    os._exit(0)


def test_a_supervisor_sees_its_task_exit_after_the_task_closed_its_sockets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no socket left to wake its ``select()``, Airflow's supervisor sleeps a whole
    heartbeat interval after the task has gone, holding its worker; the executor's waits on
    the process instead. The interval is made 300 s: the supervisor must be done long before."""
    monkeypatch.setattr(supervisor, "MIN_HEARTBEAT_INTERVAL", 300)
    monkeypatch.setattr(ActivitySubprocess, "_service_subprocess", service_until_exit)
    task = WatchedSubprocess.start.__func__(  # type: ignore[attr-defined]
        ActivitySubprocess, id=uuid.uuid4(), client=mock.MagicMock(),
        target=closes_its_sockets_then_exits,
    )  # fmt: skip
    supervising = threading.Thread(target=task._monitor_subprocess, daemon=True)
    supervising.start()
    supervising.join(timeout=60)
    assert not supervising.is_alive(), "the supervisor still waits for a task that has exited"
    assert task._exit_code == 0


@pytest.mark.integration
def test_a_relative_work_folder_holds_the_airflow_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``SHOPLOGS_WORK_DIR=runs/mine make run``: Airflow refuses a relative SQLite path, so
    the setting is made absolute (the folder under the one ``make run`` started in)."""
    monkeypatch.setenv("SHOPLOGS_WORK_DIR", "runs/mine")
    monkeypatch.chdir(tmp_path)
    settings = load_settings("local")
    assert settings.work_dir == tmp_path / "runs" / "mine"
    prepare(settings)  # the metadata database, as `make run` sets it up
    assert (airflow_home(settings) / "airflow.db").is_file()


@pytest.mark.integration
def test_a_deleted_airflow_database_is_set_up_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A run skips the migration when the database is where this Airflow left it; one whose
    database was deleted since still gets the schema and the DuckDB writer pool."""
    monkeypatch.setenv("SHOPLOGS_WORK_DIR", str(tmp_path))
    settings = load_settings("local")
    database = airflow_home(settings) / "airflow.db"
    prepare(settings)
    database.unlink()
    prepare(settings)
    with sqlite3.connect(database) as db:
        assert db.execute(
            "select slots from slot_pool where pool = ?", [DUCKDB_POOL]
        ).fetchall() == [(1,)]
