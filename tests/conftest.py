"""Shared fixtures: one local Spark session and one moto server per test session, the local
runner's warm Spark session, and one pipeline run of the small demo for the modules that
read what a run built."""

from __future__ import annotations

import functools
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.aws import LOCAL_CREDENTIALS, moto_server
from tests.clock import ARRIVAL, ARRIVAL_DAY

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# Spark's Python workers run on this interpreter, not on whichever python3 PATH finds first.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.update(LOCAL_CREDENTIALS)
os.environ.setdefault("AWS_REGION", "us-east-1")
# Airflow reads its configuration at import: keep tests away from ~/airflow and the network.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
# py4j logs from __del__ at interpreter exit, after pytest closed the streams.
logging.getLogger("py4j").setLevel(logging.WARNING)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``make test``'s ``--dist loadfile``, with the files that read the shared demo run in
    one worker together: each worker that ran one of them made the run (over a minute)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class DemoRunTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = super()._split_scope(nodeid)
            return "demo_run" if reads_demo_run(config.rootpath / file) else file

    return DemoRunTogether(config, log)


@functools.cache
def reads_demo_run(path: Path) -> bool:
    """Whether a test file uses the ``demo_run`` fixture (by its name, as fixtures are)."""
    return path.name.startswith("test_") and "demo_run" in path.read_text()


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    # Long-lived and running every Spark unit test: this JVM keeps the JIT's C2, which pays
    # for itself here (the pipeline's short jobs go without it: runners/spark_local.py).
    session = (
        SparkSession.builder.master("local[2]")
        .appName("shoplogs-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.legacy.timeParserPolicy", "CORRECTED")  # as spark/job.py sets
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture(scope="session", autouse=True)
def warm_spark_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | None]:
    """The local Spark runner's warm session (orchestration/runners/spark_session.py): one
    per test process, which every pipeline run in it (and its subprocesses) shares, as
    `make run`s share theirs, stopped when the tests end; ``SHOPLOGS_SPARK_SESSION=fresh``
    runs every job in a spark-submit of its own instead, as each EMR job is."""
    from orchestration.runners.spark_session import stop_sessions

    if os.environ.get("SHOPLOGS_SPARK_SESSION") == "fresh":
        yield None
        return
    folder = tmp_path_factory.mktemp("spark-session")
    os.environ["SHOPLOGS_SPARK_SESSION"] = str(folder)
    yield folder
    stop_sessions(folder)


@pytest.fixture(scope="session")
def aws_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real moto server process on a free loopback port."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log", clock_start=ARRIVAL) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def own_aws_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server for one test module: whole-pipeline runs provision the same stream
    names, so each gets an AWS of its own, as each `make run` does."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log", clock_start=ARRIVAL) as endpoint:
        yield endpoint


@pytest.fixture
def s3(aws_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=aws_endpoint, region_name="us-east-1")


@pytest.fixture
def firehose(aws_endpoint: str) -> Any:
    return boto3.client("firehose", endpoint_url=aws_endpoint, region_name="us-east-1")


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium for one test's page checks (local/browser.py). Per test, not per
    session: Playwright's sync API keeps an event loop running in the main thread while it
    is open, and a later test's ``asyncio.run`` would then fail."""
    from local.browser import chromium

    with chromium() as launched:
        yield launched


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One direct-engine run of the whole pipeline on the small demo, on an AWS of its own:
    warehouse built, docs and report published. Shared, as a run takes over a minute: the
    modules using it only read what it built, or re-run it (same date, same result)."""
    from infra.iam import Place
    from local.demo import generate, log_files
    from local.iam import DEPLOYER, Roles, enforce
    from local.run import run_pipeline
    from orchestration import stages
    from orchestration.settings import LOCAL_ACCOUNT_ID, load_settings
    from tests.expectations import SMALL_DEMO, mart_rows

    work = tmp_path_factory.mktemp("demo-run")
    # IAM enforced: every stage runs as the role that runs it in AWS, with the templates'
    # policies (local/iam.py); a denied call fails the run naming role, action and resource.
    with moto_server(work / "moto.log", clock_start=ARRIVAL, enforce_iam=True) as endpoint:
        truth = generate(SMALL_DEMO, work / "logs")
        settings = replace(load_settings("local"), work_dir=work, lake_bucket="demo-lake")
        settings = settings.with_endpoint(endpoint)
        place = Place(settings.env, LOCAL_ACCOUNT_ID, settings.region, settings.lake_bucket)
        roles = Roles(enforce(endpoint, place), settings.env)
        files = log_files(work / "logs")
        report = run_pipeline(settings, files, roles=roles)  # it picks the arrival day itself
        run_date = date.fromisoformat(report.run_date)
        assert run_date == ARRIVAL_DAY
        # The tests read what the run built as the deployer (an admin).
        with roles.holding(roles.held[DEPLOYER]):
            yield {
                "truth": truth,
                "report": report,
                "settings": settings,
                "files": files,
                "run_date": run_date,
                "marts": mart_rows(settings.duckdb_path, stages.MARTS),
                "roles": roles,
            }
