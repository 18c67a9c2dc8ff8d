"""A processed zone written directly as Parquet, in the layout and schemas the Spark job
writes (``<root>/<dataset>/dt=<run date>/part-0.parquet``): for dbt tests and benches that
need many days of data without running Spark for each."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMAS = {
    "customers": pa.schema(
        [
            ("event_id", pa.string()),
            ("event_type", pa.string()),
            ("event_at", pa.timestamp("us")),
            ("customer_id", pa.string()),
            ("email", pa.string()),
            ("first_name", pa.string()),
            ("last_name", pa.string()),
            ("country_code", pa.string()),
            ("city", pa.string()),
            ("source_file", pa.string()),
        ]
    ),
    "orders": pa.schema(
        [
            ("event_id", pa.string()),
            ("event_type", pa.string()),
            ("event_at", pa.timestamp("us")),
            ("order_id", pa.string()),
            ("customer_id", pa.string()),
            ("currency", pa.string()),
            ("line_count", pa.int32()),
            ("source_file", pa.string()),
        ]
    ),
    "order_lines": pa.schema(
        [
            ("event_id", pa.string()),
            ("order_id", pa.string()),
            ("line_number", pa.int32()),
            ("product_id", pa.string()),
            ("quantity", pa.int32()),
            ("unit_price", pa.decimal128(12, 2)),
        ]
    ),
    "web_requests": pa.schema(
        [
            ("event_id", pa.string()),
            ("request_at", pa.timestamp("us")),
            ("client_ip", pa.string()),
            ("remote_user", pa.string()),
            ("method", pa.string()),
            ("path", pa.string()),
            ("protocol", pa.string()),
            ("status", pa.int32()),
            ("bytes_sent", pa.int64()),
            ("referrer", pa.string()),
            ("user_agent", pa.string()),
            ("is_bot", pa.bool_()),
            ("is_page_view", pa.bool_()),
            ("source_file", pa.string()),
            ("visitor_id", pa.string()),
            ("session_id", pa.string()),
            # What the configured web format may add (spark/preprocess/web.py ADDED_COLUMNS),
            # null where a row does not give it, as the job writes them.
            ("virtual_host", pa.string()),
            ("request_id", pa.string()),
            ("forwarded_for", pa.string()),
            ("request_time_us", pa.int64()),
            ("upstream_time_us", pa.int64()),
        ]
    ),
}


def write_day(root: Path, day: date, rows: dict[str, list[dict[str, Any]]]) -> None:
    for table, schema in SCHEMAS.items():
        folder = root / table / f"dt={day}"
        for old in folder.glob("*.parquet"):
            old.unlink()
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows[table], schema), folder / "part-0.parquet")


def parquet_glob(root: Path) -> str:
    """What the DuckDB sources read (``SHOPLOGS_PROCESSED_PARQUET``) for a zone at ``root``."""
    return f"{root}/{{name}}/dt=*/*.parquet"
