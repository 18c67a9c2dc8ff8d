"""Building blocks of the pipeline DAG: the Spark stage for each runner, the Cosmos dbt
task group, and the run date every task agrees on.

Only DAG *structure* is built here, at parse time; each task imports what it needs when it
runs. Nothing here calls AWS, dbt or Spark while a DAG file is parsed.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

from airflow.sdk import TaskGroup, task

from lake import layout
from orchestration.runners.dbt import CONNECTION_ENV
from orchestration.settings import DUCKDB_POOL, Settings, load_settings

log = logging.getLogger(__name__)

AWS_CONN_ID = "aws_default"


def run_date_of(logical_date: datetime | None, run_after: datetime) -> date:
    """The logical date a run processes.

    Scheduled runs cover their data interval, whose start is the logical date. Runs started
    by new landing objects (asset events) have no logical date: they process the day they
    were triggered, and the nightly run for that day catches anything that came later.
    """
    return (logical_date or run_after).date()


@task(task_id="run_date")
def resolve_run_date(logical_date: datetime | None = None, dag_run: Any = None) -> str:
    return run_date_of(logical_date, dag_run.run_after).isoformat()


@task(task_id="claim")
def claim(run_date: str, dag_run: Any = None) -> int:
    """Lock the run date for this run and move the landing objects that arrived on or before
    it into processing."""
    from orchestration import stages

    day = date.fromisoformat(run_date)
    keys = stages.claim_landing(load_settings(), day, dag_run.run_id)
    log.info("run %s owns %d raw objects", run_date, len(keys))
    return len(keys)


@task(task_id="promote")
def promote(run_date: str, dag_run: Any = None) -> dict[str, Any]:
    """Publish Spark's output to processed/ and quarantine/; write the run manifest; release
    the run date's lock."""
    from orchestration import stages

    day = date.fromisoformat(run_date)
    manifest = stages.promote_zones(load_settings(), day, dag_run.run_id)
    return manifest.stats.to_dict()


@task(task_id="load_raw")
def load_raw(run_date: str, connection_env: dict[str, str]) -> dict[str, int]:
    """Load the run's processed partition into the warehouse's raw schema (dbt's load_raw
    operation: COPY on Snowflake and Redshift; DuckDB reads it in place)."""
    from orchestration import stages

    return stages.load_warehouse(load_settings(), date.fromisoformat(run_date), connection_env)


@task(task_id="source_freshness")
def source_freshness(run_date: str, connection_env: dict[str, str]) -> dict[str, str]:
    """dbt source freshness on event time: fails the run when a source is past its error
    threshold (a backfill of an old date only reports it), warns past the warn threshold."""
    from orchestration import stages

    today = datetime.now(UTC).date()
    return stages.check_freshness(
        load_settings(), date.fromisoformat(run_date), today, connection_env
    )


def freshness(settings: Settings, run_date: Any) -> Any:
    """The freshness task; credentials rendered from the Airflow connection, as for load."""
    return source_freshness.override(**writer_pool(settings))(
        run_date, CONNECTION_ENV.get(settings.warehouse, {})
    )


def writer_pool(settings: Settings) -> dict[str, Any]:
    """DuckDB allows one writer: every task that opens the file shares a one-slot pool."""
    return {"pool": DUCKDB_POOL} if settings.warehouse == "duckdb" else {}


def load(settings: Settings, run_date: Any) -> Any:
    """The load task; its credentials are templates, rendered from the Airflow connection
    when it runs."""
    return load_raw.override(**writer_pool(settings))(
        run_date, CONNECTION_ENV.get(settings.warehouse, {})
    )


def spark_local() -> Any:
    @task(task_id="spark_local")
    def run(run_date: str) -> None:
        from orchestration import stages

        stages.preprocess_locally(load_settings(), date.fromisoformat(run_date))

    return run


def spark_stage(settings: Settings, run_date: Any) -> TaskGroup | Any:
    """The Spark step for the configured runner: local, emr or emr-serverless."""
    if settings.spark_runner == "local":
        return spark_local()(run_date)
    if settings.spark_runner == "emr":
        return emr_task_group(run_date)
    if settings.spark_runner == "emr-serverless":
        return emr_serverless_task_group(run_date)
    raise ValueError(f"SPARK_RUNNER={settings.spark_runner!r}: choose local, emr or emr-serverless")


