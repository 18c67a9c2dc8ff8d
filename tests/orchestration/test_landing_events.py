"""Event-driven start: a new landing object reaches the queue the DAG's asset watcher reads,
and the watcher's trigger fires on it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import boto3
import pytest

from local.aws import provision_local
from orchestration.landing_watch import DebouncedSqsTrigger
from orchestration.settings import REPO_ROOT, load_settings

pytestmark = pytest.mark.integration


def test_a_landing_object_fires_the_dags_asset_watcher(
    own_aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws_endpoint = own_aws_endpoint
    s3 = boto3.client("s3", endpoint_url=aws_endpoint, region_name="us-east-1")
    settings = replace(load_settings("local"), lake_bucket="events-lake")
    settings = settings.with_endpoint(aws_endpoint)
    provision_local(settings)
    monkeypatch.setenv("LAKE_BUCKET", "events-lake")
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    connection = {"conn_type": "aws", "login": "testing", "password": "testing",
                  "extra": {"endpoint_url": aws_endpoint, "region_name": "us-east-1"}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(connection))

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO_ROOT / "orchestration" / "dags")).dags["shoplogs_pipeline"]
    landing = dag.timetable.asset_condition
    [watcher] = landing.watchers
    assert watcher.trigger.sqs_queue == settings.landing_queue_url

    # Objects outside landing/ do not start the pipeline; a landing object does.
    s3.put_object(Bucket="events-lake", Key="processed/x/dt=2026-11-21/p.parquet", Body=b"x")
    s3.put_object(Bucket="events-lake", Key="landing/web/2026/11/21/10/obj", Body=b"line\n")

    # The DAG's trigger as the triggerer rebuilds it, with no debounce wait (that logic is
    # test_landing_watch.py's): the first landing object fires it.
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == "orchestration.landing_watch.DebouncedSqsTrigger"
    no_wait = {"quiet_seconds": 0, "min_wait_seconds": 0, "max_wait_seconds": 0}
    trigger = DebouncedSqsTrigger(**{**kwargs, **no_wait})

    async def first_event() -> Any:
        return await asyncio.wait_for(trigger.run().__anext__(), timeout=30)

    event = asyncio.run(first_event())
    assert event.payload["keys"] == ["landing/web/2026/11/21/10/obj"]
    assert event.payload["objects"] == 1
