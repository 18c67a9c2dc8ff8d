"""Unit tests for the warehouse plumbing: setup-script rendering and splitting, the load's
file list, and the warehouse setting."""

from __future__ import annotations

import json
from datetime import date

import pytest

from infra.warehouse_setup import render, runnable, statements
from lake.manifest import Manifest
from lake.stats import RunStats
from orchestration.settings import load_settings
from orchestration.warehouse_load import load_args


def test_statements_split_outside_quotes_dollar_bodies_and_comments() -> None:
    sql = """
    -- a comment; with a semicolon
    create schema if not exists raw_data;
    create procedure p() as $$ begin execute 'a; b'; end; $$ language plpgsql;
    insert into t values ('x;y');
    """
    assert statements(sql) == [
        "create schema if not exists raw_data",
        "create procedure p() as $$ begin execute 'a; b'; end; $$ language plpgsql",
        "insert into t values ('x;y')",
    ]


def test_render_names_every_missing_variable() -> None:
    assert render("url = '${LAKE_BUCKET}'", {"LAKE_BUCKET": "b"}) == "url = 'b'"
    with pytest.raises(KeyError, match="set GLUE_DATABASE, LAKE_BUCKET in the environment"):
        render("${LAKE_BUCKET} ${GLUE_DATABASE}", {})


def test_runnable_skips_only_what_matches_a_gap() -> None:
    run, skipped = runnable(
        ["create role r", "create schema s", "GRANT x"], [r"create role\b", "grant"]
    )
    assert (run, skipped) == (["create schema s"], ["create role r", "GRANT x"])


def test_partition_files_come_from_the_manifest_parquet_only() -> None:
    manifest = Manifest(
        run_date="2026-11-21",
        claimed=[],
        published=[
            "processed/orders/dt=2026-11-21/part-1.parquet",
            "processed/orders/dt=2026-11-21/part-0.parquet",
            "processed/customers/dt=2026-11-21/part-0.parquet",
            "quarantine/orders/dt=2026-11-21/part-0.json",
        ],
        stats=RunStats("2026-11-21"),
    )
    files = manifest.partition_files()
    assert files == {
        "customers": ["part-0.parquet"],
        "orders": ["part-0.parquet", "part-1.parquet"],
    }
    args = json.loads(load_args("lake", date(2026, 11, 21), files))
    assert args["run_date"] == "2026-11-21" and args["files"] == files
    # Where each table's partition lies comes from the lake's layout, for every table.
    assert args["locations"]["orders"] == {
        "uri": "s3://lake/processed/orders/dt=2026-11-21/",
        "stage_path": "orders/dt=2026-11-21/",
    }
    assert set(args["locations"]) == {"customers", "orders", "order_lines", "web_requests"}


def test_warehouse_is_one_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOPLOGS_WAREHOUSE", raising=False)
    assert load_settings("local").dbt_target == "duckdb"
    monkeypatch.setenv("SHOPLOGS_WAREHOUSE", "redshift")
    assert load_settings("prod").dbt_target == "redshift"
    monkeypatch.setenv("SHOPLOGS_WAREHOUSE", "bigquery")
    with pytest.raises(ValueError, match="SHOPLOGS_WAREHOUSE='bigquery' is not one of duckdb"):
        load_settings("local")
