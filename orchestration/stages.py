"""The pipeline's stages, each a function of (settings, logical date) that a DAG task calls.

Each stage is idempotent for its run date: running it again replaces what it wrote before.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from datetime import date
from pathlib import Path

from lake import catalog, layout, zones
from lake.manifest import Manifest, write_manifest
from lake.manifest import read_manifest as read_manifest_from
from lake.stats import RunStats, with_erased
from orchestration import erasure, run_report, warehouse_load
from orchestration.runners.dbt import parse_inputs, run_dbt
from orchestration.runners.spark_local import run_spark
from orchestration.settings import REPO_ROOT, Settings, aws_client, log_path
from orchestration.summary import RunReport, report_from_manifest
from orchestration.tools import ToolFailed

MARTS = [
    "dim_customers",
    "dim_customers_current",
    "dim_products",
    "dim_date",
    "fct_orders",
    "fct_order_lines",
    "fct_web_sessions",
    "agg_web_traffic_daily",
]


def this_process() -> str:
    """The run id of a run driven from one process (``make run``, tests): the DAG passes its
    own run id instead, the same in every task and retry of the run."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_landing(settings: Settings, run_date: date, run_id: str | None = None) -> list[str]:
    """Take the run date's lock, claim the run's landing objects and set aside whole objects
    that cannot be read. The lock holds until ``promote_zones``: another run of the same
    date fails here, naming this one, instead of racing its Spark output and promotion."""
    s3 = aws_client(settings, "s3")
    zones.lock_run(s3, settings.lake_bucket, run_date, run_id or this_process())
    zones.claim(s3, settings.lake_bucket, run_date)
    zones.screen(s3, settings.lake_bucket, run_date)
    # Erased customers' lines in what was claimed (logs resent from the hosts) go at once,
    # so not even the processing zone holds them again (docs/erasure.md); it records how
    # many under the run's prefix, for promote's manifest.
    erasure.scrub_claimed(s3, settings.lake_bucket, run_date)
    return zones.list_keys(s3, settings.lake_bucket, layout.raw_prefix(run_date))


def preprocess_locally(settings: Settings, run_date: date) -> None:
    """Run the Spark job on local Spark for the run's claimed data."""
    run_spark(settings, aws_client(settings, "s3"), run_date, log_path(settings, "spark.log"))


def promote_zones(settings: Settings, run_date: date, run_id: str | None = None) -> Manifest:
    """Publish the Spark output and record the run's manifest: what it took and produced;
    then give up the run date's lock taken by ``claim_landing``."""
    s3 = aws_client(settings, "s3")
    bucket = settings.lake_bucket
    owner = run_id or this_process()
    zones.check_run_lock(s3, bucket, run_date, owner)
    stats = with_erased(zones.read_stats(s3, bucket, run_date),
                        erasure.claim_erasures(s3, bucket, run_date))  # fmt: skip
    published = zones.promote(s3, bucket, run_date)
    claimed = zones.list_keys(s3, bucket, layout.raw_prefix(run_date))
    set_aside = zones.set_aside_objects(s3, bucket, run_date)
    manifest = Manifest(run_date.isoformat(), claimed, published, stats, set_aside)
    register_in_catalog(settings, manifest)
    write_manifest(s3, bucket, manifest)
    zones.release_run(s3, bucket, run_date, owner)
    return manifest


def register_in_catalog(settings: Settings, manifest: Manifest) -> list[str]:
    """Tables and the run's partitions in Glue, for Athena and Redshift Spectrum."""
    return catalog.register_run(
        aws_client(settings, "glue"), aws_client(settings, "s3"), settings.lake_bucket,
        settings.glue_database, date.fromisoformat(manifest.run_date),
        manifest.partition_files(),
    )  # fmt: skip


def read_manifest(settings: Settings, run_date: date) -> Manifest:
    return read_manifest_from(aws_client(settings, "s3"), settings.lake_bucket, run_date)


def run_date_env(run_date: date | None) -> dict[str, str]:
    """The run date the incremental models replace (dbt_project/macros/run_date.sql)."""
    return {"SHOPLOGS_RUN_DATE": run_date.isoformat()} if run_date else {}


# fakesnow cannot create the temporary tables dbt unit tests compare through; the unit tests
# run on DuckDB and PostgreSQL, and they test model logic, not the warehouse.
BUILD_ARGS = {"fakesnow": ["--exclude-resource-type", "unit_test"]}


