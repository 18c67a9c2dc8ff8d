"""Airflow on this machine, against the same local stack: ``make run`` (``airflow dags
test``) and ``make airflow`` (API server, scheduler, DAG processor, triggerer)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path

from local.servers import free_port, wait_until_answers
from orchestration.runners.dbt import (
    AIRFLOW_CONFIGURATION,
    build_manifest,
    docs_view_configuration,
)
from orchestration.settings import DUCKDB_POOL, REPO_ROOT, Settings, settings_for_command
from orchestration.tools import ToolFailed, run_tool

DAG_ID = "shoplogs_pipeline"
# `airflow dags test` runs one task at a time: the DAG is built for it (Settings).
DAGS_TEST_ENV = {"SHOPLOGS_TASKS_ONE_AT_A_TIME": "true"}
DAG_TEST_LINE = re.compile(r"\[DAG TEST\] (?:starting|end) (?:task )?task_id=(?P<task>\S+)")


def airflow_home(settings: Settings) -> Path:
    return settings.work_dir / "airflow"


def config_env_var(option: str) -> str:
    """``section.key`` as the environment variable Airflow reads it from."""
    section, key = option.split(".", 1)
    return f"AIRFLOW__{section.upper()}__{key.upper()}"


# The DAG file and the code its tasks import, as this clone holds them.
DAGS_FOLDER = REPO_ROOT / "orchestration" / "dags"


def airflow_env(settings: Settings, bundle: Path | None = None) -> dict[str, str]:
    """Environment for every Airflow process: config, the AWS connection, the settings.

    ``bundle``: run the DAGs folder of an MWAA bundle (``make mwaa-bundle``'s ``dags/``,
    which holds the DAG file beside the code it imports) instead of this clone's."""
    home = airflow_home(settings)
    aws_extra: dict[str, str] = {"region_name": settings.region}
    if settings.aws_endpoint_url:
        aws_extra["endpoint_url"] = settings.aws_endpoint_url
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(bundle or DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        # No phoning home: this machine (and many a VPC) has no route out, and each
        # attempt costs a DNS timeout per task.
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        **{config_env_var(option): value for option, value in AIRFLOW_CONFIGURATION.items()},
        # The UI's dbt docs view reads the site each run publishes to this folder.
        **{
            config_env_var(option): value
            for option, value in docs_view_configuration(str(settings.site_dir / "docs")).items()
        },
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
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(bundle or REPO_ROOT), os.environ.get("PYTHONPATH")])
        ),
        "SHOPLOGS_ENV": settings.env,
        "SHOPLOGS_WORK_DIR": str(settings.work_dir),
        "LAKE_BUCKET": settings.lake_bucket,
        "SPARK_RUNNER": settings.spark_runner,
        "DBT_TARGET": settings.dbt_target,
        # Cosmos names each model's asset from the profile as the Airflow process reads it.
        "DUCKDB_PATH": str(settings.duckdb_path),
        "AWS_REGION": settings.region,
    }
    if settings.aws_endpoint_url:
        env["AWS_ENDPOINT_URL"] = settings.aws_endpoint_url
    return env


def _airflow(env: dict[str, str], *args: str, log_file: Path) -> None:
    command = [str(Path(sys.executable).with_name("airflow")), *args]
    run_tool(command, what=f"`airflow {' '.join(args)}`", log_file=log_file, env=env,
             append=True, telling=lambda lines: lines[-25:])  # fmt: skip


def prepare(settings: Settings, bundle: Path | None = None) -> dict[str, str]:
    """Metadata database and the DuckDB writer pool; quick when already done."""
    env = airflow_env(settings, bundle)
    home = airflow_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    run_tool([sys.executable, "-m", "local.airflow_admin", DAG_ID, DUCKDB_POOL],
             what="the Airflow metadata database's setup", log_file=admin_log(settings),
             env=env, append=True, telling=lambda lines: lines[-25:])  # fmt: skip
    return env


def admin_log(settings: Settings) -> Path:
    """Where the output of the one-off airflow commands (migrate, pools, unpause) goes."""
    return settings.work_dir / "logs" / "airflow-admin.log"


def dags_test(
    settings: Settings, run_date: date, log_file: Path, env: dict[str, str] | None = None
) -> None:
    """Run the pipeline DAG once for ``run_date``, every task in this process's order;
    ``env`` is what ``prepare`` returned, if it has run."""
    env = env or prepare(settings)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text("")
    _airflow(env | DAGS_TEST_ENV, "dags", "test", DAG_ID, run_date.isoformat(), log_file=log_file)


_TASK_END = re.compile(r"\[DAG TEST\] end task task_id=(?P<task>\S+)")


def finished_task(line: str) -> str | None:
    """The task an ``airflow dags test`` log line says has just ended, or None."""
    match = _TASK_END.search(line)
    return match["task"] if match else None


