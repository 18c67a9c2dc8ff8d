"""``python -m infra.warehouse_setup apply``: the setup script run on a connection read from
Secrets Manager (moto server), here the PostgreSQL stand-in of Redshift."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from infra import warehouse_setup
from infra.warehouse_setup import render, script_path
from local.warehouses import postgres_server
from orchestration.runners.dbt import CONNECTION_ENV, profile_env
from orchestration.settings import REPO_ROOT, load_settings, redshift_pipeline_user
from tests.infra.templates import load, resolve, resource

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shoplogs/dev/connections/pg-AbCdEf"


def test_a_json_connection_secret_is_read_as_airflow_stores_it() -> None:
    secret = json.dumps(
        {"conn_type": "redshift", "host": "wg.example", "port": 5439, "login": "admin",
         "schema": "shoplogs", "extra": {"auth_method": "iam", "workgroup_name": "shoplogs-dev"}}
    )  # fmt: skip
    conn = warehouse_setup.parse_connection(secret)
    assert (conn.conn_type, conn.host, conn.port, conn.schema) == (
        "redshift", "wg.example", 5439, "shoplogs",
    )  # fmt: skip
    assert conn.extra["workgroup_name"] == "shoplogs-dev"


def test_a_uri_connection_secret_is_read_too() -> None:
    conn = warehouse_setup.parse_connection("postgres://me:p%40ss@db.example:6543/shoplogs?a=1")
    assert (conn.login, conn.password, conn.port, conn.schema) == ("me", "p@ss", 6543, "shoplogs")
    assert conn.extra == {"a": "1"}


def test_a_secret_without_conn_type_is_named() -> None:
    with pytest.raises(ValueError, match="no conn_type"):
        warehouse_setup.parse_connection('{"host": "x"}')


def test_variables_follow_from_the_secret_and_match_the_templates() -> None:
    variables = warehouse_setup.derived_variables(ARN)
    assert variables["LAKE_BUCKET"] == "shoplogs-dev-lake-123456789012"
    assert variables["GLUE_DATABASE"] == "shoplogs_dev"
    assert variables["SNOWFLAKE_DATABASE"] == "SHOPLOGS_DEV"
    names = {"Env": "dev", "AWS::AccountId": "123456789012"}
    template = load("warehouses")
    for variable, role in (("REDSHIFT_SPECTRUM_ROLE_ARN", "RedshiftCopyRole"),
                           ("SNOWFLAKE_STORAGE_ROLE_ARN", "SnowflakeStorageRole")):  # fmt: skip
        role_name = resolve(resource(template, role)["RoleName"], names)
        assert variables[variable] == f"arn:aws:iam::123456789012:role/{role_name}"


def test_the_redshift_pipeline_user_is_the_mwaa_roles_iam_identity() -> None:
    """On Serverless, GetCredentials logs the MWAA execution role in as ``IAMR:<role name>``:
    that is the user the setup must create and grant to."""
    role = resource(load("orchestration"), "ExecutionRole")["RoleName"]
    role_name = resolve(role, {"Env": "dev"})
    assert warehouse_setup.derived_variables(ARN)["REDSHIFT_PIPELINE_USER"] == f"IAMR:{role_name}"
    assert load_settings("dev").redshift_pipeline_user == f"IAMR:{role_name}"


def documented_connections() -> dict[str, dict[str, object]]:
    """The connection secrets orchestration/README.md tells a person to create."""
    readme = (REPO_ROOT / "orchestration" / "README.md").read_text()
    rows = re.findall(r"^\| `shoplogs/<env>/connections/(\w+)` \| `(\{.*?\})`", readme, re.M)
    return {conn_id: json.loads(secret.replace("…", "")) for conn_id, secret in rows}


def test_the_documented_logins_are_the_users_the_setup_creates() -> None:
    connections = documented_connections()
    snowflake_user = re.search(
        r"create user if not exists (\w+)", script_path("snowflake").read_text()
    )
    assert snowflake_user is not None
    assert str(connections["snowflake_default"]["login"]).lower() == snowflake_user[1].lower()
    redshift_sql = render(
        script_path("redshift").read_text(), warehouse_setup.derived_variables(ARN)
    )
    login = str(connections["redshift_default"]["login"]).replace("<env>", "dev")
    assert login == redshift_pipeline_user("dev")
    assert f"call shoplogs_ensure_user('{login}')" in redshift_sql
    # The other two guides name the same user.
    for guide in ("README.md", "infra/README.md"):
        assert "IAMR:shoplogs-<env>-mwaa" in (REPO_ROOT / guide).read_text(), guide


def test_the_printed_redshift_script_names_the_environments_pipeline_user(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"SHOPLOGS_ENV": "prod", "GLUE_DATABASE": "shoplogs_prod",
                        "REDSHIFT_SPECTRUM_ROLE_ARN": "arn:aws:iam::1:role/r"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDSHIFT_PIPELINE_USER", raising=False)
    assert warehouse_setup.main(["redshift"]) == 0
    printed = capsys.readouterr().out
    assert (
        "call shoplogs_ensure_member('shoplogs_transformers', 'IAMR:shoplogs-prod-mwaa')" in printed
    )
    assert 'for user "IAMR:shoplogs-prod-mwaa" in schema marts' in printed


def test_redshift_only_syntax_is_rewritten_for_postgres_and_nothing_else() -> None:
    """PostgreSQL has no PASSWORD DISABLE (a user that logs in only with IAM's temporary
    credentials); the stand-in gets PASSWORD NULL, a user without a password. Roles: listed
    in pg_roles, not svv_roles, and granted without ROLE. Everything else runs on
    PostgreSQL as Redshift gets it."""
    sql = render(script_path("redshift").read_text(), warehouse_setup.derived_variables(ARN))
    assert "password disable" in sql and "grant role shoplogs_pii_reader to" in sql
    on_postgres = warehouse_setup.rewrite(sql, "postgres")
    assert "password disable" not in on_postgres and "svv_roles" not in on_postgres
    assert (
        on_postgres.replace("password null", "password disable")
        .replace("pg_roles where rolname", "svv_roles where role_name")
        .replace("grant shoplogs_pii_reader to", "grant role shoplogs_pii_reader to")
    ) == sql


@pytest.mark.parametrize(
    ("schema", "kinds"), [("marts", ("tables", "views")), ("audit", ("tables",))]
)
def test_snowflake_readers_get_what_the_pipeline_builds(
    schema: str, kinds: tuple[str, ...]
) -> None:
    """fakesnow has no grants, so the script's text is checked. Snowflake's future grants on
    a schema cover objects any role creates there, but a view is not a table: marts holds
    views (dim_customers_current) as well as tables."""
    sql = render(script_path("snowflake").read_text(), warehouse_setup.derived_variables(ARN))
    for kind in kinds:
        for scope in ("all", "future"):
            grant = (
                f"grant select on {scope} {kind} in schema SHOPLOGS_DEV.{schema} "
                "to role shoplogs_reporter;"
            )
            assert grant in sql, grant


def test_dev_setup_creates_and_grants_nothing_in_prods_snowflake_database() -> None:
    """Sources name `raw_data` whatever the environment: only a database of dev's own keeps
    a dev load out of prod's raw layer."""
    sql = render(script_path("snowflake").read_text(), warehouse_setup.derived_variables(ARN))
    databases = set(re.findall(r"\b(SHOPLOGS\w*)\.", sql, re.IGNORECASE))
    assert databases == {"SHOPLOGS_DEV"}
    assert "create database if not exists SHOPLOGS_DEV;" in sql
    assert "storage integration if not exists SHOPLOGS_DEV_lake" in sql


