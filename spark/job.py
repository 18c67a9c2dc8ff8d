"""Pre-process one run's claimed logs into Parquet: the entrypoint EMR and local Spark run.

    spark-submit [--py-files preprocess.zip] job.py \
        --input  <dir or s3://...>/   # holds customers/, orders/, web/ (raw log objects)
        --output <dir or s3://...>/   # gets processed/<dataset>/dt=<run-date>/, quarantine/...
        --run-date YYYY-MM-DD
        [--web-format FORMAT]         # the web server's log format (default: combined)

Each dataset is written to its own ``dt=<run-date>`` folder with overwrite, so a re-run for
the same run date replaces exactly what the earlier run wrote and nothing else.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date
from functools import partial

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
    args = parser.parse_args(argv)
    try:
        args.compiled_web_format = compile_format(args.web_format)
    except FormatError as exc:
        parser.error(f"--web-format: {exc}")
    unknown = set(args.streams.split(",")) - set(TRANSFORMS)
    if unknown:
        parser.error(f"unknown stream(s) {sorted(unknown)}; choose from {sorted(TRANSFORMS)}")
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


def run_context(spark: SparkSession, lake: str | None, run_date: date) -> RunContext:
    """The run's date, and the open sessions of the newest run before it in the lake."""
    if not lake:
        return RunContext(run_date)
    folder = f"{lake.rstrip('/')}/{layout.state_dataset('web_sessions')}"
    names = [path.rstrip("/").rsplit("/", 1)[-1] for path in list_folder(spark, folder) or []]
    previous = layout.previous_partition(names, run_date)
    if previous is None:
        return RunContext(run_date)
    return RunContext(run_date, spark.read.parquet(folder + previous))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    output = args.output.rstrip("/")
    spark = build_session()
    context = run_context(spark, args.lake, args.run_date)
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
        check_reconciles(result)
        write(result, output, args.run_date)
        write_stats(spark, result, output, args.run_date)
        print(stream_stats_line(stream, result.stats), flush=True)
        spark.catalog.clearCache()  # the next stream needs the memory, not these rows
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
