"""customers: CSV lines, one per sign-up or profile change (see docs/data-contract.md)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from preprocess.common import (
    RunContext,
    StreamResult,
    field_length_check,
    line_checks,
    missing_check,
    parse_utc,
    split_and_dedupe,
    time_window_check,
    with_first_failure,
)

FIELDS = [
    "event_id",
    "event_type",
    "event_at",
    "customer_id",
    "email",
    "first_name",
    "last_name",
    "country_code",
    "city",
]
EVENT_TYPES = ["signup", "profile_update"]
# One CSV field after the line's start or a comma: a double-quoted field (RFC 4180, "" for
# a quote, as Python's csv module writes) or anything up to the next comma. Possessive
# quantifiers only: Java's regex engine recurses once per character for greedy groups, and
# one long field would overflow the stack and fail the whole run.
CSV_FIELD = r'(?:^|,)("(?:[^"]++|"")*+"|[^,]*+)'


def _unquote(field: str) -> F.Column:
    value = F.regexp_replace(F.regexp_replace(F.col(field), r'^"|"$', ""), '""', '"')
    return F.nullif(F.trim(value), F.lit(""))


def parse(lines: DataFrame, context: RunContext | None = None) -> DataFrame:
    """Split, type and check each line; ``reason`` is null for a valid line."""
    split = lines.withColumn("_fields", F.regexp_extract_all("value", F.lit(CSV_FIELD), 1))
    for position, name in enumerate(FIELDS):
        split = split.withColumn(f"_{name}", F.get(F.col("_fields"), position))
    typed = split.select(
        "value",
        "source_file",
        F.size("_fields").alias("_field_count"),
        *[_unquote(f"_{name}").alias(name) for name in FIELDS],
    ).withColumn("event_at_utc", parse_utc(F.col("event_at")))
    return with_first_failure(
        typed,
        *line_checks(),
        (
            F.col("_field_count") != len(FIELDS),
            "wrong_column_count",
            F.format_string(f"expected {len(FIELDS)} columns, found %d", F.col("_field_count")),
        ),
        missing_check(["event_id", "event_type", "event_at", "customer_id"]),
        (
            F.col("event_at_utc").isNull(),
            "invalid_timestamp",
            F.concat(F.lit("event_at is not ISO-8601: "), F.col("event_at")),
        ),
        time_window_check(F.col("event_at_utc"), F.col("event_at"), "event_at", context),
        (
            ~F.col("event_type").isin(EVENT_TYPES),
            "invalid_value",
            F.concat(F.lit(f"event_type must be one of {EVENT_TYPES}: "), F.col("event_type")),
        ),
        (
            ~F.coalesce(F.col("country_code").rlike("^[A-Z]{2}$"), F.lit(True)),
            "invalid_value",
            F.concat(F.lit("country_code must be ISO 3166 alpha-2: "), F.col("country_code")),
        ),
        field_length_check(FIELDS),
    )


def transform(lines: DataFrame, context: RunContext | None = None) -> StreamResult:
    unique, quarantine, stats = split_and_dedupe("customers", parse(lines, context))
    customers = unique.select(
        "event_id",
        "event_type",
        F.col("event_at_utc").alias("event_at"),
        "customer_id",
        F.lower("email").alias("email"),
        "first_name",
        "last_name",
        "country_code",
        "city",
        "source_file",
    )
    return StreamResult("customers", {"customers": customers}, quarantine, stats)
