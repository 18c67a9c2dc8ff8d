"""Register the processed zone in the Glue Data Catalog, so Athena and Redshift Spectrum can
query it: one table per dataset (Parquet, partitioned by ``dt``), one partition per run.

The columns come from the Parquet files themselves, so the catalog can never drift from
what the Spark job wrote. Every call is idempotent: re-registering a run changes nothing.
"""

from __future__ import annotations

import contextlib
import io
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lake import layout

PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    },
}


def glue_type(arrow: pa.DataType) -> str:
    if pa.types.is_decimal(arrow):
        return f"decimal({arrow.precision},{arrow.scale})"
    if pa.types.is_timestamp(arrow):
        return "timestamp"
    simple = {
        pa.string(): "string", pa.large_string(): "string", pa.bool_(): "boolean",
        pa.int32(): "int", pa.int64(): "bigint", pa.float64(): "double", pa.date32(): "date",
    }  # fmt: skip
    if arrow not in simple:
        raise ValueError(f"no Glue type for Parquet column type {arrow}")
    return simple[arrow]


def columns_of(parquet: bytes) -> list[dict[str, str]]:
    schema = pq.read_schema(io.BytesIO(parquet))
    return [{"Name": field.name, "Type": glue_type(field.type)} for field in schema]


def _ensure_database(glue: Any, database: str) -> None:
    with contextlib.suppress(glue.exceptions.AlreadyExistsException):
        glue.create_database(DatabaseInput={"Name": database})


def _ensure_table(glue: Any, database: str, table: str, location: str, columns: list) -> None:
    table_input = {
        "Name": table,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        "StorageDescriptor": {"Columns": columns, "Location": location, **PARQUET},
    }
    try:
        glue.create_table(DatabaseName=database, TableInput=table_input)
    except glue.exceptions.AlreadyExistsException:
        glue.update_table(DatabaseName=database, TableInput=table_input)


def register_run(
    glue: Any, s3: Any, bucket: str, database: str, run_date: date, files: dict[str, list[str]]
) -> list[str]:
    """Create or update each dataset's table and its ``dt=<run_date>`` partition.

    ``files`` maps a dataset name to the run's Parquet files (columns are read from one).
    """
    _ensure_database(glue, database)
    registered = []
    for table, names in sorted(files.items()):
        partition_prefix = layout.processed_prefix(table, run_date)
        sample = s3.get_object(Bucket=bucket, Key=partition_prefix + names[0])["Body"].read()
        columns = columns_of(sample)
        location = layout.uri(bucket, layout.processed_dataset(table))
        _ensure_table(glue, database, table, location, columns)
        day = run_date.isoformat()
        partition = {
            "Values": [day],
            "StorageDescriptor": {
                "Columns": columns, "Location": layout.uri(bucket, partition_prefix), **PARQUET,
            },
        }  # fmt: skip
        try:
            glue.create_partition(DatabaseName=database, TableName=table,
                                  PartitionInput=partition)  # fmt: skip
        except glue.exceptions.AlreadyExistsException:
            glue.update_partition(
                DatabaseName=database, TableName=table,
                PartitionValueList=[day], PartitionInput=partition,
            )  # fmt: skip
        registered.append(f"{database}.{table}/{layout.partition(run_date)}")
    return registered
