"""web: the access log as the web server writes it, in its configured format.

The format is a setting (``--web-format``; ``preprocess/formats.py`` compiles it): an nginx
``log_format`` or Apache ``LogFormat`` string, a shortcut (``combined``, the default, which
also reads the common log format and trailing extra fields), or JSON. Known fields become
typed columns; the others stay in the raw line. Requests are flagged as bots by user agent
and grouped into sessions.
"""

from __future__ import annotations

from functools import reduce
from operator import or_
from urllib.parse import unquote

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from preprocess import formats
from preprocess.common import (
    RunContext,
    StreamResult,
    field_length_check,
    line_checks,
    parse_utc,
    split_and_dedupe,
    time_window_check,
    with_first_failure,
)
from preprocess.formats import WebFormat
from preprocess.pseudonym import pseudonymize_requests

# One regex pass yields every field: see `with_groups`.
FIELD_SEP = "\u0000"
# Method first, protocol last, the target what lies between (a broken template's
# `GET /a.js type= HTTP/1.1` is a real request). The lazy target is a single-character
# repetition, which Java's regex engine runs as a loop: no recursion on a long target.
REQUEST = r"^([A-Z]++) (.+?)(?: (HTTP/[0-9.]++))?$"
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
    "virtual_host",
    "request_id",
    "forwarded_for",
]
# Columns added to web_requests after its first release, written after all the others
# (Redshift's Parquet COPY maps by position) and null where the format has no such field.
ADDED_COLUMNS = [
    "virtual_host",
    "request_id",
    "forwarded_for",
    "request_time_us",
    "upstream_time_us",
]
# Every field the formats know, read as text first.
TEXT_FIELDS = sorted(
    set(formats.NGINX_VARIABLES.values()) | set(formats.APACHE_DIRECTIVES.values())
    | set(formats.APACHE_HEADERS.values())
)  # fmt: skip
AGENT_MARKER = "_agent_marker"
# The most log formats one run's web lines are parsed in (flows naming their logFormat):
# the lines of any further ones, which only a hostile or broken sender makes, are quarantined.
MAX_FORMATS = 16


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


def with_fields(lines: DataFrame, log_format: WebFormat) -> DataFrame:
    """``lines`` with ``_matches`` (the line has the format's shape), one text column per
    known field (null when the format has no such field) and ``_has_agent`` (the line
    carries a user agent field; null when the format has none)."""
    if log_format.is_json:
        schema = T.StructType(
            [T.StructField(key, T.StringType()) for key in log_format.json_keys.values()]
            + [T.StructField("_corrupt", T.StringType())]
        )
        options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"}
        parsed = lines.withColumn("_json", F.from_json("value", schema, options))
        matches = F.col("_json").isNotNull() & F.col("_json._corrupt").isNull()
        found = {name: F.col("_json").getField(key) for name, key in log_format.json_keys.items()}
        has_agent = found["user_agent"].isNotNull() if "user_agent" in found else None
        frame = parsed.withColumn("_matches", matches)
    else:
        groups = dict(log_format.groups)
        if log_format.agent_marker is not None:
            groups[AGENT_MARKER] = log_format.agent_marker
        frame = with_groups(lines, "value", log_format.pattern, groups, prefix="_f_")
        frame = frame.withColumnRenamed("_f__matches", "_matches")
        found = {name: F.col("_f_" + name) for name in log_format.groups}
        has_agent = None
        if "user_agent" in found:
            has_agent = F.lit(True)
        if log_format.agent_marker is not None:
            has_agent = F.col("_f_" + AGENT_MARKER) != ""
    texts = [found.get(name, F.lit(None).cast("string")).alias(name) for name in TEXT_FIELDS]
    agent = F.lit(None).cast("boolean") if has_agent is None else has_agent
    return frame.select(
        "value", "source_file", "position_id", "_matches", *texts, agent.alias("_has_agent")
    )


