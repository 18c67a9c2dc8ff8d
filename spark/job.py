"""Pre-process one run's claimed logs into Parquet: the entrypoint EMR and local Spark run.

    spark-submit [--py-files preprocess.zip] job.py \
        --input  <dir or s3://...>/   # holds customers/, orders/, web/ (raw log objects)
        --output <dir or s3://...>/   # gets processed/<dataset>/dt=<run-date>/, quarantine/...
        --run-date YYYY-MM-DD
        [--web-format FORMAT]         # the web server's log format (default: combined)
        --pseudonym-secret NAME|ARN   # Secrets Manager secret keying the address pseudonyms
        [--pseudonym-key-version ID]  # a version id or label (default: AWSCURRENT)

Each dataset is written to its own ``dt=<run-date>`` folder with overwrite, so a re-run for
the same run date replaces exactly what the earlier run wrote and nothing else.

The web stream's client addresses are pseudonymized with the secret's key before anything
is written (``preprocess/pseudonym.py``); the key's secret and version go into the stream's
statistics, and from there into the run manifest. Secrets Manager is reached through boto3's
usual configuration (the job role's credentials on EMR; ``AWS_ENDPOINT_URL`` locally).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from functools import partial
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from lake import layout
from lake.stats import stream_stats_line
from preprocess import customers, erasure, orders, web
from preprocess.common import (
    QUARANTINE_COLUMNS,
    RunContext,
    StreamResult,
    list_folder,
    read_lines,
    replace_file,
)
from preprocess.formats import DEFAULT, FormatError, compile_format
from preprocess.pseudonym import PLAN_REDACTION, PseudonymKey, UnusableKey, read_key

# The streams whose output holds pseudonyms, and so need the key.
KEYED_STREAMS = ("web",)

TRANSFORMS: dict[str, Callable[[DataFrame, RunContext], StreamResult]] = {
    "customers": customers.transform,
    "orders": orders.transform,
    "web": web.transform,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Pre-process claimed shop logs into Parquet.")
    parser.add_argument("--input", required=True, help="folder holding <stream>/ raw logs")
    parser.add_argument("--output", required=True, help="folder for processed/ and quarantine/")
    parser.add_argument("--run-date", required=True, type=date.fromisoformat)
    parser.add_argument("--streams", default=",".join(layout.STREAMS), help="comma-separated")
    parser.add_argument(
        "--lake",
        help="the lake's root (s3://bucket, or a local copy holding its state/ and erasure/ "
        "zones): web sessions the previous run left open there continue in this run, and "
        "customers in its erasure register stay erased",
    )
    parser.add_argument(
        "--web-format",
        default=DEFAULT,
        help="the web stream's log format: an nginx log_format or Apache LogFormat string, "
        "a shortcut (combined, common, combined+, nginx, apache-combined-D, alb) or json "
        "(docs/data-contract.md)",
    )
    parser.add_argument(
        "--pseudonym-secret",
        help="the Secrets Manager secret (name or ARN) whose value keys the HMAC that replaces "
        "client addresses; required for the web stream",
    )
    parser.add_argument(
        "--pseudonym-key-version",
        help="the secret's version id or staging label to use (default: AWSCURRENT); a re-run "
        "of a past date with the version its manifest records gives the same visitor ids",
    )
    args = parser.parse_args(argv)
    try:
        args.compiled_web_format = compile_format(args.web_format)
    except FormatError as exc:
        parser.error(f"--web-format: {exc}")
    streams = set(args.streams.split(","))
    unknown = streams - set(TRANSFORMS)
    if unknown:
        parser.error(f"unknown stream(s) {sorted(unknown)}; choose from {sorted(TRANSFORMS)}")
    if streams & set(KEYED_STREAMS) and not args.pseudonym_secret:
        parser.error(
            "--pseudonym-secret is required for the web stream: name the Secrets Manager "
            "secret holding the pseudonymization key (shoplogs/<env>/spark/pseudonym-key)"
        )
    return args


def build_session() -> SparkSession:
    return (
        SparkSession.builder.appName("shoplogs-preprocess")
        # Correctness settings live with the job; sizing (master, memory) with the runner.
        .config("spark.sql.session.timeZone", "UTC")
        # A time Spark 2 would have read differently (a five-digit year) is unreadable, a
        # quarantine reason, not an exception that fails the run.
        .config("spark.sql.legacy.timeParserPolicy", "CORRECTED")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        # The parse stages compile to methods longer than the JVM's JIT limit (8000 bytes),
        # which then run interpreted, several times slower; Spark splits them below it.
        .config("spark.sql.codegen.hugeMethodLimit", "8000")
        # The pseudonymization key's padded forms are literals of the plan: never printed.
        .config("spark.sql.redaction.string.regex", PLAN_REDACTION)
        .getOrCreate()
    )


def check_reconciles(result: StreamResult) -> None:
    """Every line read must be processed, quarantined or a counted duplicate."""
    stats = result.stats
    if stats.accounted != stats.read:
        raise RuntimeError(
            f"{result.stream}: read {stats.read} lines but accounted for {stats.accounted} "
            f"(processed + quarantined + duplicates); refusing to write partial output"
        )


# Rows per processed file: a day's output of a stream lands in one file, or in files of
# about this many rows (tens of MB of Parquet) when it is large. Spark would otherwise write
# one small file per shuffle partition, and every warehouse COPY pays per file.
ROWS_PER_FILE = 500_000


def file_count(rows: int) -> int:
    return max(1, -(-rows // ROWS_PER_FILE))


def write(result: StreamResult, output: str, run_date: date) -> None:
    """The datasets, state and quarantine under ``output``, laid out as the lake's zones."""
    # Coalesce, not repartition: no extra shuffle, and never more files than partitions.
    files = file_count(result.stats.processed)
    for name, frame in result.datasets.items():
        frame.coalesce(files).write.mode("overwrite").parquet(
            f"{output}/{layout.processed_prefix(name, run_date)}"
        )
    for name, frame in result.state.items():
        frame.coalesce(1).write.mode("overwrite").parquet(
            f"{output}/{layout.state_prefix(name, run_date)}"
        )
    # Quarantine is for people: JSON lines they can read, fix and replay.
    result.quarantine.select(*QUARANTINE_COLUMNS).coalesce(1).write.mode("overwrite").json(
        f"{output}/{layout.quarantine_prefix(result.stream, run_date)}"
    )


