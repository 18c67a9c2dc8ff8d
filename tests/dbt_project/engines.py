"""Read what a warehouse engine holds, in one spelling whatever the driver."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from local.warehouses import connect
from orchestration.settings import Settings


def query(engine: str, settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    connection = connect(engine, settings)
    try:
        cursor = connection.cursor()
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        connection.close()


def execute(engine: str, settings: Settings, *statements: str) -> None:
    """Statements run and committed (a test's own rows planted in the warehouse)."""
    import duckdb

    # connect() opens DuckDB read-only, for the readers it serves.
    writable = duckdb.connect(str(settings.duckdb_path)) if engine == "duckdb" else None
    connection = writable or connect(engine, settings)
    try:
        cursor = connection.cursor()
        for statement in statements:
            cursor.execute(statement)
        connection.commit()
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
        cursor.execute(f"select * from {relation} limit 0")
        columns = [d[0].lower() for d in cursor.description]
        # fakesnow sends a NULL timestamp as 1970-01-01 (its result encoding; the stored
        # value is NULL): read an is-null flag next to every column and trust that.
        flags = [f"{c} is null as {c}__is_null" for c in columns] if engine == "fakesnow" else []
        cursor.execute(f"select {', '.join([*columns, *flags])} from {relation}")
        rows = []
        for row in cursor.fetchall():
            values = list(row[: len(columns)])
            for index, is_null in enumerate(row[len(columns) :]):
                if is_null:
                    values[index] = None
            rows.append(tuple(normalized(v) for v in values))
        return columns, sorted(rows, key=repr)
    finally:
        connection.close()