def shipped_formats(lines: DataFrame) -> list[str | None]:
    """The log formats the lines' shippers named (encoded as they travel; None for lines
    that name none), the most frequent first, at most ``MAX_FORMATS`` + 1: one small
    aggregation, which only the lines' own formats make necessary."""
    if "log_format" not in lines.columns:
        return [None]
    counted = lines.groupBy("log_format").count()
    top = counted.orderBy(F.desc("count"), F.asc_nulls_first("log_format"))
    return [row["log_format"] for row in top.limit(MAX_FORMATS + 2).collect()]


def _branch(lines: DataFrame, web_format: WebFormat, where: str, error: str = "") -> DataFrame:
    """``with_fields`` of lines in one format, with the detail of a line not in it and, for
    a format that does not compile, why (``_format_error``)."""
    detail = f"not a line of the web format {web_format.source[:200]!r} (check {where})"
    return with_fields(lines, web_format).select(
        "*",
        F.lit(detail).alias("_format_detail"),
        F.lit(error or None).cast("string").alias("_format_error"),
    )


def with_formats(lines: DataFrame, default: WebFormat) -> DataFrame:
    """``with_fields`` of each line in its own format: the one its flow named in agent.json
    (it travels in the record's header), else the stream's setting (``default``). A named
    format that does not compile puts its lines in quarantine, naming it; each format parses
    only its own lines, and a run of one format (the usual) reads its lines in one pass."""
    found = shipped_formats(lines)
    setting = "the stream's web format setting (--web-format, SHOPLOGS_WEB_FORMAT)"
    if found == [None]:
        return _branch(lines, default, setting)
    named = [token for token in found if token is not None][:MAX_FORMATS]
    token = F.col("log_format")
    branches = []
    if None in found:
        branches.append(_branch(lines.where(token.isNull()), default, setting))
    for encoded in named:
        text = unquote(encoded)
        mine = lines.where(token == encoded) if len(found) > 1 else lines
        try:
            web_format = formats.compile_format(text)
        except Exception as exc:  # any error: a format from the data must not stop the run
            error = f"the log format its shipper named does not compile: {exc}"[:600]
            error += "; fix logFormat in agent.json"
            branches.append(_branch(mine, default, setting, error))
            continue
        branches.append(_branch(mine, web_format, "the flow's logFormat in agent.json"))
    if len(found) > MAX_FORMATS + (None in found):
        error = f"its shipper named one of more than {MAX_FORMATS} log formats in this run"
        rest = lines.where(token.isNotNull() & ~token.isin(named))
        branches.append(_branch(rest, default, setting, error))
    return reduce(DataFrame.unionByName, branches)


def _request_time(text: Column) -> Column:
    """Seconds; ``-`` is none, and so is ALB's ``-1`` (a request it could not dispatch)."""
    seconds = text.cast("double")
    return F.when((text == "-") | (seconds < 0), None).otherwise(seconds)


def _seconds_to_us(seconds: Column) -> Column:
    return F.round(seconds * 1_000_000).cast("long")


def _upstream_us(text: Column) -> Column:
    """nginx's ``$upstream_response_time``: seconds, one per upstream tried (``0.010, 0.020``,
    groups apart by `` : ``), summed; ``-`` (no upstream; one that gave no response) adds
    nothing, and a time of only ``-`` is null."""
    times = F.split(F.regexp_replace(text, " ", ""), "[,:]")
    total = F.aggregate(
        times,
        F.lit(0.0).cast("double"),
        lambda acc, part: acc + F.when(part == "-", 0.0).otherwise(part.cast("double")),
    )
    return F.when(text.isNull() | (text == "-"), None).otherwise(_seconds_to_us(total))


