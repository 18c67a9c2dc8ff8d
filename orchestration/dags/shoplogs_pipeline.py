"""The shop-logs pipeline for one logical period, as make run and MWAA run it.

claim landing -> Spark (local | EMR | EMR Serverless) -> promote zones -> load the raw
layer (SHOPLOGS_WAREHOUSE: DuckDB | Snowflake | Redshift) -> dbt (Cosmos, one task per
model with its tests) -> docs -> summary (the run report, published whether or not
the run failed; the run fails with it).

Starts on new landing objects (an asset watcher on the bucket's SQS event queue, debounced:
one run once they have waited two hours and landing has been quiet for 15 minutes, or six
hours at the most; orchestration/landing_watch.py) and, as a fallback covering the same
ground, once a day for the previous day. Catchup is off;
backfill past days with `airflow backfill create --dag-id shoplogs_pipeline --from-date
... --to-date ...`. Every task is idempotent for its run date, so clearing and re-running a
run never doubles data.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import (
    DAG,
    Asset,
    AssetOrTimeSchedule,
    AssetWatcher,
    CronDataIntervalTimetable,
    chain,
)

from lake import layout
from orchestration.landing_watch import DebouncedSqsTrigger
from orchestration.settings import load_settings
from orchestration.tasks import pipeline
from orchestration.tasks.dbt import dbt_task_group, docs_task, summary_task

settings = load_settings()

landing = Asset(
    name="shoplogs_landing",
    uri=layout.uri(settings.lake_bucket, layout.LANDING),
    watchers=[
        AssetWatcher(
            name="landing_object_created",
            # One run per debounce window, not per message batch: each run is an EMR cluster.
            trigger=DebouncedSqsTrigger(
                sqs_queue=settings.landing_queue_url,
                aws_conn_id=pipeline.AWS_CONN_ID,
                waiter_delay=30,
                max_messages=10,  # SQS's most per receive: a burst drains in fewer polls
            ),
        )
    ],
)

with DAG(
    dag_id="shoplogs_pipeline",
    description="Landing -> Spark -> processed -> dbt star schema -> docs",
    schedule=AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable("15 0 * * *", timezone="UTC"), assets=landing
    ),
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,  # runs share the processing prefix of their date
    default_args={
        "owner": "data-platform",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
    },
    tags=["shoplogs", "elt", f"spark:{settings.spark_runner}", f"dbt:{settings.dbt_target}"],
    doc_md=__doc__,
):
    run_date = pipeline.resolve_run_date()
    chain(
        run_date,
        pipeline.claim(run_date),
        pipeline.spark_stage(settings, run_date),
        pipeline.promote(run_date),
        pipeline.load(settings, run_date),
        pipeline.freshness(settings, run_date),
        dbt_task_group(settings),
        docs_task(settings),
        summary_task(settings)(run_date),
    )
