"""Shared pieces of the pre-processing: reading lines, quarantine, de-duplication, counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lake.stats import StreamStats

LINES_SCHEMA = T.StructType(
    [T.StructField("value", T.StringType()), T.StructField("source_file", T.StringType())]
)
# Quarantine rows keep the raw line untouched so a person can fix and replay it.
QUARANTINE_COLUMNS = ["stream", "reason", "detail", "source_file", "raw_line"]

# Spark decodes input as UTF-8 and replaces undecodable bytes with U+FFFD.
REPLACEMENT_CHAR = "\ufffd"


@dataclass
class StreamResult:
    """What one stream produced: datasets to write, its quarantine, and what it counted."""

    stream: str
    datasets: dict[str, DataFrame]
    quarantine: DataFrame
    stats: StreamStats


def read_lines(spark: SparkSession, path: str) -> DataFrame:
    """Every non-empty line under ``path`` (files of any name, nested), with its file name.

    A stream with no input for the run is not an error: it yields no rows.
    """
    jvm: Any = spark._jvm
    jvm_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = jvm_path.getFileSystem(spark._jsc.hadoopConfiguration())
    if not fs.exists(jvm_path):
        return spark.createDataFrame([], LINES_SCHEMA)
    lines = spark.read.option("recursiveFileLookup", "true").text(path)
    return lines.select(
        # Lines written on Windows or by some appenders end in \r\n; the \r is not data.
        F.regexp_replace("value", r"\r$", "").alias("value"),
        F.element_at(F.split(F.input_file_name(), "/"), -1).alias("source_file"),
    ).where(F.col("value") != "")  # empty lines carry no event; the shipper skips them too


def first_failure(*checks: tuple[Column, str, Column | str]) -> tuple[Column, Column]:
    """Reason and detail of the first failing check, or nulls when the line is valid.

    Each check is ``(failed, reason, detail)``; order matters: an undecodable line is
    reported as such, not as the field that happens to break first.
    """
    reason: Column = F.lit(None).cast("string")
    detail: Column = F.lit(None).cast("string")
    for failed, name, text in reversed(checks):
        text_col = text if isinstance(text, Column) else F.lit(text)
        reason = F.when(failed, F.lit(name)).otherwise(reason)
        detail = F.when(failed, text_col).otherwise(detail)
    return reason, detail


def encoding_check() -> tuple[Column, str, str]:
    return (
        F.col("value").contains(REPLACEMENT_CHAR),
        "invalid_encoding",
        "line is not valid UTF-8; re-encode the log as UTF-8",
    )


def binary_check() -> tuple[Column, str, str]:
    return (
        F.col("value").rlike("[\\x00-\\x08\\x0e-\\x1f]"),
        "binary_content",
        "line holds control bytes (binary data written into a text log)",
    )


def missing_check(columns: list[str]) -> tuple[Column, str, Column]:
    """Fails when any required column is null or blank; the detail names the first one."""
    missing = [F.when(F.coalesce(F.trim(F.col(c)), F.lit("")) == "", F.lit(c)) for c in columns]
    first_missing = F.coalesce(*missing)
    return (
        first_missing.isNotNull(),
        "missing_field",
        F.concat(F.lit("no value for "), first_missing),
    )


def parse_utc(text: Column) -> Column:
    """ISO-8601 text with an offset (or none, meaning UTC) -> UTC wall-clock timestamp.

    Stored without a zone (TIMESTAMP_NTZ) so every warehouse reads the same UTC value.
    """
    return F.to_timestamp(text).cast("timestamp_ntz")


def split_and_dedupe(
    stream: str, parsed: DataFrame, key: str = "event_id"
) -> tuple[DataFrame, DataFrame, StreamStats]:
    """Split parsed rows into valid (one row per ``key``) and quarantined, with the counts.

    Among rows sharing an event id the one with the smallest raw line wins, so the choice
    does not depend on file order and a re-run picks the same row.
    """
    parsed = parsed.cache()
    valid = parsed.where(F.col("reason").isNull())
    order = Window.partitionBy(key).orderBy("value", "source_file")
    unique = valid.withColumn("_copy", F.row_number().over(order)).where("_copy = 1").drop("_copy")
    quarantine = parsed.where(F.col("reason").isNotNull()).select(
        F.lit(stream).alias("stream"),
        "reason",
        "detail",
        "source_file",
        F.col("value").alias("raw_line"),
    )
    unique = unique.cache()
    valid_count = valid.count()
    processed = unique.count()
    reasons = {
        row["reason"]: row["count"] for row in quarantine.groupBy("reason").count().collect()
    }
    stats = StreamStats(
        read=parsed.count(),
        processed=processed,
        duplicates=valid_count - processed,
        quarantined=reasons,
    )
    return unique, quarantine, stats