def typed(fields: DataFrame) -> DataFrame:
    """The known fields as typed columns, beside the texts the checks report."""
    request = with_groups(fields, "request", REQUEST, REQUEST_GROUPS, prefix="_request_")
    from_request = F.col("request").isNotNull()
    request_us = F.coalesce(
        _seconds_to_us(_request_time(F.col("request_time"))),
        F.when(F.col("request_time_us") != "-", F.col("request_time_us").cast("long")),
        _seconds_to_us(_request_time(F.col("request_time_s"))),
    )
    return request.select(
        "value",
        "source_file",
        "_matches",
        "_format_detail",
        "_format_error",
        "_request__matches",
        "_has_agent",
        F.col("client").alias("client_ip"),
        _dash_to_null(F.col("remote_user")).alias("remote_user"),
        "time_local",
        "time_iso8601",
        "msec",
        "request",
        F.coalesce(
            F.to_timestamp("time_local", CLF_TIME).cast("timestamp_ntz"),
            parse_utc(F.col("time_iso8601")),
            F.timestamp_seconds(F.col("msec").cast("decimal(20, 3)")).cast("timestamp_ntz"),
        ).alias("request_at"),
        F.when(from_request, F.col("_request_method")).otherwise(F.col("method")).alias("method"),
        F.when(from_request, F.col("_request_path")).otherwise(F.col("path")).alias("path"),
        _dash_to_null(
            F.when(from_request, F.col("_request_protocol")).otherwise(F.col("protocol"))
        ).alias("protocol"),
        F.col("status"),
        F.col("status").cast("int").alias("_status"),
        F.col("bytes_sent").alias("_bytes_text"),
        F.when(F.col("bytes_sent").isin("-", ""), 0)
        .otherwise(F.col("bytes_sent").cast("long"))
        .alias("bytes_sent"),
        _dash_to_null(F.col("referrer")).alias("referrer"),
        _dash_to_null(F.col("user_agent")).alias("user_agent"),
        _dash_to_null(F.col("virtual_host")).alias("virtual_host"),
        _dash_to_null(F.col("request_id")).alias("request_id"),
        _dash_to_null(F.col("forwarded_for")).alias("forwarded_for"),
        F.coalesce("request_time", "request_time_us", "request_time_s").alias("_time_text"),
        request_us.alias("request_time_us"),
        F.col("upstream_time").alias("_upstream_text"),
        _upstream_us(F.col("upstream_time")).alias("upstream_time_us"),
        # An id the server wrote into the line wins; else the line's place in its file,
        # from the shipper; else (a line sent without one) the line's own content.
        F.coalesce(
            _dash_to_null(F.col("request_id")),
            F.nullif(F.regexp_extract("value", REQUEST_ID, 1), F.lit("")),
            F.col("position_id"),
            F.sha2(F.col("value"), 256),
        ).alias("event_id"),
    )


def _value_check(text: str, typed: str | Column, rule: str) -> tuple[Column, str, Column]:
    """Fails when a field the line has (not ``-``) does not read as its type."""
    given = F.col(text).isNotNull() & ~F.col(text).isin("-")
    return (
        given & (F.col(typed) if isinstance(typed, str) else typed).isNull(),
        "invalid_value",
        F.concat(F.lit(f"{rule}: "), F.substring(F.col(text), 1, 200)),
    )


TIME_RULE = (
    "time is unreadable (time_local: dd/Mon/yyyy:HH:mm:ss +zzzz; time_iso8601; "
    "msec: epoch seconds): "
)