def load_warehouse(
    settings: Settings, run_date: date, connection_env: dict[str, str] | None = None
) -> dict[str, int]:
    """Load the run's processed partition into the warehouse's raw schema (files per table)."""
    manifest = read_manifest(settings, run_date)
    warehouse_load.load_raw(settings, manifest, log_path(settings, "dbt.log"), connection_env)
    return {table: len(names) for table, names in manifest.partition_files().items()}


# The newest run date is yesterday's (the nightly run) or today's (an asset-triggered run);
# anything older is a backfill.
CURRENT_RUN_DAYS = 1


def freshness_enforced(settings: Settings, run_date: date, today: date) -> bool:
    """Whether a stale source fails this run. Freshness compares the newest event with the
    clock, so a backfill of an old date is stale by design: it reports, never fails."""
    return settings.freshness_fails_run and (today - run_date).days <= CURRENT_RUN_DAYS


def check_freshness(
    settings: Settings,
    run_date: date,
    today: date,
    connection_env: dict[str, str] | None = None,
) -> dict[str, str]:
    """``dbt source freshness``: how far each source's newest event lags behind now, against
    the thresholds in the sources' YAML. Returns ``{source.table: pass|warn|error}``; a
    source past its error threshold fails the run where ``freshness_enforced``."""
    try:
        run_dbt(settings, ["source", "freshness"], log_path(settings, "dbt.log"), connection_env)
    except ToolFailed:
        if freshness_enforced(settings, run_date, today):
            raise
    return freshness_statuses(settings.dbt_target_dir / "sources.json")


def freshness_statuses(sources_json: Path) -> dict[str, str]:
    """``{source.table: status}`` from the results dbt source freshness writes."""
    results = json.loads(sources_json.read_text())["results"]
    return {".".join(result["unique_id"].split(".")[-2:]): result["status"] for result in results}


def build_warehouse(settings: Settings, *extra: str, run_date: date | None = None) -> None:
    """Seeds, models and tests: ``dbt build`` against the configured warehouse. With a run
    date the incremental facts replace exactly that run's rows (``run_date_env``)."""
    args = ["build", *BUILD_ARGS.get(settings.warehouse, []), *extra]
    try:
        run_dbt(settings, args, log_path(settings, "dbt.log"), run_date_env(run_date))
    finally:  # failed tests are what the run report most needs to show
        if run_date:
            keep_run_results(settings, run_date, settings.dbt_target_dir)


def keep_run_results(settings: Settings, run_date: date, target_dir: Path) -> str | None:
    """Keep the build's ``run_results.json`` (in dbt's ``target_dir``) for the report: the
    next dbt command (docs, a Cosmos task's retry) writes its own over it."""
    return run_report.keep_run_results(
        aws_client(settings, "s3"), settings.lake_bucket, run_date,
        target_dir / "run_results.json",
    )  # fmt: skip


def generate_docs(settings: Settings, again: bool = False) -> Path:
    """``dbt docs generate`` (its star schema diagram was drawn with the manifest:
    ``build_manifest``); returns the site's ``index.html``.

    The site is kept under the work directory with ``docs_inputs``: while they stay the same
    (a second run of unchanged models) the kept site is the one dbt would write, and the
    ~9 s of ``dbt docs generate`` are saved. ``again``: generate it whatever was kept."""
    kept = settings.work_dir / "docs-site" / docs_inputs(settings)
    if not again and all((kept / name).is_file() for name in SITE_FILES):
        return kept / "index.html"
    run_dbt(settings, ["docs", "generate"], log_path(settings, "dbt.log"))
    shutil.rmtree(kept.parent, ignore_errors=True)  # one site kept: the newest
    kept.mkdir(parents=True)
    for name in SITE_FILES:
        shutil.copy2(settings.dbt_target_dir / name, kept / name)
    return kept / "index.html"


# What writes the raw layer's columns, which the catalog lists beside the models'.
RAW_LAYER_CODE = (REPO_ROOT / "spark", REPO_ROOT / "orchestration" / "warehouse_load.py")