def task_seconds(log_lines: list[str]) -> dict[str, float]:
    """Seconds per task of an ``airflow dags test`` run, from its ``[DAG TEST]`` lines, in
    the order the tasks started; a task group (``dbt.*``) counts as one task, from its first
    task's start to its last one's end (the tasks run one at a time)."""
    spans: dict[str, list[datetime]] = {}
    for line in log_lines:
        match = DAG_TEST_LINE.search(line)
        if match:
            stamp = datetime.fromisoformat(line.split()[0].replace("Z", "+00:00"))
            spans.setdefault(match["task"].split(".")[0], []).append(stamp)
    return {task: (max(s) - min(s)).total_seconds() for task, s in spans.items()}


def dag_seconds(log_file: Path, total: float) -> dict[str, float]:
    """Seconds per task, and the rest: Airflow starting, parsing, scheduling, stopping."""
    tasks = task_seconds(log_file.read_text(errors="replace").splitlines())
    return {**tasks, "airflow itself": max(total - sum(tasks.values()), 0.0)}


def scheduler_healthy(status: int, body: bytes) -> bool:
    return status == 200 and json.loads(body).get("scheduler", {}).get("status") == "healthy"


@contextlib.contextmanager
def running_airflow(settings: Settings) -> Iterator[tuple[str, str, str]]:
    """API server, scheduler, DAG processor and triggerer on free ports; yields (url,
    user, password) and stops them all on exit."""
    env = prepare(settings)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env |= {
        # One key for the tokens every process signs and checks (a task's token is made by
        # the scheduler, checked by the API server). Unset, each process started beside
        # the others on a fresh home makes its own, and every task fails: "Invalid auth
        # token".
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        # LocalExecutor, its workers forked with what every task imports (airflow_executor.py).
        "AIRFLOW__CORE__EXECUTOR": "local.airflow_executor.PreloadedLocalExecutor",
        # The longest the scheduler sleeps when a loop found nothing to do (1 s by default):
        # a task that ends waits for it before its downstream tasks are queued and its
        # worker is handed the next task, at each step of the dbt group's chain.
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.25",
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
        wait_until_answers(f"{url}/api/v2/monitor/health", what="Airflow", processes=processes,
                           timeout=120, ready=scheduler_healthy, see=str(logs))  # fmt: skip
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


def unpause_when_parsed(env: dict[str, str], log_file: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _airflow(env, "dags", "unpause", DAG_ID, log_file=log_file)
            return
        except ToolFailed:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)  # the DAG processor has not registered the DAG yet


@contextlib.contextmanager
def scheduled_run(settings: Settings) -> Iterator[Path]:
    """The stack of ``make airflow`` on ``settings`` (its local AWS already provisioned),
    the DAG unpaused so that its daily schedule starts a run for the last full day; yields
    Airflow's database, to be read while the stack runs."""
    build_manifest(settings, settings.work_dir / "logs" / "dbt.log")
    with running_airflow(settings):
        unpause_when_parsed(airflow_env(settings), admin_log(settings))
        yield airflow_home(settings) / "airflow.db"


def poll_row(
    database: Path,
    query: str,
    params: tuple[object, ...],
    done: Callable[[tuple[object, ...]], bool],
    timeout: float,
) -> tuple[object, ...] | None:
    """The first row ``query`` returns from Airflow's database once ``done`` holds for it,
    or the last one seen at the timeout (None if there was none)."""
    deadline = time.monotonic() + timeout
    row = None
    while time.monotonic() < deadline:
        time.sleep(2)
        with sqlite3.connect(database) as db:
            row = db.execute(query, params).fetchone()
        if row is not None and done(row):
            return tuple(row)
    return None if row is None else tuple(row)


def serve() -> int:
    """``make airflow``: local Airflow against a local AWS holding the demo's logs."""
    from local import demo
    from local.aws import LOCAL_CREDENTIALS, RUN_PORT, moto_server, provision_local, ship_logs

    settings = settings_for_command("make airflow")
    os.environ.update(LOCAL_CREDENTIALS)
    # SIGTERM (a service manager, `timeout`) stops everything as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    logs = settings.work_dir / "logs"
    with moto_server(log_file=logs / "moto.log", port=RUN_PORT) as endpoint:
        settings = settings.with_endpoint(endpoint)
        provision_local(settings)
        build_manifest(settings, logs / "dbt.log")
        with running_airflow(settings) as (url, user, password):
            unpause_when_parsed(airflow_env(settings), admin_log(settings))
            # Landing objects raise S3 events on the queue; the DAG's asset watcher hears
            # them and starts a run: the event-driven path, end to end.
            folder = settings.work_dir / "demo-logs"
            demo.generate(demo.DemoSpec(), folder)
            shipped = ship_logs(settings, demo.log_files(folder))
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
