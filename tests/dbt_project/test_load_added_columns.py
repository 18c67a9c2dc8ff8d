"""A raw web_requests table made before the web formats' columns existed: the load adds the
five columns, and reloading a partition written before them (its files lack them) and one
written after both work, on PostgreSQL (standing in for Redshift) and fakesnow (Snowflake)."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from lake import layout
from local.warehouses import (
    connect,
    fakesnow_stage_root,
    mirror_to_stage,
    run_setup_script,
    running,
    stage_into_postgres,
)
from orchestration.runners.dbt import run_dbt
from orchestration.settings import DBT_PROJECT_DIR, load_settings
from orchestration.warehouse_load import load_args
from tests.dbt_project.engines import query

pytestmark = pytest.mark.integration

SOURCES = DBT_PROJECT_DIR / "models" / "staging" / "web" / "_web__sources.yml"
ADDED = ["virtual_host", "request_id", "forwarded_for", "request_time_us", "upstream_time_us"]
ARROW = {"string": pa.string(), "timestamp": pa.timestamp("us"), "integer": pa.int32(),
         "bigint": pa.int64(), "boolean": pa.bool_()}  # fmt: skip
OLD_DAY, NEW_DAY = date(2026, 10, 1), date(2026, 11, 1)
BUCKET = "added-columns-lake"


def source_columns() -> list[dict[str, Any]]:
    [source] = yaml.safe_load(SOURCES.read_text())["sources"]
    [table] = [t for t in source["tables"] if t["name"] == "web_requests"]
    return [c for c in table["columns"] if c["name"] != "dt"]


def partition(event_id: str, with_added: bool) -> bytes:
    """One request's Parquet file, as the Spark job wrote it before or after the columns."""
    columns = [c for c in source_columns() if with_added or c["name"] not in ADDED]
    values = {"event_id": event_id, "virtual_host": "shop.example.com", "request_time_us": 1532}
    table = pa.table({
        c["name"]: pa.array([values.get(c["name"])], ARROW[c["data_type"]]) for c in columns
    })  # fmt: skip
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("engine", ["postgres", "fakesnow"])
def test_an_old_raw_table_gets_the_added_columns_and_old_and_new_partitions_load(
    engine: str, tmp_path: Path, s3: Any
) -> None:
    s3.create_bucket(Bucket=BUCKET)
    settings = replace(load_settings("local"), warehouse=engine, work_dir=tmp_path)
    old_columns = ", ".join(
        f"{c['name']} {'varchar' if c['data_type'] == 'string' else c['data_type']}"
        for c in source_columns() if c["name"] not in ADDED
    )  # fmt: skip
    with running(engine, tmp_path):
        run_setup_script(engine, settings)  # schemas, and Snowflake's stage and file format
        # The table as the release before the web formats created it.
        connection = connect(engine, settings)
        connection.cursor().execute(f"create table raw_data.web_requests ({old_columns}, dt date)")
        connection.close()
        for day, event_id, with_added in ((NEW_DAY, "new", True), (OLD_DAY, "old", False)):
            key = layout.processed_prefix("web_requests", day) + "part-0.parquet"
            s3.put_object(Bucket=BUCKET, Key=key, Body=partition(event_id, with_added))
            files = {"web_requests": ["part-0.parquet"]}
            if engine == "postgres":
                stage_into_postgres(s3, BUCKET, day, files)
            else:
                mirror_to_stage(s3, BUCKET, day, files, fakesnow_stage_root())
            args = load_args(BUCKET, day, files)
            run_dbt(settings, ["run-operation", "load_raw", "--args", args], tmp_path / "dbt.log")
        rows = query(
            engine, settings,
            "select event_id, virtual_host, request_time_us, dt from raw_data.web_requests"
            " order by dt",
        )  # fmt: skip
    assert [tuple(row) for row in rows] == [
        ("old", None, None, OLD_DAY),
        ("new", "shop.example.com", 1532, NEW_DAY),
    ]
