"""Where the time of an `airflow dags test` run goes, read from its output; what `make
airflow`'s executor imports before it forks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from local.airflow_executor import PRELOADED
from local.airflow_runner import DAGS_FOLDER, dag_seconds, task_seconds
from orchestration.settings import REPO_ROOT

LOG = """\
2026-11-23T04:45:38.000000Z [info     ] Filling up the DagBag from /dags [dagbag]
2026-11-23T04:45:44.000000Z [info] [DAG TEST] starting task_id=run_date map_index=-1 [dag]
2026-11-23T04:45:51.000000Z [info] [DAG TEST] end task task_id=run_date map_index=-1 [dag]
2026-11-23T04:45:51.500000Z [info] [DAG TEST] starting task_id=dbt.dbt_producer_watcher
2026-11-23T04:46:05.000000Z [info] [DAG TEST] end task task_id=dbt.dbt_producer_watcher
2026-11-23T04:46:05.100000Z [info] [DAG TEST] starting task_id=dbt.fct_orders map_index=-1
2026-11-23T04:46:05.500000Z [info] [DAG TEST] end task task_id=dbt.fct_orders map_index=-1
2026-11-23T04:46:06.000000Z [info] [DAG TEST] starting task_id=summary map_index=-1 [dag]
2026-11-23T04:46:06.250000Z [info] [DAG TEST] end task task_id=summary map_index=-1 [dag]
"""


def test_a_task_group_counts_as_one_task_from_its_first_start_to_its_last_end() -> None:
    assert task_seconds(LOG.splitlines()) == {"run_date": 7.0, "dbt": 14.0, "summary": 0.25}


def test_the_rest_of_the_run_is_airflow_itself(tmp_path: Path) -> None:
    log = tmp_path / "airflow.log"
    log.write_text(LOG)
    seconds = dag_seconds(log, total=30.0)
    assert seconds["airflow itself"] == 30.0 - 7.0 - 14.0 - 0.25
    assert list(seconds) == ["run_date", "dbt", "summary", "airflow itself"]


def test_the_executor_preloads_only_what_a_task_process_imports_anyway() -> None:
    """The modules ``make airflow``'s executor imports before it forks its workers are ones
    a task process would import: Airflow's task runner, and the DAG file's own imports."""
    probe = (
        "import sys; from airflow.dag_processing.dagbag import DagBag; "
        "import airflow.sdk.execution_time.task_runner; "
        f"bag = DagBag(dag_folder={str(DAGS_FOLDER)!r}); assert not bag.import_errors; "
        f"print(sorted(set({list(PRELOADED)!r}) - set(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "AIRFLOW__COSMOS__ENABLE_CACHE": "False"}
    found = subprocess.run([sys.executable, "-c", probe], env=env, cwd=REPO_ROOT,
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert found.stdout.strip().splitlines()[-1] == "[]"