def docs_inputs(settings: Settings) -> str:
    """A digest of what the docs site shows: the project as dbt parses it (``parse_inputs``),
    the warehouse, and the columns of the raw layer (the Spark job's code and the web log's
    format, which adds columns)."""
    digest = hashlib.sha256(f"{parse_inputs(settings)}\0{settings.warehouse}\0".encode())
    digest.update(settings.stream("web").log_format.encode())
    for root in RAW_LAYER_CODE:
        for path in sorted([root] if root.is_file() else root.rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# The whole docs site: the page, and the two files it reads (the diagram is inside the
# manifest, in the overview). Nothing else is needed to serve it from anywhere.
SITE_FILES = {
    "index.html": "text/html",
    "manifest.json": "application/json",
    "catalog.json": "application/json",
}


def publish_docs(settings: Settings, target_dir: Path) -> str:
    """Copy the static docs site to the lake's ``docs/`` prefix (analysts, and the Airflow
    UI's dbt docs view, read it there) and to ``settings.site_dir / "docs"``, its local
    twin (the local Airflow's docs view reads that)."""
    s3 = aws_client(settings, "s3")
    local_copy = settings.site_dir / "docs"
    local_copy.mkdir(parents=True, exist_ok=True)
    for name, content_type in SITE_FILES.items():
        s3.upload_file(
            str(target_dir / name), settings.lake_bucket, layout.DOCS + name,
            ExtraArgs={"ContentType": content_type},
        )  # fmt: skip
        shutil.copy2(target_dir / name, local_copy / name)
    return layout.uri(settings.lake_bucket, layout.DOCS + "index.html")


def gather_report_details(
    settings: Settings,
    report: RunReport,
    manifest: Manifest | None,
    connection_env: dict[str, str] | None = None,
    dbt_built: bool = True,
) -> None:
    """Add to ``report`` what the lake and dbt kept of its run: with its ``manifest``, a
    sample line per quarantine reason and the objects set aside; if ``dbt_built``, the dbt
    tests (failing rows' audit tables)."""
    s3 = aws_client(settings, "s3")
    run_date = date.fromisoformat(report.run_date)
    if manifest:
        samples = run_report.lake_quarantine_samples(s3, settings.lake_bucket, run_date)
        for stream, by_reason in samples.items():
            report.quarantine_samples.setdefault(stream, {}).update(by_reason)
        report.quarantined_objects = dict(manifest.quarantined_objects)
    if not dbt_built:
        return
    results = run_report.kept_run_results(s3, settings.lake_bucket, run_date)
    report.tests = run_report.dbt_tests_of_run(
        settings, results, log_path(settings, "dbt-show.log"), connection_env
    )
    # Under the DAG no stage is timed by the caller; dbt times its own build.
    if "elapsed_time" in results and "dbt build" not in report.seconds:
        report.seconds["dbt build"] = float(results["elapsed_time"])


def dag_run_report(
    settings: Settings,
    run_date: date,
    failed: list[str],
    promoted: bool,
    dbt_built: bool,
    freshness: dict[str, str],
    connection_env: dict[str, str] | None = None,
) -> RunReport:
    """The published report of a DAG run, of what its tasks got to: the counts once its
    zones were ``promoted``, dbt's tests once its build ran, rows per mart only when no task
    ``failed``. An earlier attempt at the same date leaves its manifest and dbt results in
    the lake, so each is read only when this run wrote it."""
    manifest = read_manifest(settings, run_date) if promoted else None
    stats = manifest.stats if manifest else RunStats(run_date.isoformat())
    marts = mart_row_counts(settings) if settings.warehouse == "duckdb" and not failed else {}
    report = report_from_manifest(stats, marts)
    report.failed_tasks = failed
    report.freshness = freshness
    gather_report_details(settings, report, manifest, connection_env, dbt_built)
    report.page_path = publish_report(settings, report)
    return report


def publish_report(settings: Settings, report: RunReport) -> str:
    """The run report to the lake's ``reports/`` prefix (beside the docs); its page's URI."""
    store = run_report.S3Store(aws_client(settings, "s3"), settings.lake_bucket)
    return run_report.publish_report(store, report)


def mart_row_counts(settings: Settings) -> dict[str, int]:
    """Rows per mart in the local DuckDB warehouse."""
    import duckdb  # only the local target needs it

    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        counts = {}
        for mart in MARTS:
            row = con.execute(f"select count(*) from marts.{mart}").fetchone()
            counts[mart] = int(row[0]) if row else 0
        return counts