def test_each_environment_builds_in_its_own_snowflake_database() -> None:
    databases = {
        env: profile_env(load_settings(env))["SNOWFLAKE_DATABASE"] for env in ("prod", "dev")
    }
    assert databases == {"prod": "SHOPLOGS", "dev": "SHOPLOGS_DEV"}
    # The connection a person typed in cannot point a dev build at prod's database.
    assert "SNOWFLAKE_DATABASE" not in CONNECTION_ENV["snowflake"]


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, str]]:
    with postgres_server() as variables:
        yield variables


@pytest.mark.integration
def test_apply_runs_the_script_from_a_secret_twice_without_harm(
    aws_endpoint: str, postgres: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = boto3.client("secretsmanager", endpoint_url=aws_endpoint, region_name="us-east-1")
    connection = {"conn_type": "postgres", "host": postgres["POSTGRES_HOST"],
                  "port": int(postgres["POSTGRES_PORT"]), "login": postgres["POSTGRES_USER"],
                  "schema": postgres["POSTGRES_DATABASE"]}  # fmt: skip
    name = "shoplogs/dev/connections/redshift_admin"
    secrets.create_secret(Name=name, SecretString=json.dumps(connection))
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for _ in range(2):
        assert warehouse_setup.main(["apply", "redshift", "--secret", name]) == 0
    conn = warehouse_setup.CONNECTORS["postgres"](
        warehouse_setup.parse_connection(json.dumps(connection))
    )
    try:
        cursor = conn.cursor()
        cursor.execute("select nspname from pg_namespace where nspname in ('raw_data', 'marts')")
        assert sorted(row[0] for row in cursor.fetchall()) == ["marts", "raw_data"]
        pipeline = warehouse_setup.derived_variables(secret_arn(secrets, name))
        assert_readers_see_what_the_pipeline_builds(cursor, pipeline["REDSHIFT_PIPELINE_USER"])
    finally:
        conn.close()


def secret_arn(secrets: Any, name: str) -> str:
    return str(secrets.describe_secret(SecretId=name)["ARN"])


def assert_readers_see_what_the_pipeline_builds(cursor: Any, pipeline_user: str) -> None:
    """As far as PostgreSQL models Redshift: the pipeline's user (``IAMR:<MWAA role>``) is
    in the transformers group, builds in marts through it, and a member of the reporters
    group reads the table and the view it built after the setup ran. ``set role`` stands
    for logging in as that user (its password is disabled: only IAM logs it in)."""
    run = cursor.execute
    run(
        "select groname from pg_group, pg_user "
        "where usename = %s and usesysid = any(grolist)", (pipeline_user,)
    )  # fmt: skip
    # PostgreSQL lists roles among groups: the pipeline also holds the role that reads
    # personal data clear (Redshift's GRANT ROLE).
    assert sorted(row[0] for row in cursor.fetchall()) == [
        "shoplogs_pii_reader", "shoplogs_transformers"
    ]  # fmt: skip
    run(f'set role "{pipeline_user}"')
    run("create table marts.fct_probe as select 1 as probe_id")
    run("create view marts.dim_probe as select probe_id from marts.fct_probe")
    run("reset role")
    run("create user analyst")
    run("alter group shoplogs_reporters add user analyst")
    run("set role analyst")
    try:
        run("select count(*) from marts.fct_probe")
        assert cursor.fetchone() == (1,)
        run("select count(*) from marts.dim_probe")
        assert cursor.fetchone() == (1,)
    finally:
        run("reset role")


@pytest.mark.integration
def test_apply_names_a_secret_of_the_wrong_kind(aws_endpoint: str) -> None:
    secrets = boto3.client("secretsmanager", endpoint_url=aws_endpoint, region_name="us-east-1")
    name = "shoplogs/dev/connections/aws_default"
    secrets.create_secret(Name=name, SecretString=json.dumps({"conn_type": "aws"}))
    with pytest.raises(ValueError, match="holds a 'aws' connection"):
        warehouse_setup.apply("redshift", name, secrets)
