"""Airflow on this machine, against the same local stack: ``make run`` (``airflow dags
test``) and ``make airflow`` (API server, scheduler, DAG processor, triggerer)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from ingestion.local_aws import free_port
from orchestration.dag_parts import DUCKDB_POOL
from orchestration.settings import DBT_PROJECT_DIR, REPO_ROOT, Settings, load_settings

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
    # A fresh local stack each time (moto keeps nothing): forget the runs, and deferred
    # tasks, of earlier ones, so none of them blocks or resumes against data that is gone.
    with contextlib.suppress(AirflowRunError):  # nothing to forget on a new database
        _airflow(env, "dags", "delete", DAG_ID, "--yes")
    return env


def dags_test(settings: Settings, run_date: date, log_file: Path) -> None:
    """Run the pipeline DAG once for ``run_date``, every task in this process's order."""
    env = prepare(settings)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text("")
    _airflow(env, "dags", "test", DAG_ID, run_date.isoformat(), log_file=log_file)


def _wait_for_health(url: str, processes: list[subprocess.Popen], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise AirflowRunError("an Airflow component exited at start; see .local/logs/")
        try:
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2) as reply:
                health = json.loads(reply.read())
            if health.get("scheduler", {}).get("status") == "healthy":
                return
        except OSError:
            pass
        time.sleep(1)
    raise AirflowRunError(f"Airflow did not report healthy at {url} within {timeout:.0f} s")


@contextlib.contextmanager
def running_airflow(settings: Settings) -> Iterator[tuple[str, str, str]]:
    """API server, scheduler, DAG processor and triggerer on free ports; yields (url,
    user, password) and stops them all on exit."""
    env = prepare(settings)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env |= {
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    logs = settings.work_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    commands = {
        "api-server": [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port)],
        "scheduler": [airflow, "scheduler"],
        "dag-processor": [airflow, "dag-processor"],
        "triggerer": [airflow, "triggerer"],
    }
    processes = []
    try:
        for name, command in commands.items():
            log = (logs / f"airflow-{name}.log").open("ab")
            # Own process group each: stopping one also stops the workers it forked.
            processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=log,
                                              start_new_session=True))  # fmt: skip
        _wait_for_health(url, processes)
        passwords = json.loads(
            (airflow_home(settings) / "simple_auth_manager_passwords.json.generated").read_text()
        )
        yield url, "admin", passwords["admin"]
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def unpause_when_parsed(env: dict[str, str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _airflow(env, "dags", "unpause", DAG_ID)
            return
        except AirflowRunError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)  # the DAG processor has not registered the DAG yet


def serve() -> int:
    """``make airflow``: local Airflow against a local AWS holding the demo's logs."""
    from ingestion.local_aws import LOCAL_CREDENTIALS, moto_server
    from orchestration import stages
    from orchestration.run_local import demo_files, parse_args

    settings = load_settings()
    os.environ.update(LOCAL_CREDENTIALS)
    # SIGTERM (a service manager, `timeout`) stops everything as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    logs = settings.work_dir / "logs"
    with moto_server(log_file=logs / "moto.log") as endpoint:
        settings = settings.with_endpoint(endpoint)
        stages.provision_local(settings)
        build_manifest(settings, logs / "dbt.log")
        with running_airflow(settings) as (url, user, password):
            unpause_when_parsed(airflow_env(settings))
            # Landing objects raise S3 events on the queue; the DAG's asset watcher hears
            # them and starts a run: the event-driven path, end to end.
            shipped = stages.ship_logs(settings, demo_files(settings, parse_args([])))
            lines = sum(s.lines_shipped for s in shipped.values())
            print(
                f"\nAirflow is up: {url}  (login: {user} / {password})\n"
                f"Local AWS (moto): {endpoint}; {lines} demo log lines shipped to landing/,\n"
                f"which starts a '{DAG_ID}' run through the landing events queue.\n"
                "Logs: .local/logs/airflow-*.log. Press Ctrl-C to stop everything.",
                flush=True,
            )
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    return 0


if __name__ == "__main__":
    raise SystemExit(serve())
