"""Load a run's processed partition into the warehouse's raw schema: the pipeline's `load`
stage, between promote and dbt.

The loading itself is dbt's (``macros/load/load_raw.sql``, one implementation per
warehouse). This module hands it the partition's files from the run manifest and, for the
two local stand-ins that cannot read Parquet from S3, puts the files where they can:

- fakesnow (Snowflake): the processed files are mirrored into the local folder its
  external stage points at; the real ``COPY INTO ... MATCH_BY_COLUMN_NAME`` then runs.
- PostgreSQL (Redshift family): the rows are written into ``raw_data.<table>__incoming``, the
  table Redshift's ``COPY ... FORMAT AS PARQUET`` fills; the delete+insert transaction
  that follows is Redshift's own.
"""

from __future__ import annotations

import io
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

from ingestion import zones
from orchestration.dbt_runner import run_dbt
from orchestration.settings import Settings


def partition_files(manifest: zones.Manifest) -> dict[str, list[str]]:
    """``{table: [object names]}`` of the run's processed partition, from the manifest."""
    files: dict[str, list[str]] = {}
    for key in manifest.published:
        parts = key.split("/")
        if parts[0] == "processed" and key.endswith(".parquet"):
            files.setdefault(parts[1], []).append(parts[-1])
    return {table: sorted(names) for table, names in sorted(files.items())}


def load_args(run_date: date, files: dict[str, list[str]]) -> str:
    return json.dumps({"run_date": run_date.isoformat(), "files": files})


def load_raw(
    settings: Settings,
    s3: Any,
    manifest: zones.Manifest,
    log_file: Path,
    connection_env: dict[str, str] | None = None,
) -> None:
    """Load the manifest's partition into ``settings.warehouse``; DuckDB reads it in place.

    ``connection_env`` holds the warehouse credentials (rendered from an Airflow connection).
    """
    run_date = date.fromisoformat(manifest.run_date)
    files = partition_files(manifest)
    if settings.warehouse == "fakesnow":
        mirror_to_stage(s3, settings.lake_bucket, run_date, files, fakesnow_stage_root())
    elif settings.warehouse == "postgres":
        stage_into_postgres(s3, settings.lake_bucket, run_date, files)
    args = ["run-operation", "load_raw", "--args", load_args(run_date, files)]
    run_dbt(settings, args, log_file, connection_env)


def fakesnow_stage_root() -> Path:
    url = os.environ.get("FAKESNOW_STAGE_URL", "")
    if not url.startswith("file://"):
        raise RuntimeError(
            "FAKESNOW_STAGE_URL is not set to a file:// folder; start the emulator with "
            "orchestration.local_warehouses.fakesnow_server(), which sets it"
        )
    return Path(url.removeprefix("file://"))


def mirror_to_stage(
    s3: Any, bucket: str, run_date: date, files: dict[str, list[str]], root: Path
) -> None:
    """Make ``root/<table>/dt=<run>/`` hold exactly the partition's files."""
    for table, names in files.items():
        folder = root / table / f"dt={run_date.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.iterdir():
            if stale.name not in names:
                stale.unlink()
        for name in names:
            key = f"processed/{table}/dt={run_date.isoformat()}/{name}"
            s3.download_file(bucket, key, str(folder / name))


def stage_into_postgres(s3: Any, bucket: str, run_date: date, files: dict[str, list[str]]) -> None:
    """Fill ``raw_data.<table>__incoming`` with the partition's rows, as Redshift's COPY would."""
    import psycopg2
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    connection = psycopg2.connect(
        host=os.environ["POSTGRES_HOST"],
        port=os.environ["POSTGRES_PORT"],
        user=os.environ["POSTGRES_USER"],
        dbname=os.environ["POSTGRES_DATABASE"],
    )
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("create schema if not exists raw_data")
            for table, names in files.items():
                tables = [
                    pq.read_table(
                        io.BytesIO(
                            s3.get_object(
                                Bucket=bucket,
                                Key=f"processed/{table}/dt={run_date.isoformat()}/{name}",
                            )["Body"].read()
                        )
                    )
                    for name in names
                ]
                data = pa.concat_tables(tables)
                incoming = f"raw_data.{table}__incoming"
                columns = ", ".join(
                    f"{field.name} {postgres_type(field.type)}" for field in data.schema
                )
                cursor.execute(f"drop table if exists {incoming}")
                cursor.execute(f"create table {incoming} ({columns})")
                buffer = io.BytesIO()
                # Quote every value so that an empty string stays one; NULL stays unquoted.
                options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
                pacsv.write_csv(data, buffer, options)
                buffer.seek(0)
                cursor.copy_expert(f"copy {incoming} from stdin with (format csv)", buffer)
    finally:
        connection.close()


def postgres_type(arrow: Any) -> str:
    import pyarrow as pa

    if pa.types.is_string(arrow):
        return "text"
    if pa.types.is_timestamp(arrow):
        return "timestamp"
    if pa.types.is_boolean(arrow):
        return "boolean"
    if pa.types.is_int64(arrow):
        return "bigint"
    if pa.types.is_integer(arrow):
        return "integer"
    if pa.types.is_decimal(arrow):
        return f"numeric({arrow.precision}, {arrow.scale})"
    if pa.types.is_date(arrow):
        return "date"
    if pa.types.is_floating(arrow):
        return "double precision"
    raise TypeError(f"no PostgreSQL type for Parquet type {arrow}; extend postgres_type()")
