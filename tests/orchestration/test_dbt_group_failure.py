"""The DAG's dbt task group when a model fails: one ``dbt build`` (the producer), then one
task per model and seed for it and its tests. The failing model's task fails, the models dbt
built and tested succeed, and what dbt skipped because of the failure is not run; a failing
relationships test fails the tasks of both its parents; the run under
``airflow dags test`` (``make run``) ends instead of waiting for ever. The DAG's summary task
still publishes the run's report, saying where it failed, and fails the run.

The project is a small copy of the real one's shape (a seed, staging, an intermediate model
that breaks, marts on either side), so the group runs without the rest of the pipeline; the
lake the report goes to is the local stand-in's."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from lake import layout
from local.airflow_runner import DAGS_TEST_ENV, airflow_env, airflow_home, prepare
from local.aws import LOCAL_CREDENTIALS, moto_server, provision_local
from orchestration.report_page import render_page
from orchestration.run_report import S3Store
from orchestration.runners.dbt import PROFILE, profile_args
from orchestration.settings import REPO_ROOT, Settings, load_settings
from orchestration.stages import aws_client
from orchestration.summary import RunReport

pytestmark = pytest.mark.integration

DAG_ID = "dbt_group_failure"

PROJECT = {
    "dbt_project.yml": f"""
        name: shoplogs
        version: "1.0.0"
        profile: {PROFILE}
        models:
          shoplogs:
            +materialized: table
    """,
    "profiles.yml": f"""
        {PROFILE}:
          target: duckdb
          outputs:
            duckdb:
              type: duckdb
              path: "{{{{ env_var('DUCKDB_PATH') }}}}"
              threads: 4
              keep_open: false
    """,
    "seeds/products.csv": "product_id,name\n1,mug\n2,cap\n",
    "models/stg_products.sql": "select product_id, name from {{ ref('products') }}\n",
    "models/int_products_broken.sql": "select product_id from missing_table\n",
    "models/dim_products.sql": "select * from {{ ref('stg_products') }}\n",
    "models/fct_broken.sql": "select * from {{ ref('int_products_broken') }}\n",
    # Sold a product the dimension does not have: its relationships test (two parents) fails.
    "models/fct_orders.sql": "select product_id from (values (1), (3)) as sold (product_id)\n",
    "models/_models.yml": """
        version: 2
        seeds:
          - name: products
            columns:
              - name: product_id
                data_tests: [not_null]
        models:
          - name: stg_products
            columns:
              - name: product_id
                data_tests: [not_null, unique]
          - name: dim_products
            columns:
              - name: product_id
                data_tests: [not_null]
          - name: int_products_broken
            columns:
              - name: product_id
                data_tests: [not_null]
          - name: fct_broken
            columns:
              - name: product_id
                data_tests: [not_null]
          - name: fct_orders
            columns:
              - name: product_id
                data_tests:
                  - relationships:
                      arguments: {to: ref('dim_products'), field: product_id}
    """,
}

DAG_FILE = """
from datetime import UTC, datetime
from pathlib import Path

from airflow.sdk import DAG, chain

from orchestration.settings import load_settings
from orchestration.tasks.dbt import dbt_task_group, summary_task
from orchestration.tasks.pipeline import resolve_run_date

with DAG("{dag_id}", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC), catchup=False):
    settings = load_settings()
    run_date = resolve_run_date()
    chain(
        run_date,
        dbt_task_group(settings, project_dir=Path("{project}"), retries=0),
        summary_task(settings)(run_date),
    )
"""


def write_project(root: Path) -> Path:
    for name, text in PROJECT.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def dbt_parse(project: Path, settings: Settings) -> None:
    """The manifest Cosmos renders the group from, as ``make manifest`` builds it."""
    dbt = Path(sys.executable).with_name("dbt")
    subprocess.run(
        [str(dbt), "parse", "--project-dir", str(project), "--profiles-dir", str(project),
         *profile_args(settings)],
        env={**airflow_env(settings), "DUCKDB_PATH": str(settings.duckdb_path)},
        check=True, capture_output=True,
    )  # fmt: skip


def task_states(settings: Settings) -> dict[str, str]:
    with sqlite3.connect(airflow_home(settings) / "airflow.db") as db:
        rows = db.execute(
            "select task_id, state from task_instance where dag_id = ?", (DAG_ID,)
        ).fetchall()
    return {task_id: state for task_id, state in rows}


def test_a_failing_model_fails_its_task_and_leaves_the_others_state_visible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in LOCAL_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with moto_server(log_file=tmp_path / "moto.log") as endpoint:
        settings = replace(load_settings("local"), work_dir=tmp_path / "work")
        settings = settings.with_endpoint(endpoint)
        provision_local(settings)
        run = run_the_dag(settings, tmp_path)
        published = S3Store(aws_client(settings, "s3"), settings.lake_bucket).read(
            layout.report_data(date(2026, 11, 2))
        )

    states = task_states(settings)
    assert states, run.stdout[-3000:] + run.stderr[-3000:]
    assert states["dbt.dbt_producer_watcher"] == "failed"
    assert states["dbt.int_products_broken"] == "failed"
    # Built and tested by the same dbt build, reported by their own tasks.
    for task_id in ["products", "stg_products"]:
        assert states[f"dbt.{task_id}"] == "success", (task_id, states)
    # Both parents of the failing relationships test were built, and their tasks fail with
    # it; no task shows it green.
    assert states["dbt.dim_products"] == states["dbt.fct_orders"] == "failed"
    log = run.stdout + run.stderr
    for model in ["dim_products", "fct_orders"]:
        assert f"a test of 'model.shoplogs.{model}' failed" in log
    assert [t for t, state in states.items() if "relationships" in t and state == "success"] == []
    # dbt skipped what depends on the failed model; Airflow does not run it either.
    assert states["dbt.fct_broken"] == "upstream_failed"

    # The summary ran all the same: it published the report, then failed the run.
    assert states["summary"] == "failed"
    assert run.returncode != 0
    assert published is not None, "the failed run published no report"
    report = RunReport.from_dict(json.loads(published))
    failed = ["dbt.dbt_producer_watcher", "dbt.dim_products", "dbt.fct_orders",
              "dbt.int_products_broken"]  # fmt: skip
    assert report.failed_tasks == failed
    assert {t.name for t in report.tests if t.passed} >= {
        "unique_stg_products_product_id",
        "not_null_dim_products_product_id",
    }
    assert {t.name for t in report.tests if t.status == "fail"} == {
        "relationships_fct_orders_product_id__product_id__ref_dim_products_"
    }
    assert f"run failed at: {', '.join(failed)}" in render_page(report)


def run_the_dag(settings: Settings, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    project = write_project(tmp_path / "project")
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(DAG_FILE.format(dag_id=DAG_ID, project=project))
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    dbt_parse(project, settings)
    env = {**prepare(settings), **DAGS_TEST_ENV, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}

    airflow = str(Path(sys.executable).with_name("airflow"))
    # A time limit turns the old failure (a per-model task waiting for ever) into an error.
    return subprocess.run(
        [airflow, "dags", "test", DAG_ID, "2026-11-02"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
