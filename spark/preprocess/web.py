"""web: the access log in the combined log format that nginx and Apache write.

    $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
    "$http_referer" "$http_user_agent"

The common log format (no referer / user agent) and trailing extra fields (nginx formats
that append ``"$http_x_forwarded_for"`` and timings) are accepted too, since real servers
write them. Requests are flagged as bots by user agent and grouped into sessions.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from preprocess.common import (
    RunContext,
    StreamResult,
    binary_check,
    encoding_check,
    field_length_check,
    split_and_dedupe,
    time_window_check,
    with_first_failure,
)

# Possessive quantifiers only: a greedy group recurses once per character in Java's regex
# engine, and one long user agent or URL would overflow the stack and fail the whole run.
QUOTED = r'"((?:[^"\\]++|\\.)*+)"'
COMBINED = (
    r"^(\S+) (\S+) (\S+) \[([^\]]+)\] " + QUOTED + r" (\d{3}) (\d+|-)"
    r"(?: " + QUOTED + r" " + QUOTED + r")?(?:\s.*)?$"
)
GROUPS = {
    "client_ip": 1,
    "remote_user": 3,
    "time_local": 4,
    "request": 5,
    "status": 6,
    "bytes_sent": 7,
    "referrer": 8,
    "user_agent": 9,
}
# One regex pass yields every field: see `with_groups`.
FIELD_SEP = "\u0000"
REQUEST = r"^([A-Z]+) (\S+)(?: (HTTP/[0-9.]+))?$"
REQUEST_GROUPS = {"method": 1, "path": 2, "protocol": 3}
# nginx's $request_id appended to the line (the `shoplogs` log_format, docs/data-contract.md).
REQUEST_ID = r" request_id=([0-9a-f]{32})$"
CLF_TIME = "dd/MMM/yyyy:HH:mm:ss Z"
# A bot's user agent names a crawler, a script's HTTP library or a monitor, or is empty.
BOT_WORDS = ("bot", "crawl", "spider", "slurp", "curl", "wget", "python-requests",
             "python-urllib", "go-http-client", "httpclient", "scrapy", "headless",
             "facebookexternalhit", "monitor", "uptime")  # fmt: skip
# A path naming one of these files (at its end, or before a query string) is no page view.
ASSET_EXTENSIONS = ("css", "js", "mjs", "map", "png", "jpg", "jpeg", "gif", "svg", "webp",
                    "ico", "woff", "woff2", "ttf", "eot")  # fmt: skip
SESSION_TIMEOUT_SECONDS = 30 * 60
# How long an idle session is carried from run to run: long enough for a visit that spans
# the midnight between two runs, short enough that the carried state stays small.
STATE_RETENTION = "1 DAY"


# The string columns web_requests loads into the warehouse.
LOADED_STRINGS = [
    "event_id",
    "client_ip",
    "remote_user",
    "method",
    "path",
    "protocol",
    "referrer",
    "user_agent",
]


def _dash_to_null(column: Column) -> Column:
    return F.when((column == "-") | (column == ""), None).otherwise(column)


def with_groups(
    frame: DataFrame, text: str, pattern: str, groups: dict[str, int], prefix: str = ""
) -> DataFrame:
    """``frame`` with each named group of ``pattern`` (anchored at both ends) in column
    ``text`` (blank when the text does not match), and ``_matches``, whether it did; each
    new column's name starts with ``prefix``.

    The regex runs once, not once per group (``regexp_extract``) plus once to test the
    match: the matched text is rewritten as its groups, each after a NUL, and split there;
    a text that does not match is left whole, one piece. Only a NUL in the text could fake
    a match, and a line holding one is binary content, quarantined before any other check.
    The pieces get their own projection, which Spark keeps apart from the one reading them
    (it would otherwise inline the regex into every field).
    """
    rewritten = "".join(f"{FIELD_SEP}${group}" for group in groups.values())
    pieces = F.split(F.regexp_replace(text, pattern, rewritten), FIELD_SEP, -1)
    split = frame.withColumn("_pieces", pieces)
    matches = F.size("_pieces") == len(groups) + 1
    return split.select(
        "*",
        matches.alias(f"{prefix}_matches"),
        *[
            F.when(matches, F.get("_pieces", place)).otherwise(F.lit("")).alias(prefix + name)
            for place, name in enumerate(groups, start=1)
        ],
    ).drop("_pieces")


def parse(lines: DataFrame, context: RunContext | None = None) -> DataFrame:
    """Parse and check each line; ``reason`` is null for a valid request."""
    fields = with_groups(lines, "value", COMBINED, GROUPS)
    parts = with_groups(fields, "request", REQUEST, REQUEST_GROUPS, prefix="_request_")
    parsed = parts.select(
        "value",
        "source_file",
        "_matches",
        "_request__matches",
        "client_ip",
        _dash_to_null(F.col("remote_user")).alias("remote_user"),
        "time_local",
        "request",
        F.to_timestamp("time_local", CLF_TIME).cast("timestamp_ntz").alias("request_at"),
        F.col("_request_method").alias("method"),
        F.col("_request_path").alias("path"),
        _dash_to_null(F.col("_request_protocol")).alias("protocol"),
        F.col("status").cast("int").alias("status"),
        F.when(F.col("bytes_sent") == "-", 0)
        .otherwise(F.col("bytes_sent").cast("long"))
        .alias("bytes_sent"),
        _dash_to_null(F.col("referrer")).alias("referrer"),
        _dash_to_null(F.col("user_agent")).alias("user_agent"),
        # An id the server wrote into the line wins; else the line's place in its file,
        # from the shipper; else (a line sent without one) the line's own content.
        F.coalesce(
            F.nullif(F.regexp_extract("value", REQUEST_ID, 1), F.lit("")),
            F.col("position_id"),
            F.sha2(F.col("value"), 256),
        ).alias("event_id"),
    )
    checked = with_first_failure(
        parsed,
        encoding_check(),
        binary_check(),
        (
            ~F.col("_matches"),
            "unparseable",
            "not an access-log line in the combined or common log format",
        ),
        (
            F.col("request_at").isNull(),
            "invalid_timestamp",
            F.concat(F.lit("time is not dd/Mon/yyyy:HH:mm:ss +zzzz: "), F.col("time_local")),
        ),
        time_window_check(F.col("request_at"), F.col("time_local"), "time", context),
        (
            ~F.col("_request__matches"),
            "malformed_request",
            F.concat(F.lit('request is not "METHOD target HTTP/x": '), F.col("request")),
        ),
        field_length_check(LOADED_STRINGS),
    )
    return checked.drop("_request__matches")


# Both tests below are plain substring tests on the lower-cased text. One case-insensitive
# regex alternation, which Java's engine tries at every character, cost 7 s a million lines.


def is_bot(user_agent: Column) -> Column:
    agent = F.lower(F.coalesce(user_agent, F.lit("")))
    return reduce(or_, [agent.contains(word) for word in BOT_WORDS], agent.isin("", "-"))


def is_asset(path: Column) -> Column:
    """The path names a file of an asset type, at its end or before a query string."""
    lowered = F.lower(path)
    return reduce(
        or_,
        [lowered.endswith(f".{ext}") | lowered.contains(f".{ext}?") for ext in ASSET_EXTENSIONS],
    )


def with_sessions(requests: DataFrame, open_sessions: DataFrame | None = None) -> DataFrame:
    """Group a visitor's requests into sessions that end after 30 minutes of inactivity.

    A visitor is a client address plus user agent. The session id is derived from the
    visitor and the session's first request, so re-running gives the same ids. A session
    an earlier run left (``open_sessions``) goes on when the visitor's next request comes
    within 30 minutes of its last one, and a late request that falls inside it (or within 30
    minutes of either end) joins it: same id, so the warehouse sees one session, never a
    second one overlapping it.
    """
    visitor = F.sha2(F.concat_ws("|", "client_ip", F.coalesce("user_agent", F.lit(""))), 256)
    rows = (
        requests.withColumn("visitor_id", visitor)
        .withColumn("_start", F.lit(None).cast("timestamp_ntz"))
        .withColumn("_end", F.col("request_at"))
    )
    if open_sessions is not None:
        # Each carried session stands in as one row spanning it, carrying its id's start.
        anchors = open_sessions.select(
            "visitor_id",
            F.col("session_start").alias("request_at"),
            F.col("session_start").alias("_start"),
            F.col("last_request_at").alias("_end"),
        )
        rows = rows.unionByName(anchors, allowMissingColumns=True)
    by_visitor = Window.partitionBy("visitor_id").orderBy("request_at", "event_id")
    # The gap is measured from the latest end seen so far, so a row inside a carried
    # session's span never opens a new session.
    reached = F.max("_end").over(by_visitor.rowsBetween(Window.unboundedPreceding, -1))
    gap = F.col("request_at").cast("timestamp").cast("long") - reached.cast("timestamp").cast(
        "long"
    )
    starts = rows.withColumn(
        "_new", F.when(reached.isNull() | (gap > SESSION_TIMEOUT_SECONDS), 1).otherwise(0)
    ).withColumn("_seq", F.sum("_new").over(by_visitor))
    session = Window.partitionBy("visitor_id", "_seq")
    # A carried session keeps its id even when a late request lands before its start.
    first_seen = F.coalesce(F.min("_start").over(session), F.min("request_at").over(session))
    session_id = F.sha2(F.concat_ws("|", "visitor_id", first_seen.cast("string")), 256)
    return (
        starts.withColumn("session_id", session_id)
        .withColumn("_session_start", first_seen)
        .where(F.col("event_id").isNotNull())  # the anchors were no requests of this run
        .drop("_new", "_seq", "_start", "_end")
    )


def still_open(sessions: DataFrame, open_sessions: DataFrame | None) -> DataFrame:
    """The visitors' sessions for the next run to continue or a late request to join: this
    run's and the ones carried on from earlier runs, every one of them (a late request may
    fall in any), until it ended a day before the latest request."""
    mine = sessions.groupBy("visitor_id", "session_id").agg(
        F.min("_session_start").alias("session_start"),
        F.max("request_at").alias("last_request_at"),
    )
    candidates = mine.select("visitor_id", "session_start", "last_request_at")
    if open_sessions is not None:
        candidates = candidates.unionByName(
            open_sessions.select("visitor_id", "session_start", "last_request_at")
        )
    # A carried session this run continued is in both: keep its latest end.
    merged = candidates.groupBy("visitor_id", "session_start").agg(
        F.max("last_request_at").alias("last_request_at")
    )
    newest = merged.agg(F.max("last_request_at").alias("_newest"))
    return (
        merged.crossJoin(newest)
        .where(F.col("last_request_at") >= F.col("_newest") - F.expr(f"INTERVAL {STATE_RETENTION}"))
        .select("visitor_id", "session_start", "last_request_at")
    )


def transform(lines: DataFrame, context: RunContext | None = None) -> StreamResult:
    unique, quarantine, stats = split_and_dedupe("web", parse(lines, context))
    requests = unique.select(
        "event_id",
        "request_at",
        "client_ip",
        "remote_user",
        "method",
        "path",
        "protocol",
        "status",
        "bytes_sent",
        "referrer",
        "user_agent",
        is_bot(F.col("user_agent")).alias("is_bot"),
        (
            F.col("method").isin("GET", "HEAD")
            & F.col("status").between(200, 399)
            & ~is_asset(F.col("path"))
        ).alias("is_page_view"),
        "source_file",
    )
    open_sessions = (context or RunContext()).open_sessions
    sessions = with_sessions(requests, open_sessions).cache()
    return StreamResult(
        "web",
        {"web_requests": sessions.drop("_session_start")},
        quarantine,
        stats,
        state={"web_sessions": still_open(sessions, open_sessions)},
    )
