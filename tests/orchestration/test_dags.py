"""DagBag integrity: the DAGs import without doing work, and have the expected shape."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest

from orchestration.landing_watch import DEFAULT, DebouncedSqsTrigger
from orchestration.runners.dbt import build_manifest
from orchestration.settings import REPO_ROOT, load_settings

DAGS = REPO_ROOT / "orchestration" / "dags"
PRODUCER = "dbt.dbt_producer_watcher"  # the task that runs the group's one `dbt build`


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dbt manifest Cosmos renders from, built as `make manifest` builds it."""
    log = tmp_path_factory.mktemp("dbt") / "dbt.log"
    return build_manifest(load_settings("local"), log)


def load_dagbag(monkeypatch: pytest.MonkeyPatch, runner: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SPARK_RUNNER", runner)

    def no_io(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a DAG file did work at import time")

    # Parsing must not reach AWS or start processes (dbt, Spark).
    monkeypatch.setattr(boto3, "client", no_io)
    monkeypatch.setattr(subprocess, "run", no_io)
    monkeypatch.setattr(subprocess, "Popen", no_io)
    return DagBag(dag_folder=str(DAGS))


@pytest.mark.parametrize("runner", ["local", "emr", "emr-serverless"])
def test_dags_import_without_errors_or_work(
    manifest: Path, monkeypatch: pytest.MonkeyPatch, runner: str
) -> None:
    dagbag = load_dagbag(monkeypatch, runner)
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"shoplogs_pipeline", "shoplogs_erase"}
    for dag in dagbag.dags.values():
        assert dag.tags and dag.catchup is False
        for task in dag.tasks:
            assert task.owner == "data-platform", task.task_id
            if task.task_id == PRODUCER:
                # Its retry would never build again (Cosmos skips it): it fails at once and
                # the per-model tasks after it carry the retries.
                assert task.retries == 0
            else:
                assert task.retries >= 1, task.task_id


def test_landing_objects_start_a_run_per_debounce_window_not_per_message_batch(
    manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag = load_dagbag(monkeypatch, "emr").dags["shoplogs_pipeline"]
    [watcher] = dag.timetable.asset_condition.watchers
    # A plain SqsSensorTrigger fires per batch: an EMR cluster every few minutes, all day.
    assert type(watcher.trigger) is DebouncedSqsTrigger
    assert watcher.trigger.rule == DEFAULT
    assert dag.timetable.timetable.expression == "15 0 * * *"  # the nightly run still covers all


def upstream_ids(dag: Any, task_id: str) -> set[str]:
    return {t.task_id for t in dag.get_task(task_id).get_flat_relatives(upstream=True)}


def test_pipeline_shape_local(manifest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dag = load_dagbag(monkeypatch, "local").dags["shoplogs_pipeline"]
    ids = set(dag.task_ids)
    for task_id in ["run_date", "claim", "spark_local", "promote", "load_raw", "dbt_docs",
                    "summary"]:  # fmt: skip
        assert task_id in ids
    marts = ["dim_customers", "dim_products", "dim_date", "fct_orders", "fct_order_lines",
             "fct_web_sessions"]  # fmt: skip
    for mart in marts:
        # One task for the model and its tests, after the data is published.
        assert dag.get_task(f"dbt.{mart}").has_tests
        assert "load_raw" in upstream_ids(dag, f"dbt.{mart}")
    assert {"claim", "spark_local"} <= upstream_ids(dag, "promote")
    assert "promote" in upstream_ids(dag, "load_raw")
    assert "dbt.fct_orders" in upstream_ids(dag, "dbt_docs")
    # DuckDB has one writer: every task that always writes shares the one-slot pool.
    for writer in ("load_raw", "source_freshness", PRODUCER, "dbt_docs", "summary"):
        assert dag.get_task(writer).pool == "duckdb_writer", writer
    # The per-model tasks only read the build's outcomes: out of the pool, they report side
    # by side; a retry, which builds its model again, takes the warehouse's writer lock.
    per_model = [dag.get_task(t) for t in ids if t.startswith("dbt.") and t != PRODUCER]
    reporting = [t for t in per_model if type(t).__name__ == "DbtBuildWatcherSensor"]
    assert len(reporting) >= 20
    assert {t.pool for t in reporting} == {"default_pool"}
    assert {Path(t.warehouse_lock).name for t in reporting} == {"shoplogs.duckdb.writer-lock"}


def test_one_dbt_build_then_a_task_per_model_that_starts_after_it(
    manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under `airflow dags test` (make run) tasks run one at a time in no set order: a
    per-model task that ran before the build would wait for it for ever."""
    monkeypatch.setenv("SHOPLOGS_TASKS_ONE_AT_A_TIME", "true")  # as the local runner sets it
    dag = load_dagbag(monkeypatch, "local").dags["shoplogs_pipeline"]
    group = [t for t in dag.tasks if t.task_id.startswith("dbt.")]
    per_model = [t for t in group if t.task_id not in {PRODUCER, f"{PRODUCER}_done"}]
    assert len(per_model) >= 20
    assert upstream_ids(dag, PRODUCER) >= {"load_raw"}
    for task in per_model:
        assert PRODUCER in upstream_ids(dag, task.task_id), task.task_id
    # The first ones report after a failed build too, each model its own outcome.
    first = [t for t in per_model if PRODUCER in t.upstream_task_ids]
    assert {t.trigger_rule for t in first} == {"one_done"}
    assert {t.task_id for t in first} >= {"dbt.stg_web__requests", "dbt.products"}


def test_under_a_scheduler_the_per_model_tasks_start_beside_the_build(
    manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduler runs tasks side by side: the first per-model tasks start with the build
    and each reports once dbt has built its node, waiting in its worker slot (not in the
    triggerer, which would cost each a second start) and out of DuckDB's writer pool."""
    monkeypatch.delenv("SHOPLOGS_TASKS_ONE_AT_A_TIME", raising=False)
    dag = load_dagbag(monkeypatch, "local").dags["shoplogs_pipeline"]
    group = [t for t in dag.tasks if t.task_id.startswith("dbt.")]
    per_model = [t for t in group if t.task_id not in {PRODUCER, f"{PRODUCER}_done"}]
    assert len(per_model) >= 20
    first = [t for t in per_model if not {u for u in t.upstream_task_ids if u.startswith("dbt.")}]
    assert {t.task_id for t in first} >= {"dbt.stg_web__requests", "dbt.products"}
    for task in first:
        assert task.upstream_task_ids == dag.get_task(PRODUCER).upstream_task_ids, task.task_id
        assert task.trigger_rule == "all_success"  # an upstream failure: nothing to report
    for task in per_model:
        assert PRODUCER not in upstream_ids(dag, task.task_id), task.task_id
        assert (task.deferrable, task.mode, task.pool) == (False, "poke", "default_pool")
        assert task.poke_interval <= 2


def test_load_task_gets_warehouse_credentials_from_the_connection_at_run_time(
    manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPLOGS_WAREHOUSE", "snowflake")
    dag = load_dagbag(monkeypatch, "emr").dags["shoplogs_pipeline"]
    load = dag.get_task("load_raw")
    _, connection_env = load.op_args
    # Templates, rendered when the task runs: no secret is parsed into the DAG.
    assert connection_env["SNOWFLAKE_USER"] == "{{ conn.snowflake_default.login }}"
    assert "op_args" in load.template_fields and load.pool != "duckdb_writer"
    assert "dbt:snowflake" in dag.tags


def test_pipeline_shape_emr(manifest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dag = load_dagbag(monkeypatch, "emr").dags["shoplogs_pipeline"]
    ids = set(dag.task_ids)
    group = {"plan", "add_steps", "wait_for_step", "terminate", "log_step_logs"}
    assert {f"spark_emr.{t}" for t in group} <= ids
    terminate = dag.get_task("spark_emr.terminate")
    assert terminate.trigger_rule == "all_done"  # runs when the steps fail, too
    assert "spark_emr.wait_for_step" in upstream_ids(dag, "promote")


def test_erase_dag_takes_the_customer_id_as_a_param(
    manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag = load_dagbag(monkeypatch, "local").dags["shoplogs_erase"]
    assert type(dag.timetable).__name__ == "NullTimetable"  # by request only, never scheduled
    assert dag.task_ids == ["erase_customer"]
    assert "customer_id" in dag.params
    assert dag.max_active_runs == 1