def parse(
    lines: DataFrame, context: RunContext | None = None, log_format: WebFormat | None = None
) -> DataFrame:
    """Parse and check each line in the stream's format; ``reason`` is null for a valid
    request, else it and ``detail`` name the field that broke."""
    web_format = log_format or formats.compile_format(None)
    parsed = typed(with_formats(lines, web_format))
    status = F.col("_status")
    time_text = F.coalesce("time_local", "time_iso8601", "msec")
    checked = with_first_failure(
        parsed,
        *line_checks(),
        (F.col("_format_error").isNotNull(), "unparseable", F.col("_format_error")),
        (~F.col("_matches"), "unparseable", F.col("_format_detail")),
        (
            F.col("request_at").isNull(),
            "invalid_timestamp",
            # A JSON line may lack the time key: the detail still says what to fix.
            F.concat(F.lit(TIME_RULE), F.coalesce(F.substring(time_text, 1, 200), F.lit("(none)"))),
        ),
        time_window_check(F.col("request_at"), time_text, "time", context),
        (
            F.col("path").isNull() | ~F.col("_request__matches") & F.col("request").isNotNull(),
            "malformed_request",
            F.concat(
                F.lit('request is not "METHOD target HTTP/x": '),
                F.substring(F.coalesce("request", F.lit("")), 1, 200),
            ),
        ),
        (
            F.coalesce(~status.between(100, 599), F.lit(True)),
            "invalid_value",
            F.concat(
                F.lit("status is not an HTTP status (100-599): "),
                F.coalesce(F.substring("status", 1, 200), F.lit("(none)")),
            ),
        ),
        _value_check("_bytes_text", "bytes_sent", "bytes_sent is not a byte count"),
        # A number, negative too (ALB's -1: no time), which is then null.
        _value_check(
            "_time_text", F.col("_time_text").cast("double"), "request time is not a number"
        ),
        _value_check("_upstream_text", "upstream_time_us", "upstream_response_time is not seconds"),
        field_length_check(LOADED_STRINGS),
    )
    return checked.drop("_request__matches", "_format_detail", "_format_error")


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

    A visitor (``visitor_id``) is a client address plus user agent, keyed-hashed
    (``pseudonym.visitor_id``). The session id is derived from the visitor and the session's
    first request, so re-running with the same key gives the same ids. A session
    an earlier run left (``open_sessions``) goes on when the visitor's next request comes
    within 30 minutes of its last one, and a late request that falls inside it (or within 30
    minutes of either end) joins it: same id, so the warehouse sees one session, never a
    second one overlapping it.
    """
    rows = requests.withColumn("_start", F.lit(None).cast("timestamp_ntz")).withColumn(
        "_end", F.col("request_at")
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


def with_added_columns_last(requests: DataFrame) -> DataFrame:
    first = [name for name in requests.columns if name not in ADDED_COLUMNS]
    return requests.select(*first, *ADDED_COLUMNS)


def transform(
    lines: DataFrame, context: RunContext | None = None, log_format: WebFormat | None = None
) -> StreamResult:
    """Requests, sessions and quarantine of the access log's lines. Client addresses leave
    only as pseudonyms keyed with ``context.pseudonym_key`` (``pseudonym.py``), which the
    stream therefore requires; the quarantine keeps the raw line (short retention)."""
    key = (context or RunContext()).pseudonym_key
    if key is None:
        raise ValueError(
            "the web stream needs a pseudonymization key (RunContext.pseudonym_key; the job "
            "reads it from --pseudonym-secret): raw client addresses never reach the output"
        )
    unique, quarantine, stats = split_and_dedupe("web", parse(lines, context, log_format))
    requests = unique.withColumn("status", F.col("_status")).select(
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
        # Unknown (null), not a bot, when the line has no user agent field to judge by.
        F.when(F.col("_has_agent"), is_bot(F.col("user_agent"))).alias("is_bot"),
        (
            F.col("method").isin("GET", "HEAD")
            & F.col("status").between(200, 399)
            & ~is_asset(F.col("path"))
        ).alias("is_page_view"),
        "source_file",
        *ADDED_COLUMNS,
    )
    # The one point where raw addresses end; the bot rules above read only the user agent.
    pseudonymized = pseudonymize_requests(requests, key)
    open_sessions = (context or RunContext()).open_sessions
    sessions = with_sessions(pseudonymized, open_sessions).cache()
    return StreamResult(
        "web",
        {"web_requests": with_added_columns_last(sessions.drop("_session_start"))},
        quarantine,
        stats,
        state={"web_sessions": still_open(sessions, open_sessions)},
    )
