"""Pre-process one run's claimed logs into Parquet: the entrypoint EMR and local Spark run.

    spark-submit [--py-files preprocess.zip] job.py \
        --input  <dir or s3://...>/   # holds customers/, orders/, web/ (raw log objects)
        --output <dir or s3://...>/   # gets processed/<dataset>/dt=<run-date>/, quarantine/...
        --run-date YYYY-MM-DD

Each dataset is written to its own ``dt=<run-date>`` folder with overwrite, so a re-run for
the same run date replaces exactly what the earlier run wrote and nothing else.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import date

from pyspark.sql import DataFrame, SparkSession

from preprocess import customers, orders, web
from preprocess.common import QUARANTINE_COLUMNS, StreamResult, read_lines

TRANSFORMS: dict[str, Callable[[DataFrame], StreamResult]] = {
    "customers": customers.transform,
    "orders": orders.transform,
    "web": web.transform,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Pre-process claimed shop logs into Parquet.")
    parser.add_argument("--input", required=True, help="folder holding <stream>/ raw logs")
    parser.add_argument("--output", required=True, help="folder for processed/ and quarantine/")
    parser.add_argument("--run-date", required=True, type=date.fromisoformat)
    parser.add_argument("--streams", default=",".join(TRANSFORMS), help="comma-separated")
    args = parser.parse_args(argv)
    unknown = set(args.streams.split(",")) - set(TRANSFORMS)
    if unknown:
        parser.error(f"unknown stream(s) {sorted(unknown)}; choose from {sorted(TRANSFORMS)}")
    return args


def build_session() -> SparkSession:
    return (
        SparkSession.builder.appName("shoplogs-preprocess")
        # Correctness settings live with the job; sizing (master, memory) with the runner.
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .getOrCreate()
    )


def check_reconciles(result: StreamResult) -> None:
    """Every line read must be processed, quarantined or a counted duplicate."""
    counts = result.counts
    quarantined = sum(v for k, v in counts.items() if k.startswith("quarantined:"))
    accounted = counts["processed"] + quarantined + counts["duplicates"]
    if accounted != counts["read"]:
        raise RuntimeError(
            f"{result.stream}: read {counts['read']} lines but accounted for {accounted} "
            f"(processed + quarantined + duplicates); refusing to write partial output"
        )


def write(result: StreamResult, output: str, run_date: date) -> None:
    partition = f"dt={run_date.isoformat()}"
    for name, frame in result.datasets.items():
        frame.write.mode("overwrite").parquet(f"{output}/processed/{name}/{partition}")
    # Quarantine is for people: JSON lines they can read, fix and replay.
    result.quarantine.select(*QUARANTINE_COLUMNS).coalesce(1).write.mode("overwrite").json(
        f"{output}/quarantine/{result.stream}/{partition}"
    )


def write_stats(spark: SparkSession, result: StreamResult, output: str, run_date: date) -> None:
    """One small JSON file per stream, so concurrent per-stream steps never collide."""
    rows = [(json.dumps({"stream": result.stream, **result.counts}, sort_keys=True),)]
    spark.createDataFrame(rows, "value string").coalesce(1).write.mode("overwrite").text(
        f"{output}/_stats/dt={run_date.isoformat()}/{result.stream}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    output = args.output.rstrip("/")
    spark = build_session()
    for stream in args.streams.split(","):
        result = TRANSFORMS[stream](read_lines(spark, f"{args.input.rstrip('/')}/{stream}"))
        check_reconciles(result)
        write(result, output, args.run_date)
        write_stats(spark, result, output, args.run_date)
        print(f"{stream}: {json.dumps(result.counts, sort_keys=True)}")
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
