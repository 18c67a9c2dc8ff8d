"""Airflow on this machine, against the same local stack: ``make run`` (``airflow dags
test``) and ``make airflow`` (API server, scheduler, DAG processor, triggerer)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from orchestration.dag_parts import DUCKDB_POOL
from orchestration.settings import DBT_PROJECT_DIR, REPO_ROOT, Settings

DAG_ID = "shoplogs_pipeline"


class AirflowRunError(RuntimeError):
    pass


def airflow_home(settings: Settings) -> Path:
    return settings.work_dir / "airflow"


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment for every Airflow process: config, the AWS connection, the settings."""
    home = airflow_home(settings)
    aws_extra: dict[str, str] = {"region_name": settings.region}
    if settings.aws_endpoint_url:
        aws_extra["endpoint_url"] = settings.aws_endpoint_url
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "orchestration" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        # No phoning home: this machine (and many a VPC) has no route out, and each
        # attempt costs a DNS timeout per task.
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "SCARF_NO_ANALYTICS": "true",
        "DO_NOT_TRACK": "1",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {
                "conn_type": "aws",
                "login": os.environ.get("AWS_ACCESS_KEY_ID", ""),
                "password": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
                "extra": aws_extra,
            }
        ),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "SHOPLOGS_ENV": settings.env,
        "SHOPLOGS_WORK_DIR": str(settings.work_dir),
        "LAKE_BUCKET": settings.lake_bucket,
        "SPARK_RUNNER": settings.spark_runner,
        "DBT_TARGET": settings.dbt_target,
        "AWS_REGION": settings.region,
    }
    if settings.aws_endpoint_url:
        env["AWS_ENDPOINT_URL"] = settings.aws_endpoint_url
    return env


def _airflow(env: dict[str, str], *args: str, log_file: Path | None = None) -> None:
    command = [str(Path(sys.executable).with_name("airflow")), *args]
    if log_file is None:
        captured = subprocess.run(command, env=env, capture_output=True, text=True)
        returncode, output = captured.returncode, captured.stdout + captured.stderr
    else:
        with log_file.open("ab") as log:
            returncode = subprocess.run(
                command, env=env, stdout=log, stderr=subprocess.STDOUT
            ).returncode
        output = log_file.read_text(errors="replace")
    if returncode != 0:
        tail = "\n".join(output.splitlines()[-25:])
        where = f"; full log: {log_file}" if log_file else ""
        raise AirflowRunError(f"`airflow {' '.join(args)}` failed{where}\n{tail}")


def build_manifest(settings: Settings, log_file: Path) -> Path:
    """``dbt parse``: the manifest Cosmos renders the DAG from (no warehouse needed)."""
    from orchestration.dbt_runner import run_dbt

    run_dbt(settings, ["parse"], log_file)
    return DBT_PROJECT_DIR / "target" / "manifest.json"


def prepare(settings: Settings) -> dict[str, str]:
    """Metadata database and the DuckDB writer pool; quick when already done."""
    env = airflow_env(settings)
    home = airflow_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    _airflow(env, "db", "migrate")
    _airflow(env, "pools", "set", DUCKDB_POOL, "1", "DuckDB allows a single writer")
    return env


def dags_test(settings: Settings, run_date: date, log_file: Path) -> None:
    """Run the pipeline DAG once for ``run_date``, every task in this process's order."""
    env = prepare(settings)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text("")
    # A fresh local stack each time: forget runs (and their deferred tasks) of earlier ones.
    with contextlib.suppress(AirflowRunError):  # nothing to forget on a new database
        _airflow(env, "dags", "delete", DAG_ID, "--yes")
    _airflow(env, "dags", "test", DAG_ID, run_date.isoformat(), log_file=log_file)