def emr_task_group(run_date: Any) -> TaskGroup:
    """Transient EMR: upload the job, find or create the run's cluster, run one step per
    stream concurrently, wait, and terminate the cluster whatever happened."""
    from airflow.providers.amazon.aws.operators.emr import EmrAddStepsOperator
    from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor

    with TaskGroup(group_id="spark_emr") as group:

        @task
        def plan(run_date: str, dag_run: Any = None) -> dict[str, Any]:
            """Ship the job code to S3 and get a cluster for this run (reuse or create)."""
            from airflow.providers.amazon.aws.hooks.emr import EmrHook
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            from orchestration.runners import emr

            settings = load_settings()
            day = date.fromisoformat(run_date)
            artifact = emr.upload_artifact(S3Hook(AWS_CONN_ID).conn, settings.lake_bucket)
            key = emr.run_key(dag_run.dag_id, day)
            hook = EmrHook(aws_conn_id=AWS_CONN_ID, emr_conn_id=None)
            cluster_id = emr.find_reusable_cluster(hook.conn, settings, key)
            if cluster_id:
                log.info("reusing EMR cluster %s created for %s", cluster_id, key)
            else:
                response = hook.create_job_flow(emr.job_flow_config(settings, key, artifact))
                cluster_id = response["JobFlowId"]
                log.info("created EMR cluster %s for %s", cluster_id, key)
            return {
                "cluster_id": cluster_id,
                "steps": emr.spark_steps(settings, artifact, day),
                "artifact": artifact.version,
            }

        @task
        def cluster_id(planned: dict[str, Any]) -> str:
            return str(planned["cluster_id"])

        @task
        def steps(planned: dict[str, Any]) -> list[dict[str, Any]]:
            return list(planned["steps"])

        planned = plan(run_date)
        cluster = cluster_id(planned)
        add_steps = EmrAddStepsOperator(
            task_id="add_steps",
            job_flow_id=cluster,
            steps=steps(planned),
            aws_conn_id=AWS_CONN_ID,
            wait_for_completion=False,
        )

        @task
        def log_step_logs(cluster: str, step_ids: list[str]) -> list[str]:
            from orchestration.runners import emr

            where = emr.step_log_locations(load_settings(), cluster, step_ids)
            for location in where:
                log.info("step logs: %s", location)
            return where

        wait = EmrStepSensor.partial(
            task_id="wait_for_step",
            job_flow_id=cluster,
            aws_conn_id=AWS_CONN_ID,
            poke_interval=load_settings().emr_poke_seconds,
            timeout=6 * 60 * 60,
            deferrable=True,
        ).expand(step_id=add_steps.output)

        @task(trigger_rule="all_done")
        def terminate(cluster: str) -> bool:
            """Runs when the steps succeeded *and* when anything failed, so no run leaves
            a cluster behind; the idle auto-termination policy is the backstop."""
            from airflow.providers.amazon.aws.hooks.emr import EmrHook

            from orchestration.runners import emr

            return emr.terminate_if_ours(
                EmrHook(aws_conn_id=AWS_CONN_ID, emr_conn_id=None).conn, load_settings(), cluster
            )

        @task
        def steps_succeeded() -> None:
            """Carries the steps' outcome past the terminate task to what follows."""

        logs = log_step_logs(cluster, add_steps.output)
        done = terminate(cluster)
        ok = steps_succeeded()
        add_steps >> [logs, wait]
        wait >> done
        wait >> ok
    return group


def emr_serverless_task_group(run_date: Any) -> TaskGroup:
    """The same job on an EMR Serverless application (created by infra/)."""
    from airflow.providers.amazon.aws.operators.emr import EmrServerlessStartJobOperator

    with TaskGroup(group_id="spark_emr_serverless") as group:

        @task
        def job_driver(run_date: str) -> dict[str, Any]:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            from orchestration.runners import emr

            settings = load_settings()
            artifact = emr.upload_artifact(S3Hook(AWS_CONN_ID).conn, settings.lake_bucket)
            return emr.serverless_job_driver(settings, artifact, date.fromisoformat(run_date))

        settings = load_settings()
        assert settings.emr is not None
        EmrServerlessStartJobOperator(
            task_id="run_job",
            application_id=settings.emr.serverless_application_id,
            execution_role_arn=settings.emr.serverless_execution_role_arn,
            job_driver=job_driver(run_date),
            configuration_overrides={
                "monitoringConfiguration": {
                    "s3MonitoringConfiguration": {
                        "logUri": layout.uri(settings.lake_bucket, layout.EMR_SERVERLESS_LOGS)
                    }
                }
            },
            aws_conn_id=AWS_CONN_ID,
            wait_for_completion=True,
            waiter_delay=settings.emr_poke_seconds,
        )
    return group
