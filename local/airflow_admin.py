"""What a local run needs of Airflow's metadata database before ``airflow dags test``, done in
one process (three ``airflow`` commands started Airflow three times: 11 s of ``make run``):
the schema migrated, the DuckDB writer pool, and no runs left from an earlier local stack.

Runs in the Airflow environment ``local.airflow_runner.airflow_env`` builds."""

from __future__ import annotations

import contextlib
import sys


def main(dag_id: str, pool: str) -> int:
    from airflow.api.common.delete_dag import delete_dag
    from airflow.exceptions import DagNotFound
    from airflow.models.pool import Pool
    from airflow.utils import db

    db.upgradedb()
    Pool.create_or_update_pool(pool, 1, "DuckDB allows a single writer", include_deferred=False)
    # A fresh local stack each time (moto keeps nothing): forget the runs, and deferred
    # tasks, of earlier ones, so none of them blocks or resumes against data that is gone.
    with contextlib.suppress(DagNotFound):
        delete_dag(dag_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
