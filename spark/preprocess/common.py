"""Shared pieces of the pre-processing: reading lines, quarantine, de-duplication, counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lake import wire
from lake.stats import StreamStats
from preprocess.pseudonym import PseudonymKey

LINES_SCHEMA = T.StructType(
    [
        T.StructField("value", T.StringType()),
        T.StructField("source_file", T.StringType()),
        # The line's place in its source file, when the shipper sent it (else null).
        T.StructField("position_id", T.StringType()),
        # The log format its shipper named for it (agent.json's logFormat, percent-encoded
        # as it travels), else null: the stream's configured format applies.
        T.StructField("log_format", T.StringType()),
    ]
)
# The shipper's record (lake/wire.py): its lines joined by the separator after a header
# naming the host, the file's fingerprint, the record's offset and its line count.
ENVELOPE = wire.HEADER_REGEX
# Characters enough for any header (it is ASCII: a character is a byte).
HEADER_CHARS = wire.MAX_HEADER_BYTES
SEPARATOR = wire.SEPARATOR.decode()
# Quarantine rows keep the raw line untouched so a person can fix and replay it.
QUARANTINE_COLUMNS = ["stream", "reason", "detail", "source_file", "raw_line"]

# Spark decodes input as UTF-8 and replaces undecodable bytes with U+FFFD.
REPLACEMENT_CHAR = "\ufffd"


@dataclass
class StreamResult:
    """What one stream produced: datasets to write, its quarantine, what it counted, and
    what the next run continues from (``state``)."""

    stream: str
    datasets: dict[str, DataFrame]
    quarantine: DataFrame
    stats: StreamStats
    state: dict[str, DataFrame] = field(default_factory=dict)


@dataclass(frozen=True)
class RunContext:
    """What a transform knows besides its lines: the run's logical date (every object it
    reads arrived on or before it), the web sessions the previous run left open
    (``visitor_id``, ``session_start``, ``last_request_at``), if there was one, and the key
    that pseudonymizes client addresses (the web stream refuses to run without one)."""

    run_date: date | None = None
    open_sessions: DataFrame | None = None
    pseudonym_key: PseudonymKey | None = None


# The accepted window for event times (docs/data-contract.md): no shop log predates this,
# and nothing can happen more than a day (clock skew) after the run's date.
EARLIEST_EVENT = date(1990, 1, 1)
SKEW = timedelta(days=1)


def time_window_check(
    parsed: Column, raw: Column, name: str, context: RunContext | None
) -> tuple[Column, str, Column]:
    """Fails when a readable event time lies outside the accepted window (a year like
    20260, a date days after the line arrived)."""
    run_date = (context or RunContext()).run_date
    first = EARLIEST_EVENT.isoformat()
    outside = parsed < F.lit(first).cast("timestamp_ntz")
    last = "any later time"  # a transform run without a run date (tests of logic alone)
    if run_date is not None:
        last = (run_date + SKEW).isoformat()
        end = (run_date + SKEW + timedelta(days=1)).isoformat()
        outside = outside | (parsed >= F.lit(end).cast("timestamp_ntz"))
    return (
        F.coalesce(outside, F.lit(False)),
        "invalid_timestamp",
        F.concat(F.lit(f"{name} lies outside {first} .. {last} (the run's date + 1 day): "), raw),
    )


def list_folder(spark: SparkSession, path: str) -> list[str] | None:
    """The entries of a folder (local or ``s3://``), or None when it does not exist."""
    jvm: Any = spark._jvm
    jvm_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = jvm_path.getFileSystem(spark._jsc.hadoopConfiguration())
    if not fs.exists(jvm_path):
        return None
    return [str(status.getPath().toString()) for status in fs.listStatus(jvm_path)]


def replace_file(spark: SparkSession, folder: str, name: str, text: str) -> None:
    """``folder`` (local or ``s3://``) emptied, then holding one UTF-8 file ``name``."""
    jvm: Any = spark._jvm
    jvm_folder = jvm.org.apache.hadoop.fs.Path(folder)
    fs = jvm_folder.getFileSystem(spark._jsc.hadoopConfiguration())
    fs.delete(jvm_folder, True)
    stream = fs.create(jvm.org.apache.hadoop.fs.Path(jvm_folder, name), True)
    try:
        stream.write(bytearray(text.encode() + b"\n"))
    finally:
        stream.close()


def read_lines(spark: SparkSession, path: str, stream: str) -> DataFrame:
    """Every line under ``path`` (files of any name, nested), with its file name
    and, for lines the shipper sent, its place in the source file.

    Only ``\\n`` ends a line, as for the shipper that counted them. A stream with no input
    for the run is not an error: it yields no rows.
    """
    if list_folder(spark, path) is None:
        return spark.createDataFrame([], LINES_SCHEMA)
    records = spark.read.option("recursiveFileLookup", "true").option("lineSep", "\n").text(path)
    named = records.withColumn("source_file", F.element_at(F.split(F.input_file_name(), "/"), -1))
    return unwrap(named, stream)


def unwrap(records: DataFrame, stream: str) -> DataFrame:
    """The lines of each record with the place of each: (host, stream, file fingerprint,
    the line's byte offset in its file), hashed into ``position_id``, and the log format its
    flow named (``log_format``). A line that came without the shipper's envelope (the AWS
    Kinesis Agent's) is its own record, with no place and no format.

    The offset is the record's (from its header) plus the bytes of the lines before it in
    the record (a record's lines are contiguous in the file), so it does not depend on
    where the shipper cut its records: a re-read after a lost checkpoint, cut elsewhere,
    carries the same places, and its resends collapse as duplicates.
    """
    names = ["_header", "_host", "_fingerprint", "_offset", "_parts", "_format"]
    # The header is matched in the record's head: a regex function copies the whole text
    # it is given (a record holds up to a megabyte of lines) before it looks at it.
    head = F.substring("value", 1, HEADER_CHARS)
    enveloped = records.select(
        "value",
        "source_file",
        *[F.regexp_extract(head, ENVELOPE, group).alias(n) for group, n in enumerate(names)],
        F.monotonically_increasing_id().alias("_record"),
    )
    body = F.expr("substring(value, length(_header) + 1)")
    lines = (
        F.when(F.col("_header") == "", F.array("value"))
        .when(F.col("_parts") == "1", F.array(body))  # a line holding the separator
        .otherwise(F.split(body, SEPARATOR, -1))
    )
    exploded = enveloped.select("*", F.posexplode(lines).alias("_index", "_line"))
    # Each line and its separator (the newline it had in the file; a \r stays in the line).
    before = (
        Window.partitionBy("_record").orderBy("_index").rowsBetween(Window.unboundedPreceding, -1)
    )
    offset = F.col("_offset").cast("long") + F.coalesce(
        F.sum(F.octet_length("_line") + 1).over(before), F.lit(0)
    )
    place = F.concat_ws("|", "_host", F.lit(stream), "_fingerprint", offset)
    return exploded.select(
        # Lines written on Windows or by some appenders end in \r\n; the \r is not data.
        F.when(F.col("_line").endswith("\r"), F.expr("left(_line, char_length(_line) - 1)"))
        .otherwise(F.col("_line"))
        .alias("value"),
        "source_file",
        F.when(F.col("_header") != "", F.sha2(place, 256)).alias("position_id"),
        F.nullif(F.col("_format"), F.lit("")).alias("log_format"),
    )


def with_first_failure(frame: DataFrame, *checks: tuple[Column, str, Column | str]) -> DataFrame:
    """``frame`` with the ``reason`` and ``detail`` of each row's first failing check, or
    nulls when the line is valid.

    Each check is ``(failed, reason, detail)``; order matters: an undecodable line is
    reported as such, not as the field that happens to break first. The checks run once per
    row, up to the first that fails: its number gets a projection of its own, which reason
    and detail both read. (Two chains of conditions, one for each, ran every check of a
    valid row twice.)
    """
    failing: Column = F.lit(None).cast("int")
    for number, (failed, _, _) in reversed(list(enumerate(checks))):
        failing = F.when(failed, F.lit(number)).otherwise(failing)
    numbered = frame.withColumn("_failed_check", failing)
    reason: Column = F.lit(None).cast("string")
    detail: Column = F.lit(None).cast("string")
    for number, (_, name, text) in enumerate(checks):
        failed_here = F.col("_failed_check") == number
        reason = F.when(failed_here, F.lit(name)).otherwise(reason)
        detail = F.when(failed_here, text if isinstance(text, Column) else F.lit(text)).otherwise(
            detail
        )
    return numbered.select("*", reason.alias("reason"), detail.alias("detail")).drop(
        "_failed_check"
    )


def line_checks() -> tuple[tuple[Column, str, str], ...]:
    """The checks of every stream's raw line, before its format is read, in this order: an
    empty line (the shipper sends it as it sends any other: looking for them cost it a full
    pass over every buffer, so each is counted here), then one that is not UTF-8, then one
    holding control bytes."""
    return (
        (F.col("value") == "", "empty_line", "an empty line holds no event"),
        (
            F.col("value").contains(REPLACEMENT_CHAR),
            "invalid_encoding",
            "line is not valid UTF-8; re-encode the log as UTF-8",
        ),
        (
            F.col("value").rlike("[\\x00-\\x08\\x0e-\\x1f]"),
            "binary_content",
            "line holds control bytes (binary data written into a text log)",
        ),
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


# The longest string every warehouse loads: Redshift's varchar(65535), counted in bytes.
# One limit on every engine keeps the marts identical; the line itself is kept in quarantine.
MAX_FIELD_BYTES = 65535


def field_length_check(columns: list[str]) -> tuple[Column, str, Column]:
    """Fails when a field is longer than a warehouse column holds (Redshift's COPY would
    reject the whole file it came in); the detail names the first such field."""
    too_long = [F.when(F.octet_length(F.col(c)) > MAX_FIELD_BYTES, F.lit(c)) for c in columns]
    first_too_long = F.coalesce(*too_long)
    return (
        first_too_long.isNotNull(),
        "field_too_long",
        F.concat(first_too_long, F.lit(f" is longer than {MAX_FIELD_BYTES} bytes")),
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

    Rows sharing an event id and the same raw line are one event sent more than once: the
    extra copies are counted duplicates. A row whose event id arrived with another raw line
    is not a copy of anything: it goes to quarantine as ``id_conflict``. The row with the
    smallest raw line is kept, so the choice does not depend on file order and a re-run
    picks the same row.

    Each row's fate is decided once and cached, and one aggregation counts the fates: the
    counts cost a single pass, and the writes that follow read the cached rows.
    """
    valid = F.col("reason").isNull()
    # One pass over the parsed rows, no split and union: each branch of a union would parse
    # every line again (and the filter on `reason` repeats all the checks), which made the
    # de-duplication cost ten times the parse. Rows already failing a check rank apart.
    order = Window.partitionBy(key, valid).orderBy("value", "source_file")
    kept = F.first("value").over(order)
    conflict = valid & (F.col("value") != kept)
    rows = parsed.select(
        *[c for c in parsed.columns if c not in ("reason", "detail")],
        F.when(conflict, F.lit("id_conflict")).otherwise(F.col("reason")).alias("reason"),
        F.when(conflict, F.concat(
            F.lit(f"{key} "), F.col(key), F.lit(" arrived with another payload too; kept: "),
            F.substring(kept, 1, 300),
        )).otherwise(F.col("detail")).alias("detail"),
        F.when(~valid, F.col("reason")).when(conflict, F.lit("id_conflict"))
        .when(F.row_number().over(order) == 1, F.lit(KEPT))
        .otherwise(F.lit(DUPLICATE)).alias("_fate"),
    ).cache()  # fmt: skip
    fates = {row["_fate"]: row["count"] for row in rows.groupBy("_fate").count().collect()}
    unique = rows.where(F.col("_fate") == KEPT).drop("reason", "detail", "_fate")
    quarantine = rows.where(F.col("reason").isNotNull()).select(
        F.lit(stream).alias("stream"),
        "reason",
        "detail",
        "source_file",
        F.col("value").alias("raw_line"),
    )
    return unique, quarantine, stats_of(fates)


# A valid row's fate: kept, or dropped as a copy of the kept row. Others' is their reason.
KEPT = "_kept"
DUPLICATE = "_duplicate"


def stats_of(fates: dict[str, int]) -> StreamStats:
    """The stream's counts from the number of rows of each fate."""
    reasons = {fate: count for fate, count in fates.items() if fate not in (KEPT, DUPLICATE)}
    return StreamStats(
        read=sum(fates.values()),
        processed=fates.get(KEPT, 0),
        duplicates=fates.get(DUPLICATE, 0),
        quarantined=reasons,
    )
