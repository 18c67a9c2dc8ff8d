"""The dbt part of the DAG: Cosmos renders the project from its manifest, built ahead of
time (``make manifest``), so parsing the DAG file never runs dbt.

The group runs in Cosmos's watcher mode: one task (the producer) runs a single ``dbt build``
and records each node's outcome; one task per model and seed then reports the outcome of that
node and its tests, fails if dbt failed either, and on a retry builds just its own node and
its tests again. One dbt start-up instead of one per task is what keeps Airflow's cost over a
plain ``dbt build`` small; one task per model rather than two (a model, then its tests) halves
the rest, each task costing Airflow ~0.15-0.25 s of its own here.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

from airflow.sdk import TriggerRule, task
from airflow.sdk.exceptions import AirflowException
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.airflow.graph import _get_dbt_dag_task_group_identifier, create_task_metadata
from cosmos.constants import (
    PRODUCER_WATCHER_TASK_ID,
    SUPPORTED_BUILD_RESOURCES,
    ExecutionMode,
    InvocationMode,
    LoadMode,
    TestBehavior,
)
from cosmos.core.airflow import get_airflow_task
from cosmos.operators._watcher.aggregation import get_tests_status_xcom_key
from cosmos.operators._watcher.state import (
    get_xcom_val,
    is_dbt_node_status_success,
    is_producer_task_terminated,
)
from cosmos.operators.watcher import DbtRunWatcherOperator

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
    """The project as one task per model and seed, each with its tests, built by one
    ``dbt build``.

    ``retries`` applies to the per-model tasks: a retry builds that model and its tests alone.
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
    render = RenderConfig(
        load_method=LoadMode.DBT_MANIFEST,
        # One task per model (or seed) for the model and its tests, as `dbt build` runs them.
        test_behavior=TestBehavior.BUILD,
        normalize_task_id=lambda node: node.name,
        normalize_task_display_name=lambda node: node.name,
        emit_datasets=True,  # downstream DAGs can be scheduled on the marts
        # A test with two parents (a relationships test) reports with each parent. The
        # producer records test outcomes per model only: a task of its own never learnt its
        # test's outcome, and cost a deferral (15 tasks, ~5 s).
        should_detach_multiple_parents_tests=False,
    )
    # Cosmos's watcher mode has no operator for TestBehavior.BUILD (it raises): each node
    # `dbt build` builds gets this project's (below).
    build = build_watcher_tasks(render, writer_lock_path(settings))
    render.node_converters = dict.fromkeys(SUPPORTED_BUILD_RESOURCES, build)
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
                # The build writes: it holds the warehouse's writer slot (DuckDB's pool).
                **writer_pool(settings),
            },
        ),
        render_config=render,
        # The per-model tasks only read the producer's outcomes, after it: they take no
        # writer slot, so they report side by side (in DuckDB's one-slot pool each waited
        # its turn: ~2.5x a plain `dbt build` under the scheduler). A retry, the one time
        # one writes, takes the writer lock first (``DbtBuildWatcherSensor``).
        operator_args={},
        default_args={"retries": retries},
    )
    if settings.tasks_one_at_a_time:
        report_after_the_build(group)
    return group


