"""The dbt part of the DAG: Cosmos renders the project from its manifest, built ahead of
time (``make manifest``), so parsing the DAG file never runs dbt."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from airflow.sdk import task
from cosmos import DbtTaskGroup, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import LoadMode, TestBehavior

from orchestration.runners.dbt import CONNECTION_ENV, MANIFEST, profile_env
from orchestration.settings import DBT_PROJECT_DIR, Settings, load_settings
from orchestration.tasks.pipeline import writer_pool

log = logging.getLogger(__name__)

RUN_DATE = "{{ ti.xcom_pull(task_ids='run_date') }}"


def dbt_task_group(settings: Settings) -> DbtTaskGroup:
    return DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT_DIR,
            manifest_path=MANIFEST,
            install_dbt_deps=False,
            env_vars={**CONNECTION_ENV.get(settings.dbt_target, {}), **profile_env(settings)},
        ),
        profile_config=ProfileConfig(
            profile_name="shoplogs",
            target_name=settings.dbt_target,
            profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml",
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.AFTER_EACH,  # a model's tests run right after it
            emit_datasets=True,  # downstream DAGs can be scheduled on the marts
            # A relationships test has two parents: run it once both are built, not
            # with the first of them (it would fail on a fresh warehouse).
            should_detach_multiple_parents_tests=True,
        ),
        # The incremental facts replace exactly this run's rows (a re-run or backfill of any
        # day); `vars` is a templated field of Cosmos's operators.
        operator_args={**writer_pool(settings), "vars": {"run_date": RUN_DATE}},
        default_args={"retries": 1},
    )


def docs_task(settings: Settings) -> Any:
    @task(task_id="dbt_docs", **writer_pool(settings))
    def docs() -> str:
        """Generate the docs site and publish it to the lake bucket for analysts."""
        from orchestration import stages

        current = load_settings()
        site = stages.generate_docs(current)
        return stages.publish_docs(current, site.parent)

    return docs()


def summary_task(settings: Settings) -> Any:
    @task(task_id="summary", **writer_pool(settings))
    def summary(run_date: str) -> str:
        """Log the run's counts per stream and rows per mart, and fail if lines were lost."""
        from orchestration import stages
        from orchestration.summary import format_summary, reconcile, report_from_manifest

        current = load_settings()
        manifest = stages.read_manifest(current, date.fromisoformat(run_date))
        marts = stages.mart_row_counts(current) if current.warehouse == "duckdb" else {}
        report = report_from_manifest(manifest.stats, marts)
        text = format_summary(report)
        log.info("\n%s", text)
        problems = reconcile(report)
        if problems:
            raise RuntimeError("counts do not reconcile: " + "; ".join(problems))
        return text

    return summary
