"""Load a run's processed partition into the warehouse's raw schema: the pipeline's `load`
stage, between promote and dbt.

The loading itself is dbt's (``macros/load/load_raw.sql``, one implementation per
warehouse); this module hands it the partition's files, from the run manifest, and where
they lie, from ``lake.layout``. DuckDB reads the zone in place and loads nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from lake import layout
from lake.manifest import Manifest
from orchestration.runners.dbt import run_dbt
from orchestration.settings import Settings

# Warehouses whose sources read the processed zone in place (their external_location), so
# load_raw has nothing to do there (duckdb__load_raw_partition says so): no dbt start-up.
READ_IN_PLACE = frozenset({"duckdb"})


def partition_locations(bucket: str, run_date: date) -> dict[str, dict[str, str]]:
    """Where each dataset's partition of the run lies: its S3 URI, and its path below the
    Snowflake stage (which points at the processed zone)."""
    locations = {}
    for stream in layout.STREAMS:
        for dataset in layout.DATASETS[stream]:
            prefix = layout.processed_prefix(dataset, run_date)
            locations[dataset] = {
                "uri": layout.uri(bucket, prefix),
                "stage_path": prefix.removeprefix(layout.PROCESSED),
            }
    return locations


def load_args(bucket: str, run_date: date, files: Mapping[str, list[str]]) -> str:
    """The ``--args`` of ``dbt run-operation load_raw``."""
    return json.dumps(
        {
            "run_date": run_date.isoformat(),
            "files": dict(files),
            "locations": partition_locations(bucket, run_date),
        }
    )


def load_raw(
    settings: Settings,
    manifest: Manifest,
    log_file: Path,
    connection_env: dict[str, str] | None = None,
) -> None:
    """Load the manifest's partition into ``settings.warehouse``.

    ``connection_env`` holds the warehouse credentials (rendered from an Airflow connection).
    """
    if settings.warehouse in READ_IN_PLACE:
        return
    run_date = date.fromisoformat(manifest.run_date)
    args = load_args(settings.lake_bucket, run_date, manifest.partition_files())
    run_dbt(settings, ["run-operation", "load_raw", "--args", args], log_file, connection_env)
