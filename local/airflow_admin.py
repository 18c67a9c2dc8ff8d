"""What a local run needs of Airflow's metadata database before ``airflow dags test``, done in
one process (three ``airflow`` commands started Airflow three times: 11 s of ``make run``):
the schema migrated, the DuckDB writer pool, and no runs left from an earlier local stack.

Runs in the Airflow environment ``local.airflow_runner.airflow_env`` builds."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

# Written after a migration: the Airflow version and the schema revision it left. Checking a
# database against it is one query; `upgradedb` on a current one loads every migration
# script (~1.6 s of each `make run`).
MIGRATED = "migrated-by"


def migrate(home: Path) -> None:
    """The schema at this Airflow's head, migrating only when the database is not where this
    Airflow last left it (a new or deleted database, another Airflow version)."""
    from airflow import __version__
    from airflow.utils import db

    stamp = home / MIGRATED
    if stamp.is_file() and stamp.read_text() == f"{__version__} {schema_revision()}":
        return
    db.upgradedb()
    stamp.write_text(f"{__version__} {schema_revision()}")


def schema_revision() -> str | None:
    """The database's schema revision (Alembic's), None for a database never migrated."""
    from airflow import settings
    from alembic.migration import MigrationContext

    with settings.get_engine().connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def main(dag_id: str, pool: str) -> int:
    from airflow.api.common.delete_dag import delete_dag
    from airflow.exceptions import DagNotFound
    from airflow.models.pool import Pool

    migrate(Path(os.environ["AIRFLOW_HOME"]))
    Pool.create_or_update_pool(pool, 1, "DuckDB allows a single writer", include_deferred=False)
    # A fresh local stack each time (moto keeps nothing): forget the runs, and deferred
    # tasks, of earlier ones, so none of them blocks or resumes against data that is gone.
    with contextlib.suppress(DagNotFound):
        delete_dag(dag_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