def write_stats(spark: SparkSession, result: StreamResult, output: str, run_date: date) -> None:
    """One small JSON file per stream, so concurrent per-stream steps never collide.

    Written through Hadoop's file system API (local paths, and ``s3://`` on EMR with its
    credentials), not as a DataFrame: one line needs no Spark job.
    """
    folder = f"{output}/{layout.stats_prefix(run_date)}{result.stream}"
    replace_file(spark, folder, "part-00000.json", stream_stats_line(result.stream, result.stats))


def run_context(
    spark: SparkSession, lake: str | None, run_date: date, key: PseudonymKey | None = None
) -> RunContext:
    """The run's date, the open sessions of the newest run before it in the lake, and the
    pseudonymization key."""
    if not lake:
        return RunContext(run_date, pseudonym_key=key)
    folder = f"{lake.rstrip('/')}/{layout.state_dataset('web_sessions')}"
    names = [path.rstrip("/").rsplit("/", 1)[-1] for path in list_folder(spark, folder) or []]
    previous = layout.previous_partition(names, run_date)
    if previous is None:
        return RunContext(run_date, pseudonym_key=key)
    return RunContext(run_date, spark.read.parquet(folder + previous), key)


def secrets_client() -> Any:
    """boto3's Secrets Manager client, configured as boto3 is (region, credentials and
    ``AWS_ENDPOINT_URL`` from the environment). Imported here: only keyed streams need it."""
    import boto3

    return boto3.client("secretsmanager")


def pseudonym_key(args: argparse.Namespace) -> PseudonymKey | None:
    """The key the run's keyed streams use, read once for the whole run."""
    if not set(args.streams.split(",")) & set(KEYED_STREAMS):
        return None
    try:
        return read_key(secrets_client(), args.pseudonym_secret, args.pseudonym_key_version)
    except UnusableKey as exc:
        raise SystemExit(f"--pseudonym-secret: {exc}") from exc


def main(argv: list[str] | None = None, keep_session: bool = False) -> int:
    """Run the job; ``keep_session`` leaves Spark running for the next job (the local
    runner's warm session, orchestration/runners/spark_session.py), where spark-submit
    would start a new one."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    output = args.output.rstrip("/")
    key = pseudonym_key(args)
    spark = build_session()
    context = run_context(spark, args.lake, args.run_date, key)
    # Erased customers (lake/erasure.py): whatever this run reads, they stay erased.
    register = erasure.read_register(spark, args.lake)
    for stream in args.streams.split(","):
        lines = read_lines(spark, f"{args.input.rstrip('/')}/{stream}", stream)
        lines, erased = erasure.erase_lines(lines, stream, register)
        transform = TRANSFORMS[stream]
        if stream == "web":
            transform = partial(web.transform, log_format=args.compiled_web_format)
        result = erasure.with_erased_counted(transform(lines, context), erased)
        result = erasure.erase_sessions(result, register)
        if stream in KEYED_STREAMS and key is not None:
            result = replace(result, stats=replace(result.stats, pseudonym_key=key.record()))
        check_reconciles(result)
        write(result, output, args.run_date)
        write_stats(spark, result, output, args.run_date)
        print(stream_stats_line(stream, result.stats), flush=True)
        spark.catalog.clearCache()  # the next stream needs the memory, not these rows
    if not keep_session:
        spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
