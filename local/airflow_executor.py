"""``make airflow``'s executor: Airflow's LocalExecutor, with what every task process would
do first done once, before it forks its workers, and a task's end noticed when it ends.

Each task runs in a process forked from a LocalExecutor worker, which then imports Airflow's
task runner and the DAG file's modules (Cosmos, the amazon provider, boto3) and parses the
DAG file: ~1-3 s of CPU per task to import, then ~0.13 s to parse (Cosmos renders the dbt
group), paid by every per-model task of the dbt group while dbt builds on the same two
cores. Done here, before the workers fork, both are in every task process from the start, as
Airflow's DAG processor pre-imports a DAG file's Airflow modules (``[dag_processor]
parsing_pre_import_modules``). A DAG file edited since is parsed again by its task; an edit
to the code it imports is seen once ``make airflow`` restarts.
"""

from __future__ import annotations

import contextlib
import importlib
from pathlib import Path
from typing import Any

from airflow.configuration import conf
from airflow.dag_processing import dagbag
from airflow.executors.local_executor import LocalExecutor
from airflow.sdk.execution_time.supervisor import ActivitySubprocess

# What a task process imports before its task runs: Airflow's task runner, then what the DAG
# file imports (orchestration/dags/shoplogs_pipeline.py).
PRELOADED = (
    "airflow.sdk.execution_time.task_runner",
    "cosmos",
    "orchestration.landing_watch",
    "orchestration.tasks.dbt",
    "orchestration.tasks.pipeline",
)
# What the pipeline's tasks and the dbt build's callback import when they run (the lake's
# catalog imports pyarrow: ~0.25 s).
TASK_IMPORTS = ("orchestration.stages",)

_BundleDagBag = dagbag.BundleDagBag
_service_subprocess = ActivitySubprocess._service_subprocess


def parse_dag_files(folder: Path) -> dict[str, tuple[int, Any]]:
    """Each DAG file in ``folder`` that parses cleanly: path -> (its mtime, its DagBag)."""
    parsed = {}
    for path in sorted(folder.glob("*.py")):
        bag = _BundleDagBag(dag_folder=str(path), safe_mode=False, load_op_links=False,
                            bundle_path=folder, bundle_name="dags-folder")  # fmt: skip
        if bag.dags and not bag.import_errors:
            parsed[str(path)] = (path.stat().st_mtime_ns, bag)
    return parsed


PARSED: dict[str, tuple[int, Any]] = {}


def parsed_dag_bag(*args: Any, dag_folder: str = "", **kwargs: Any) -> Any:
    """The task runner's parse of its DAG file (``BundleDagBag``): the one made before the
    fork, unless the file has changed since."""
    mtime, bag = PARSED.get(str(dag_folder), (None, None))
    if bag is not None and Path(dag_folder).stat().st_mtime_ns == mtime:
        return bag
    return _BundleDagBag(*args, dag_folder=dag_folder, **kwargs)


def service_until_exit(
    self: ActivitySubprocess,
    max_wait_time: float,
    raise_on_timeout: bool = False,
    expect_signal: int | None = None,
) -> Any:
    """The supervisor's wait for its task process, once the task has closed its sockets.

    Airflow's supervisor waits for the task's sockets and its exit in one ``select()`` on
    the sockets. A task closes them as it exits, so the last wait often has no socket left to
    wake it: it sleeps its whole timeout (``[workers] min_heartbeat_interval``, 5 s) and
    holds its worker that long after the task has ended. Here that wait is on the process.
    """
    if self._exit_code is None and not self._open_sockets:
        with contextlib.suppress(self._process.TimeoutExpired):
            self._process.wait(timeout=max(0.01, max_wait_time))
        return self._check_subprocess_exit(
            raise_on_timeout=raise_on_timeout, expect_signal=expect_signal
        )
    return _service_subprocess(self, max_wait_time, raise_on_timeout, expect_signal)


class PreloadedLocalExecutor(LocalExecutor):
    def start(self) -> None:
        for name in (*PRELOADED, *TASK_IMPORTS):
            importlib.import_module(name)
        PARSED.update(parse_dag_files(Path(conf.get("core", "dags_folder"))))
        # The task runner looks the class up when it parses: it gets the parse made here.
        dagbag.BundleDagBag = parsed_dag_bag  # type: ignore[misc,assignment]
        # The workers fork from this process, and each task's supervisor runs in a worker.
        ActivitySubprocess._service_subprocess = service_until_exit  # type: ignore[method-assign,assignment]
        super().start()
