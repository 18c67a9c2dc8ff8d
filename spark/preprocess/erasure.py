"""The erasure register as the Spark job applies it: lines and sessions of erased customers
never reach the processed zone again, whatever a run reads (a re-run of a past date, a
resend of the shop's logs). The rules are lake/erasure.py's, spelled in Spark SQL so no
line leaves the JVM; tests/spark/test_erasure.py holds the two spellings to one answer.
"""

from __future__ import annotations

from dataclasses import replace

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lake import layout
from lake.erasure import (
    DROP_LINE,
    REDACTED,
    TOKEN_CHARS,
    TOMBSTONE_CUSTOMER_ID,
    TOMBSTONE_VISITOR_ID,
    WEB_IDENTIFYING_COLUMNS,
    Erased,
    Register,
    register_of,
)
from preprocess.common import StreamResult, list_folder

# Counted among a stream's set-aside lines (so read = processed + quarantined + duplicates
# still holds), but never written to the quarantine zone.
ERASED_REASON = "erased_customer"


def read_register(spark: SparkSession, lake: str | None) -> Register:
    """Every erased customer's hashes from ``<lake>/erasure/register/``; empty without."""
    if not lake:
        return Register()
    folder = f"{lake.rstrip('/')}/{layout.ERASURE_REGISTER}"
    if not list_folder(spark, folder):
        return Register()
    texts = spark.read.option("wholetext", "true").text(folder).collect()
    return register_of(Erased.from_json(row.value) for row in texts)


def _matched(text: Column, hashes: frozenset[str]) -> Column:
    """The tokens of ``text`` whose hash is registered (lake.erasure.matched_tokens)."""
    registered = F.array(*[F.lit(h) for h in sorted(hashes)])
    tokens = F.regexp_extract_all(F.coalesce(text, F.lit("")), F.lit(f"[{TOKEN_CHARS}]+"), 0)
    return F.filter(tokens, lambda t: F.array_contains(registered, F.sha2(F.lower(t), 256)))


def _replaced(text: Column, tokens: Column, replacement: str) -> Column:
    """lake.erasure.replace_tokens: whole tokens only, quoted (\\Q…\\E) as Java reads them."""
    return F.aggregate(
        tokens,
        text,
        lambda acc, t: F.regexp_replace(
            acc,
            F.concat(F.lit(f"(?<![{TOKEN_CHARS}])\\Q"), t, F.lit(f"\\E(?![{TOKEN_CHARS}])")),
            F.lit(replacement),
        ),
    )


def erase_lines(lines: DataFrame, stream: str, register: Register) -> tuple[DataFrame, int]:
    """The stream's lines without the erased (lake.erasure.scrub_line), and how many went."""
    if not register.person:
        return lines, 0
    marked = lines.withColumn("_erased", _matched(F.col("value"), register.person)).cache()
    if DROP_LINE.get(stream, True):
        gone = marked.where(F.size("_erased") > 0).count()
        return marked.where(F.size("_erased") == 0).drop("_erased"), gone
    replacement = TOMBSTONE_CUSTOMER_ID if stream == "orders" else REDACTED
    rewritten = marked.withColumn("value", _replaced(F.col("value"), F.col("_erased"), replacement))
    return rewritten.drop("_erased"), 0


def with_erased_counted(result: StreamResult, erased: int) -> StreamResult:
    if not erased:
        return result
    stats = result.stats
    quarantined = {**stats.quarantined, ERASED_REASON: erased}
    return replace(result, stats=replace(stats, read=stats.read + erased, quarantined=quarantined))


def erase_sessions(result: StreamResult, register: Register) -> StreamResult:
    """Web sessions tied to an erased customer's order (lake.erasure.erased_sessions) keep
    their requests without the visitor's identity; the visitor's open session ends."""
    if result.stream != "web" or not register.orders:
        return result
    requests = result.datasets["web_requests"]
    tied = (
        requests.where(F.size(_matched(F.col("path"), register.orders)) > 0)
        .select("session_id", "visitor_id")
        .distinct()
        .cache()
    )
    flag = tied.select("session_id", F.lit(True).alias("_tied"))
    joined = requests.join(F.broadcast(flag), "session_id", "left")
    tied_row = F.coalesce(F.col("_tied"), F.lit(False))
    blanked = {
        c: F.when(tied_row, F.lit(None)).otherwise(F.col(c)) for c in WEB_IDENTIFYING_COLUMNS
    }
    blanked["visitor_id"] = F.when(tied_row, F.lit(TOMBSTONE_VISITOR_ID)).otherwise("visitor_id")
    scrubbed = joined.select(
        *[blanked[c].cast(requests.schema[c].dataType).alias(c) if c in blanked else c
          for c in requests.columns]
    )  # fmt: skip
    state = {
        name: frame.join(F.broadcast(tied.select("visitor_id")), "visitor_id", "left_anti").select(
            *frame.columns
        )
        for name, frame in result.state.items()
    }
    return replace(result, datasets={**result.datasets, "web_requests": scrubbed}, state=state)
