"""The dbt part of the DAG: Cosmos renders the project from its manifest, built ahead of
time (``make manifest``), so parsing the DAG file never runs dbt.

The group runs in Cosmos's watcher mode: one task (the producer) runs a single ``dbt build``
and records each node's outcome; one task per model (and per model's tests) then reports that
outcome, fails if dbt failed it, and on a retry re-runs just its own node. One dbt start-up
instead of one per task is what keeps Airflow's cost over a plain ``dbt build`` small.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

from airflow.sdk import TriggerRule, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import (
    PRODUCER_WATCHER_TASK_ID,
    ExecutionMode,
    InvocationMode,
    LoadMode,
    TestBehavior,
)

from orchestration.runners.dbt import (
    CONNECTION_ENV,
    MANIFEST,
    PROFILE,
    dbt_executable,
    profile_env,
)
from orchestration.settings import DBT_PROJECT_DIR, Settings, load_settings
from orchestration.tasks.pipeline import writer_pool

log = logging.getLogger(__name__)

RUN_DATE = "{{ ti.xcom_pull(task_ids='run_date') }}"


def dbt_task_group(
    settings: Settings, project_dir: Path = DBT_PROJECT_DIR, retries: int = 1
) -> DbtTaskGroup:
    """The project as one task per model and per model's tests, built by one ``dbt build``.

    ``retries`` applies to the per-model tasks: a retry re-runs that model (or its tests) alone.
    """
    manifest = project_dir / MANIFEST.relative_to(DBT_PROJECT_DIR)
    project = ProjectConfig(
        dbt_project_path=project_dir,
        manifest_path=manifest,
        install_dbt_deps=False,
        env_vars={
            **CONNECTION_ENV.get(settings.dbt_target, {}),
            **profile_env(settings),
            # The incremental models replace exactly this run's rows (a re-run or backfill
            # of any day); `env` is a templated field of Cosmos's operators. Not `vars`: a
            # changed var turns off dbt's partial parsing for the whole project.
            "SHOPLOGS_RUN_DATE": RUN_DATE,
        },
    )
    # The manifest ships beside the DAGs. Cosmos wraps it in an ObjectStoragePath, whose
    # first open loads every Airflow plugin (its lineage hook) inside the DAG-file parse;
    # a plain path reads the same file without that.
    project.manifest_path = manifest
    group = DbtTaskGroup(
        group_id="dbt",
        project_config=project,
        profile_config=ProfileConfig(
            profile_name=PROFILE,
            target_name=settings.dbt_target,
            profiles_yml_filepath=project_dir / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            dbt_executable_path=dbt_executable(),
            setup_operator_args={
                # A retry of the producer never builds again (Cosmos skips it); the
                # per-model tasks carry the retries, so a failed build is reported at once.
                "retries": 0,
                # dbt in a child process: its threads run at full speed while this process
                # turns its JSON log into per-node XComs. In-process (dbtRunner) each XCom
                # write happens inside dbt's event callback, under a lock, and holds up
                # its threads: 23 s against 15 s for the demo's build (plain: 13-14 s).
                "invocation_mode": InvocationMode.SUBPROCESS,
                # Called after the build, failed or not, with Cosmos's copy of the project:
                # its run_results.json is gone when the task ends.
                "callback": "orchestration.tasks.dbt.keep_build_results",
            },
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.AFTER_EACH,  # a model's tests run right after it
            emit_datasets=True,  # downstream DAGs can be scheduled on the marts
            # A test with two parents (a relationships test) reports with each parent's
            # tests. The producer records test outcomes per model only: a task of its own
            # never learnt its test's outcome, and cost a deferral (15 tasks, ~5 s).
            should_detach_multiple_parents_tests=False,
        ),
        operator_args=writer_pool(settings),
        default_args={"retries": retries},
    )
    report_after_the_build(group)
    return group


def keep_build_results(project_dir: str, context: Any = None, **_: Any) -> None:
    """Keep the producer's ``run_results.json`` for the run report (the summary task).

    A failure here is logged, not raised: it would fail the build it reports on, and the
    report then shows no test results rather than the run no marts."""
    from orchestration import stages

    try:
        run_date = date.fromisoformat(str(context["ti"].xcom_pull(task_ids="run_date")))
        stages.keep_run_results(load_settings(), run_date, Path(project_dir))
    except Exception:
        log.exception("could not keep dbt's run_results.json for the run report")


def report_after_the_build(group: DbtTaskGroup) -> None:
    """Start the per-model tasks once the producer's build has finished, failed or not.

    Cosmos lets the first per-model tasks start beside the producer and wait for it. Under
    ``airflow dags test`` (``make run``) tasks run one at a time in no set order: a per-model
    task that starts first waits for a producer that cannot start until it ends, for ever.
    Under a scheduler they take pool slots (DuckDB's writer pool has one) that the producer
    needs. Waiting for the producer costs nothing, since each outcome is then read at once.
    ``one_done``: report after a failed build too (each model's own outcome), but not when
    the producer never ran (an upstream failure), when there is nothing to report.
    """
    producer = group.children[f"{group.group_id}.{PRODUCER_WATCHER_TASK_ID}"]
    for root in list(group.get_roots()):
        if root is not producer:
            producer >> root
            root.trigger_rule = TriggerRule.ONE_DONE


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
    @task(task_id="summary", trigger_rule=TriggerRule.ALL_DONE, **writer_pool(settings))
    def summary(run_date: str, connection_env: dict[str, str], ti: Any = None) -> str:
        """Publish the run report beside the docs (the lake's reports/) and log its table,
        whatever the other tasks did; then fail if any of them failed or lines were lost.
        Published first: a failed run (a failing dbt test above all) needs its report most,
        and this task, the DAG's last, failing is what marks the whole run failed."""
        from orchestration import stages
        from orchestration.summary import failed_tasks, format_summary, reconcile

        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
        report = stages.dag_run_report(
            load_settings(),
            date.fromisoformat(run_date),
            failed=failed_tasks(states),
            promoted=states.get("promote") == "success",
            dbt_built=states.get(f"dbt.{PRODUCER_WATCHER_TASK_ID}") in {"success", "failed"},
            freshness=dict(ti.xcom_pull(task_ids="source_freshness") or {}),
            connection_env=connection_env,
        )
        text = format_summary(report)
        log.info("\n%s", text)
        if report.failed_tasks:
            raise RuntimeError(
                f"the run failed at {', '.join(report.failed_tasks)}; its report: "
                f"{report.page_path}"
            )
        problems = reconcile(report)
        if problems:
            raise RuntimeError("counts do not reconcile: " + "; ".join(problems))
        return text

    # dbt reads the failing tests' audit rows with the credentials the load task gets.
    return lambda run_date: summary(run_date, CONNECTION_ENV.get(settings.warehouse, {}))
