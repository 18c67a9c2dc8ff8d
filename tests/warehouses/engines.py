"""Start a warehouse engine, prepare it the way infra/ prepares the real one, and read it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import duckdb
import psycopg2
import snowflake.connector

from infra.warehouse_setup import execute
from orchestration.local_warehouses import fakesnow_server, postgres_server
from orchestration.settings import Settings

# The real warehouse each local stand-in takes the setup script of.
SETUP_SCRIPT = {"postgres": "redshift", "fakesnow": "snowflake"}


@contextmanager
def running(engine: str, work: Path) -> Iterator[dict[str, str]]:
    """Start ``engine`` (nothing to start for DuckDB) with its variables in os.environ."""
    with ExitStack() as stack:
        env: dict[str, str] = {}
        if engine == "postgres":
            env = stack.enter_context(postgres_server())
        elif engine == "fakesnow":
            env = stack.enter_context(fakesnow_server(work / "fakesnow-stage"))
        stack.enter_context(mock.patch.dict(os.environ, env))
        yield env


def connect(engine: str, settings: Settings) -> Any:
    if engine == "duckdb":
        return duckdb.connect(str(settings.duckdb_path), read_only=True)
    if engine == "postgres":
        connection = psycopg2.connect(
            host=os.environ["POSTGRES_HOST"], port=os.environ["POSTGRES_PORT"],
            user=os.environ["POSTGRES_USER"], dbname=os.environ["POSTGRES_DATABASE"],
        )  # fmt: skip
        connection.autocommit = True
        return connection
    return snowflake.connector.connect(
        user="fakesnow", password="fakesnow", account="fakesnow", host="127.0.0.1",
        port=int(os.environ["FAKESNOW_PORT"]), protocol="http", database="SHOPLOGS",
        login_timeout=20, network_timeout=60,
    )  # fmt: skip


def query(engine: str, settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    connection = connect(engine, settings)
    try:
        cursor = connection.cursor()
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        connection.close()


def run_setup_script(engine: str, settings: Settings) -> list[str]:
    """Run infra/<warehouse>/setup.sql on the stand-in; returns what it had to skip."""
    variables = {
        "LAKE_BUCKET": settings.lake_bucket,
        "SNOWFLAKE_STORAGE_ROLE_ARN": "arn:aws:iam::123456789012:role/shoplogs-snowflake",
        "SNOWFLAKE_STAGE_URL": os.environ.get("FAKESNOW_STAGE_URL", ""),
        "GLUE_DATABASE": settings.glue_database,
        "REDSHIFT_SPECTRUM_ROLE_ARN": "arn:aws:iam::123456789012:role/shoplogs-spectrum",
    }
    connection = connect(engine, settings)
    try:
        cursor = connection.cursor()
        return execute(SETUP_SCRIPT[engine], engine, variables, cursor.execute)
    finally:
        connection.close()


def normalized(value: Any) -> Any:
    """One spelling per value, whatever the driver returned."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, float) and value.is_integer():
        return format(Decimal(int(value)), "f")
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool):
        return format(Decimal(value), "f")
    return value


def table_rows(engine: str, settings: Settings, relation: str) -> tuple[list[str], list[tuple]]:
    """Column names (lower case) and every row, normalized and sorted."""
    connection = connect(engine, settings)
    try:
        cursor = connection.cursor()
        cursor.execute(f"select * from {relation}")
        columns = [d[0].lower() for d in cursor.description]
        rows = sorted((tuple(normalized(v) for v in row) for row in cursor.fetchall()), key=repr)
        return columns, rows
    finally:
        connection.close()
