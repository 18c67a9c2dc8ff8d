"""``make airflow``'s executor: Airflow's LocalExecutor, with the modules every task process
imports already imported when it forks its workers.

Each task runs in a process forked from a LocalExecutor worker, which then imports Airflow's
task runner and the DAG file's modules (Cosmos, the amazon provider, boto3) before it parses
the DAG: ~1-3 s of CPU per task, paid by every per-model task of the dbt group while dbt
builds on the same two cores. Imported once here, before the workers fork, they are in every
task process from the start, as Airflow's DAG processor pre-imports a DAG file's Airflow
modules (``[dag_processor] parsing_pre_import_modules``).
"""

from __future__ import annotations

import importlib

from airflow.executors.local_executor import LocalExecutor

# What a task process imports before its task runs: Airflow's task runner, then what the DAG
# file imports (orchestration/dags/shoplogs_pipeline.py).
PRELOADED = (
    "airflow.sdk.execution_time.task_runner",
    "cosmos",
    "orchestration.landing_watch",
    "orchestration.tasks.dbt",
    "orchestration.tasks.pipeline",
)


class PreloadedLocalExecutor(LocalExecutor):
    def start(self) -> None:
        for name in PRELOADED:
            importlib.import_module(name)
        super().start()
