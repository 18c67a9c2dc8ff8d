"""The web source reads partitions written before a column was added: the new column is
null there (DuckDB reads the processed zone in place through the source's location)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from orchestration.settings import DBT_PROJECT_DIR

SOURCES = DBT_PROJECT_DIR / "models" / "staging" / "web" / "_web__sources.yml"


def test_a_partition_without_the_added_columns_still_reads(tmp_path: Path) -> None:
    [source] = yaml.safe_load(SOURCES.read_text())["sources"]
    old = tmp_path / "web_requests" / "dt=2026-10-01"
    new = tmp_path / "web_requests" / "dt=2026-11-01"
    for folder in (old, new):
        folder.mkdir(parents=True)
    pq.write_table(pa.table({"event_id": ["a"]}), old / "part-0.parquet")  # written first
    pq.write_table(
        pa.table({"event_id": ["b"], "virtual_host": ["shop.example.com"]}),
        new / "part-0.parquet",
    )
    glob = f"{tmp_path}/web_requests/*/*.parquet"
    location = re.sub(r"\{\{.*?\}\}", glob, source["meta"]["external_location"])
    rows = duckdb.sql(f"select event_id, virtual_host from {location} order by 1").fetchall()
    assert rows == [("a", None), ("b", "shop.example.com")]
