"""Erase one customer's personal data on request (issue 24), as `make erase` does.

Triggered by hand or through the API with the customer id as a param:

    airflow dags trigger shoplogs_erase --conf '{"customer_id": "C00042"}'

One task (orchestration/erasure.py): the erasure register first, then every zone of the
lake, then the warehouse (dbt's erase_customer operation), then the audit record under
audit/erasures/. Idempotent: a retry or a second request rewrites nothing and records so.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, task

from orchestration.runners.dbt import CONNECTION_ENV
from orchestration.settings import load_settings
from orchestration.tasks.pipeline import writer_pool

settings = load_settings()


@task(task_id="erase_customer")
def erase_customer(
    customer_id: str, connection_env: dict[str, str], dag_run: Any = None
) -> dict[str, Any]:
    """Erase the customer everywhere; the audit record (hashes and counts) is the result."""
    from orchestration import erasure

    requested_by = getattr(dag_run, "triggering_user_name", None) or "airflow"
    audit = erasure.erase_customer(
        load_settings(), customer_id, requested_by, dag_run.run_after, connection_env
    )
    return audit.to_dict()


with DAG(
    dag_id="shoplogs_erase",
    description="Erase one customer's personal data from the lake and the warehouse",
    schedule=None,
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,  # two erasures never rewrite the same objects at once
    params={
        "customer_id": Param(
            type="string",
            pattern=r"^[A-Za-z0-9._@+-]{1,128}$",
            description="The shop's customer id to erase",
        )
    },
    default_args={
        "owner": "data-platform",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
    },
    tags=["shoplogs", "privacy", f"dbt:{settings.dbt_target}"],
    doc_md=__doc__,
):
    erase_customer.override(**writer_pool(settings))(
        "{{ params.customer_id }}", CONNECTION_ENV.get(settings.warehouse, {})
    )
