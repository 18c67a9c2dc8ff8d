"""The dbt profile's variables as Airflow renders them when a task runs (``CONNECTION_ENV``):
with Airflow's own template environment (StrictUndefined) and its Connection objects, from
connections that leave the optional keys out, and then as dbt reads them in profiles.yml."""

from __future__ import annotations

import json
import uuid
from argparse import Namespace
from typing import Any

import pytest

from orchestration.runners.dbt import CONNECTION_ENV, profile_env
from orchestration.settings import DBT_PROJECT_DIR, load_settings

# Only what each warehouse cannot do without: no role, warehouse, auth method, cluster,
# database or login.
MINIMAL_CONNECTIONS = {
    "snowflake_default": {
        "conn_type": "snowflake",
        "login": "SHOPLOGS_PIPELINE",
        "extra": {"account": "xy12345.eu-west-1", "private_key_content": "-----BEGIN..."},
    },
    "redshift_default": {
        "conn_type": "redshift",
        "host": "shoplogs-prod.123456789012.eu-west-1.redshift-serverless.amazonaws.com",
    },
}


def rendered(warehouse: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Each template rendered as a task's fields are: Airflow's Jinja environment for a DAG
    (StrictUndefined), ``conn`` resolving through the secrets backends (here the
    environment-variable one, as Secrets Manager on MWAA)."""
    from airflow.sdk import DAG
    from airflow.sdk.execution_time.context import ConnectionAccessor

    for conn_id, connection in MINIMAL_CONNECTIONS.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    env = DAG(dag_id="render_connection_env", schedule=None).get_template_env()
    return {
        name: env.from_string(template).render(conn=ConnectionAccessor())
        for name, template in CONNECTION_ENV[warehouse].items()
    }


def dbt_credentials(warehouse: str, env: dict[str, str]) -> Any:
    """The credentials dbt builds from profiles.yml's ``warehouse`` target with ``env``."""
    from dbt.config.profile import Profile, read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt.flags import set_from_args
    from dbt_common.context import set_invocation_context

    set_from_args(Namespace(), None)
    set_invocation_context(env)
    raw = read_profile(str(DBT_PROJECT_DIR))
    profile = Profile.from_raw_profiles(
        raw, "shoplogs", ProfileRenderer({}), target_override=warehouse
    )
    return profile.credentials


def test_a_snowflake_connection_without_role_or_warehouse_gets_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = rendered("snowflake", monkeypatch)
    assert env["SNOWFLAKE_ROLE"] == env["SNOWFLAKE_WAREHOUSE"] == ""
    credentials = dbt_credentials("snowflake", {**env, **profile_env(load_settings("prod"))})
    assert (credentials.user, credentials.role, credentials.warehouse) == (
        "SHOPLOGS_PIPELINE", "SHOPLOGS_TRANSFORMER", "SHOPLOGS_TRANSFORM_WH",
    )  # fmt: skip
    assert credentials.database == "SHOPLOGS"


def test_a_redshift_connection_with_only_a_host_gets_iam_auth_on_serverless(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = rendered("redshift", monkeypatch)
    assert env["REDSHIFT_CLUSTER_ID"] == env["REDSHIFT_AUTH_METHOD"] == env["REDSHIFT_USER"] == ""
    credentials = dbt_credentials("redshift", {**env, **profile_env(load_settings("prod"))})
    assert (credentials.method, credentials.database, credentials.port) == ("iam", "shoplogs", 5439)
    assert credentials.host == MINIMAL_CONNECTIONS["redshift_default"]["host"]


def test_extras_a_connection_gives_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    generated = uuid.uuid4().hex  # a database password, made up here
    connection = MINIMAL_CONNECTIONS["redshift_default"] | {
        "login": "shoplogs_loader", "password": generated, "schema": "analytics_db",
        "extra": {"auth_method": "database", "cluster_identifier": "shoplogs-prod"},
    }  # fmt: skip
    monkeypatch.setitem(MINIMAL_CONNECTIONS, "redshift_default", connection)
    env = rendered("redshift", monkeypatch)
    credentials = dbt_credentials("redshift", {**env, **profile_env(load_settings("prod"))})
    assert (credentials.method, credentials.user, credentials.password) == (
        "database", "shoplogs_loader", generated,
    )  # fmt: skip
    assert (credentials.database, credentials.cluster_id) == ("analytics_db", "shoplogs-prod")
