"""The pipeline's stages, each a function of (settings, logical date) that a DAG task calls.

Each stage is idempotent for its run date: running it again replaces what it wrote before.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import boto3

from ingestion import catalog, zones
from ingestion.firehose import ShipStats
from ingestion.local_aws import provision, provision_landing_events
from ingestion.ship import ship_file
from orchestration import warehouse_load
from orchestration.dbt_runner import run_dbt
from orchestration.settings import DBT_PROJECT_DIR, Settings
from orchestration.spark_runner import run_spark

MARTS = [
    "dim_customers",
    "dim_products",
    "dim_date",
    "fct_orders",
    "fct_order_lines",
    "fct_web_sessions",
]


def aws_client(settings: Settings, service: str) -> Any:
    kwargs: dict[str, Any] = {"region_name": settings.region}
    if settings.aws_endpoint_url:
        kwargs["endpoint_url"] = settings.aws_endpoint_url
    return boto3.client(service, **kwargs)  # type: ignore[call-overload]


def log_path(settings: Settings, name: str) -> Path:
    return settings.work_dir / "logs" / name


def provision_local(settings: Settings) -> None:
    """Create the bucket, delivery streams and landing event queue (infra/'s names)."""
    s3 = aws_client(settings, "s3")
    provision(
        s3,
        aws_client(settings, "firehose"),
        settings.lake_bucket,
        {s.name: s.delivery_stream for s in settings.streams},
        settings.firehose_role_arn,
    )
    provision_landing_events(
        s3, aws_client(settings, "sqs"), settings.lake_bucket, settings.landing_queue_name
    )


def ship_logs(settings: Settings, files: dict[str, list[Path]]) -> dict[str, ShipStats]:
    """Send each stream's log files through its Firehose delivery stream.

    Lines too large for a Firehose record go to quarantine with their reason.
    """
    firehose = aws_client(settings, "firehose")
    s3 = aws_client(settings, "s3")
    results: dict[str, ShipStats] = {}
    for stream_name, paths in files.items():
        stream = settings.stream(stream_name)
        total = ShipStats()
        for path in paths:
            stats = ship_file(firehose, stream.delivery_stream, path)
            zones.quarantine_lines(
                s3,
                settings.lake_bucket,
                stream.name,
                path.name,
                "record_too_large",
                stats.oversize_lines,
            )
            total.add(stats)
        results[stream_name] = total
    return results


def claim_landing(settings: Settings, run_date: date) -> list[str]:
    """Claim the run's landing objects and set aside whole objects that cannot be read."""
    s3 = aws_client(settings, "s3")
    zones.claim(s3, settings.lake_bucket, run_date)
    zones.screen(s3, settings.lake_bucket, run_date)
    return zones.list_keys(s3, settings.lake_bucket, zones.run_prefix(run_date) + "raw/")


def preprocess_locally(settings: Settings, run_date: date) -> None:
    """Run the Spark job on local Spark for the run's claimed data."""
    run_spark(settings, aws_client(settings, "s3"), run_date, log_path(settings, "spark.log"))


def promote_zones(settings: Settings, run_date: date) -> zones.Manifest:
    """Publish the Spark output and record the run's manifest: what it took and produced."""
    s3 = aws_client(settings, "s3")
    bucket = settings.lake_bucket
    stats = zones.read_stats(s3, bucket, run_date)
    published = zones.promote(s3, bucket, run_date)
    register_in_catalog(settings, published, run_date)
    claimed = zones.list_keys(s3, bucket, zones.run_prefix(run_date) + "raw/")
    set_aside = zones.set_aside_objects(s3, bucket, run_date)
    manifest = zones.Manifest(run_date.isoformat(), claimed, published, stats, set_aside)
    zones.write_manifest(s3, bucket, manifest)
    return manifest


def register_in_catalog(settings: Settings, published: list[str], run_date: date) -> list[str]:
    """Tables and the run's partitions in Glue, for Athena and Redshift Spectrum."""
    samples: dict[str, str] = {}
    for key in published:
        parts = key.split("/")
        if parts[0] == "processed" and key.endswith(".parquet"):
            samples.setdefault(parts[1], key)
    return catalog.register_run(
        aws_client(settings, "glue"), aws_client(settings, "s3"), settings.lake_bucket,
        settings.glue_database, run_date.isoformat(), samples,
    )  # fmt: skip


def read_manifest(settings: Settings, run_date: date) -> zones.Manifest:
    return zones.read_manifest(aws_client(settings, "s3"), settings.lake_bucket, run_date)


# fakesnow cannot create the temporary tables dbt unit tests compare through; the unit tests
# run on DuckDB and PostgreSQL, and they test model logic, not the warehouse.
BUILD_ARGS = {"fakesnow": ["--exclude-resource-type", "unit_test"]}


def load_warehouse(
    settings: Settings, run_date: date, connection_env: dict[str, str] | None = None
) -> dict[str, int]:
    """Load the run's processed partition into the warehouse's raw schema (files per table)."""
    manifest = read_manifest(settings, run_date)
    s3 = aws_client(settings, "s3")
    warehouse_load.load_raw(settings, s3, manifest, log_path(settings, "dbt.log"), connection_env)
    return {table: len(names) for table, names in warehouse_load.partition_files(manifest).items()}


def build_warehouse(settings: Settings, *extra: str) -> None:
    """Seeds, models and tests: ``dbt build`` against the configured warehouse."""
    args = ["build", *BUILD_ARGS.get(settings.warehouse, []), *extra]
    run_dbt(settings, args, log_path(settings, "dbt.log"))


def generate_docs(settings: Settings) -> Path:
    run_dbt(settings, ["docs", "generate"], log_path(settings, "dbt.log"))
    return DBT_PROJECT_DIR / "target" / "index.html"


def publish_docs(settings: Settings, target_dir: Path) -> str:
    """Copy the static docs site to ``s3://<lake>/docs/`` (served to analysts from there)."""
    s3 = aws_client(settings, "s3")
    for name in ("index.html", "manifest.json", "catalog.json"):
        s3.upload_file(str(target_dir / name), settings.lake_bucket, f"docs/{name}")
    return f"s3://{settings.lake_bucket}/docs/index.html"


def mart_row_counts(settings: Settings) -> dict[str, int]:
    """Rows per mart in the local DuckDB warehouse."""
    import duckdb  # only the local target needs it

    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        counts = {}
        for mart in MARTS:
            row = con.execute(f"select count(*) from marts.{mart}").fetchone()
            counts[mart] = int(row[0]) if row else 0
        return counts
