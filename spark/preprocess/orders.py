"""orders: JSON lines, one per order event, order lines nested (see docs/data-contract.md).

Written out flat, as two datasets (``orders`` and ``order_lines``), so every warehouse can
load them with a plain columnar COPY.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

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

EVENT_TYPES = ["placed", "paid", "shipped", "cancelled", "refunded"]
LINE_SCHEMA = T.StructType(
    [
        T.StructField("line_number", T.IntegerType()),
        T.StructField("product_id", T.StringType()),
        T.StructField("quantity", T.IntegerType()),
        T.StructField("unit_price", T.DecimalType(12, 2)),
    ]
)
EVENT_SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.StringType()),
        T.StructField("event_type", T.StringType()),
        T.StructField("event_at", T.StringType()),
        T.StructField("order_id", T.StringType()),
        T.StructField("customer_id", T.StringType()),
        T.StructField("currency", T.StringType()),
        T.StructField("lines", T.ArrayType(LINE_SCHEMA)),
        T.StructField("_corrupt", T.StringType()),
    ]
)
# The currencies the contract accepts: those dbt_project/seeds/exchange_rates.csv has rates
# for (a test keeps the two equal), so every order converts to US dollars.
SUPPORTED_CURRENCIES = ("EUR", "GBP", "USD")
REQUIRED = ["event_id", "event_type", "event_at", "order_id", "customer_id", "currency"]


def _bad_line(line: F.Column) -> F.Column:
    quantity = F.coalesce(line["quantity"], F.lit(0))
    price = F.coalesce(line["unit_price"], F.lit(-1))
    return (
        line["product_id"].isNull() | line["line_number"].isNull() | (quantity <= 0) | (price < 0)
    )


def parse(lines: DataFrame, context: RunContext | None = None) -> DataFrame:
    """Parse and check each line; ``reason`` is null for a valid event."""
    parsed = lines.withColumn(
        "_event",
        F.from_json(
            "value", EVENT_SCHEMA, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"}
        ),
    ).select("value", "source_file", "_event.*")
    parsed = parsed.withColumn("event_at_utc", parse_utc(F.col("event_at"))).withColumn(
        "line_product_id",  # the longest of the event's lines, for the length check
        F.aggregate(
            F.coalesce("lines", F.array()),
            F.lit(""),
            lambda longest, line: F.when(
                F.octet_length(line["product_id"]) > F.octet_length(longest), line["product_id"]
            ).otherwise(longest),
        ),
    )
    return with_first_failure(
        parsed,
        *line_checks(),
        (
            F.col("_corrupt").isNotNull() | ~F.trim("value").startswith("{"),
            "unparseable",
            "not a complete JSON object (truncated line or wrong types)",
        ),
        missing_check(REQUIRED),
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
            ~F.col("currency").isin(*SUPPORTED_CURRENCIES),
            "invalid_value",
            F.concat(
                F.lit(f"currency must be one the exchange rates cover {SUPPORTED_CURRENCIES}: "),
                F.col("currency"),
            ),
        ),
        (
            (F.col("event_type") == "placed") & (F.coalesce(F.size("lines"), F.lit(0)) <= 0),
            "invalid_value",
            "a placed event needs at least one order line",
        ),
        (
            F.coalesce(F.exists("lines", _bad_line), F.lit(False)),
            "invalid_value",
            "an order line lacks product_id/line_number or has quantity <= 0 or price < 0",
        ),
        field_length_check(["event_id", "order_id", "customer_id", "line_product_id"]),
    )


def transform(lines: DataFrame, context: RunContext | None = None) -> StreamResult:
    unique, quarantine, stats = split_and_dedupe("orders", parse(lines, context))
    orders = unique.select(
        "event_id",
        "event_type",
        F.col("event_at_utc").alias("event_at"),
        "order_id",
        "customer_id",
        "currency",
        F.when(F.col("lines").isNull(), 0).otherwise(F.size("lines")).alias("line_count"),
        "source_file",
    )
    order_lines = unique.select("event_id", "order_id", F.explode("lines").alias("line")).select(
        "event_id",
        "order_id",
        "line.line_number",
        "line.product_id",
        "line.quantity",
        "line.unit_price",
    )
    return StreamResult("orders", {"orders": orders, "order_lines": order_lines}, quarantine, stats)