class DbtBuildWatcherSensor(DbtRunWatcherOperator):
    """One model (or seed) and its tests, as the producer's ``dbt build`` left them.

    Reports the node's own outcome as Cosmos's per-model watcher task does (skipped when
    dbt skipped it, failed when dbt failed it), then fails if dbt failed any of its tests,
    which the producer records per model. A retry (or a cleared task) runs ``dbt build
    --select <node>``: the node and its tests again, nothing else.
    """

    base_cmd: ClassVar[list[str]] = ["build"]  # what the retry runs

    def __init__(
        self, *, has_tests: bool = False, warehouse_lock: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.has_tests = has_tests
        self.warehouse_lock = warehouse_lock
        self._rebuilt = False
        self._node_reported = False

    def _fallback_to_non_watcher_run(self, try_number: int, context: Any) -> bool:
        # Retries of several models may run at once; a single-writer warehouse takes them
        # one at a time, as its pool takes the tasks that always write.
        with holding_lock(self.warehouse_lock):
            self._rebuilt = super()._fallback_to_non_watcher_run(try_number, context)
        return self._rebuilt

    def poke(self, context: Any) -> bool:
        """True once dbt has reported the node and then its tests (dbt builds a model, then
        tests it); raises if it failed either."""
        if not self._node_reported:
            self._node_reported = super().poke(context)
        return self._node_reported and self._tests_reported(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> None:
        """After a deferral: the trigger watched the node's own outcome only."""
        super().execute_complete(context, event)
        while not self._tests_reported(context):
            time.sleep(self.poke_interval)

    def _tests_reported(self, context: Any) -> bool:
        """Whether dbt has reported the outcome of all of the node's tests, raising if one
        failed; False while the build may still run them."""
        if self._rebuilt or not self.has_tests:  # a retry's own build ran the tests
            return True
        tests = self._tests_status(context)
        if tests is None:
            if not is_producer_task_terminated(self._get_producer_task_status(context)):
                return False
            tests = self._tests_status(context)  # reported as the build ended
        if tests is None:
            raise AirflowException(
                f"dbt built '{self.model_unique_id}' but reported no outcome for all of its "
                f"tests; see the log of task '{self.producer_task_id}'"
            )
        if not is_dbt_node_status_success(tests):
            raise AirflowException(
                f"a test of '{self.model_unique_id}' failed; its name and failing rows are "
                f"in the log of task '{self.producer_task_id}' and in the run report"
            )
        return True

    def _tests_status(self, context: Any) -> Any:
        key = get_tests_status_xcom_key(self.model_unique_id)
        return get_xcom_val(context["ti"], self.producer_task_id, key)


def writer_lock_path(settings: Settings) -> str | None:
    """The lock file a per-model task's retry holds while it writes, for a warehouse that
    takes one writer at a time (DuckDB, on the one machine that holds its file)."""
    if not writer_pool(settings):
        return None
    return str(settings.duckdb_path.with_name(settings.duckdb_path.name + ".writer-lock"))


@contextmanager
def holding_lock(path: str | None) -> Iterator[None]:
    """An exclusive lock on ``path`` for the block (blocks until it is free); none if None."""
    if path is None:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# How a per-model task waits for its node: in its worker slot, reading the producer's XComs
# each second. A task starts only once its parents' tasks have reported, when dbt is about to
# build (or has built) its node, so it holds the slot for about that node's build. Deferring
# to the triggerer (Cosmos's default) costs each model a second task start, and the triggerer
# and API server's polling CPU the build needs: on the demo under the scheduler the dbt stage
# took 42 s deferring (1 s polls), 28 s waiting in the slot, on the same 2-core machine.
REPORTING: dict[str, Any] = {"deferrable": False, "poke_interval": 1}


def build_watcher_tasks(render: RenderConfig, lock: str | None = None) -> Callable[..., Any]:
    """A Cosmos node converter: for each node, the task Cosmos would make under
    TestBehavior.BUILD, as a ``DbtBuildWatcherSensor`` whose retry holds ``lock``."""

    def build_watcher_task(*, dag: Any, task_group: Any, node: Any,
                           execution_mode: ExecutionMode, task_args: dict[str, Any],
                           test_indirect_selection: Any, detached_from_parent: Any,
                           **_: Any) -> Any:  # fmt: skip
        meta = create_task_metadata(
            node=node,
            execution_mode=execution_mode,
            args=task_args,
            dbt_dag_task_group_identifier=_get_dbt_dag_task_group_identifier(dag, task_group),
            render_config=render,
            test_indirect_selection=test_indirect_selection,
            detached_from_parent=detached_from_parent,
        )
        meta = dataclasses.replace(
            meta,
            operator_class=f"{__name__}.{DbtBuildWatcherSensor.__name__}",
            arguments={
                **meta.arguments,
                "has_tests": node.has_test,
                "warehouse_lock": lock,
                **REPORTING,
            },
        )
        return get_airflow_task(meta, dag, task_group)

    return build_watcher_task


def keep_build_results(project_dir: str, context: Any = None, **_: Any) -> None:
    """Keep the producer's ``run_results.json`` for the run report (the summary task).

    A failure here is logged, not raised: it would fail the build it reports on, and the
    report then shows no test results rather than the run no marts."""
    from orchestration import stages

    try:
        run_date = date.fromisoformat(str(context["ti"].xcom_pull(task_ids="run_date")))
        stages.keep_run_results(load_settings(), run_date, Path(project_dir) / "target")
    except Exception:
        log.exception("could not keep dbt's run_results.json for the run report")


def report_after_the_build(group: DbtTaskGroup) -> None:
    """Start the per-model tasks once the producer's build has finished, failed or not: for
    an Airflow that runs tasks one at a time (``Settings.tasks_one_at_a_time``).

    Cosmos lets the first per-model tasks start beside the producer and wait for it, and
    under a scheduler they do: each reports as soon as dbt has built its node, and the group
    ends about when the build does (they take no pool slot the producer needs). Under
    ``airflow dags test`` (``make run``) tasks run one at a time in no set order: a per-model
    task that starts first waits for a producer that cannot start until it ends, for ever.
    There, waiting for the producer costs nothing, since each outcome is then read at once.
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
