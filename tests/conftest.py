"""Shared fixtures: one local Spark session and one moto server per test session."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local.aws import LOCAL_CREDENTIALS, moto_server
from tests.clock import ARRIVAL

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.update(LOCAL_CREDENTIALS)
os.environ.setdefault("AWS_REGION", "us-east-1")
# Airflow reads its configuration at import: keep tests away from ~/airflow and the network.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
# py4j logs from __del__ at interpreter exit, after pytest closed the streams.
logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

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
