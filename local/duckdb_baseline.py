"""The single-node baseline ``make bench`` sets beside the Spark job: the web stream's work
done by DuckDB on the same raw objects, so Spark's rate has something to be measured against.

It does what ``spark/preprocess`` does to the access log, as SQL: unwrap the shipper's
records into lines with their position ids, parse the combined log format, check each line
in the same order with the same reasons, de-duplicate on event id (id conflicts to
quarantine), flag bots and page views, build 30-minute sessions, keep each visitor's latest
session as state, and write Parquet plus quarantine JSON lines. Its counts must equal the
Spark job's; the bench checks that.

What it does not replicate, on purpose or because DuckDB cannot:
- DuckDB's regex engine (RE2) has no possessive quantifiers; it never recurses, so the
  greedy forms of the Spark patterns match the same lines. RE2's ``.`` and ``$`` treat only
  ``\\n`` as a line end, Java's also ``\\r``, U+0085, U+2028 and U+2029.
- DuckDB refuses invalid UTF-8, so Python decodes each object (undecodable bytes become
  U+FFFD, as Spark's reader does) and splits it on ``\\n`` before DuckDB sees the lines.
- No sessions carried over from a previous run (the bench runs one date on an empty lake),
  and only the web stream: it is nearly all of the volume and all of the sessionizing.
Bench-only code: nothing in the pipeline imports it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from lake import wire

SEPARATOR = wire.SEPARATOR.decode()
# Spark's patterns (spark/preprocess/web.py) without the possessive quantifiers RE2 lacks.
QUOTED = r'"((?:[^"\\]+|\\.)*)"'
COMBINED = (
    r"^(\S+) (\S+) (\S+) \[([^\]]+)\] " + QUOTED + r" (\d{3}) (\d+|-)"
    r"(?: " + QUOTED + r" " + QUOTED + r")?(?:\s.*)?$"
)
GROUPS = ["client_ip", "_ident", "remote_user", "time_local", "request", "status",
          "bytes_sent", "referrer", "user_agent"]  # fmt: skip
REQUEST = r"^([A-Z]+) (\S+)(?: (HTTP/[0-9.]+))?$"
REQUEST_ID = r" request_id=([0-9a-f]{32})$"
BOT_AGENTS = (
    r"(?i)(bot|crawl|spider|slurp|curl|wget|python-requests|python-urllib|go-http-client"
    r"|httpclient|scrapy|headless|facebookexternalhit|monitor|uptime|^-?$)"
)
ASSET_PATHS = r"(?i)\.(css|js|mjs|map|png|jpe?g|gif|svg|webp|ico|woff2?|ttf|eot)(\?.*)?$"


@dataclass(frozen=True)
class BaselineResult:
    """What the baseline counted and how long it took (reading included)."""

    read: int
    processed: int
    quarantined: dict[str, int]
    seconds: float

    @property
    def duplicates(self) -> int:
        return self.read - self.processed - sum(self.quarantined.values())


def delivered_lines(folder: Path) -> pa.Table:
    """Every ``\\n``-ended line of every object under ``folder``, with its object's name."""
    values: list[str] = []
    names: list[str] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        lines = path.read_bytes().decode("utf-8", "replace").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        values += lines
        names += [path.name] * len(lines)
    return pa.table({"value": values, "source_file": names})


def _q(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def lines_sql() -> str:
    """The shipper's records unwrapped into lines (spark/preprocess/common.py ``unwrap``)."""
    header = _q(wire.HEADER_REGEX)
    return f"""
    with enveloped as (
        select
            value,
            source_file,
            regexp_extract(value, {header}, 0) as _header,
            regexp_extract(value, {header}, ['_host', '_fingerprint', '_offset', '_parts'])
                as _place,
            row_number() over () as _record,
        from delivered
    ),
    split as (
        select
            *,
            case
                when _header = '' then [value]
                when _place._parts = '1' then [substring(value, length(_header) + 1)]
                else string_split(substring(value, length(_header) + 1), {_q(SEPARATOR)})
            end as _lines,
        from enveloped
    ),
    exploded as (
        select
            *,
            unnest(_lines) as _line,
            unnest(range(len(_lines))) as _index,
        from split
    )
    select
        regexp_replace(_line, '\\r$', '') as value,
        source_file,
        case when _header != '' then sha256(concat_ws('|', _place._host, 'web',
            _place._fingerprint, (_place._offset::bigint + coalesce(sum(strlen(_line) + 1)
                over (partition by _record order by _index
                      rows between unbounded preceding and 1 preceding), 0))::varchar))
            end as position_id,
    from exploded
    """


def parsed_sql(run_date: date) -> str:
    """Each line parsed and checked; ``reason`` is null for a valid request (web.parse)."""
    end = (run_date + timedelta(days=2)).isoformat()
    last = (run_date + timedelta(days=1)).isoformat()
    groups = "[" + ", ".join(_q(g) for g in GROUPS) + "]"
    return f"""
    with fields as (
        select
            value,
            source_file,
            position_id,
            regexp_matches(value, {_q(COMBINED)}) as _matches,
            regexp_extract(value, {_q(COMBINED)}, {groups}) as _f,
        from lines
    ),
    typed as (
        select
            value,
            source_file,
            _matches,
            _f.client_ip as client_ip,
            nullif(_f.remote_user, '-') as remote_user,
            _f.time_local as time_local,
            _f.request as request,
            try_strptime(_f.time_local, '%d/%b/%Y:%H:%M:%S %z')::timestamp as request_at,
            regexp_extract(_f.request, {_q(REQUEST)}, ['method', 'path', 'protocol']) as _r,
            try_cast(_f.status as integer) as status,
            case when _f.bytes_sent = '-' then 0 else try_cast(_f.bytes_sent as bigint) end
                as bytes_sent,
            nullif(nullif(_f.referrer, '-'), '') as referrer,
            nullif(nullif(_f.user_agent, '-'), '') as user_agent,
            coalesce(nullif(regexp_extract(value, {_q(REQUEST_ID)}, 1), ''), position_id,
                sha256(value)) as event_id,
        from fields
    )
    select
        * exclude (_r),
        _r.method as method,
        _r.path as path,
        nullif(_r.protocol, '') as protocol,
        case
            when value = '' then 'empty_line'
            when contains(value, chr(65533)) then 'invalid_encoding'
            when regexp_matches(value, '[\\x00-\\x08\\x0e-\\x1f]') then 'binary_content'
            when not _matches then 'unparseable'
            when request_at is null then 'invalid_timestamp'
            when request_at < timestamp '1990-01-01' or request_at >= timestamp '{end}'
                then 'invalid_timestamp'
            when not regexp_matches(request, {_q(REQUEST)}) then 'malformed_request'
        end as reason,
        case
            when value = '' then 'an empty line holds no event'
            when contains(value, chr(65533))
                then 'line is not valid UTF-8; re-encode the log as UTF-8'
            when regexp_matches(value, '[\\x00-\\x08\\x0e-\\x1f]')
                then 'line holds control bytes (binary data written into a text log)'
            when not _matches
                then 'not an access-log line in the combined or common log format'
            when request_at is null
                then 'time is not dd/Mon/yyyy:HH:mm:ss +zzzz: ' || time_local
            when request_at < timestamp '1990-01-01' or request_at >= timestamp '{end}'
                then 'time lies outside 1990-01-01 .. {last} (the run''s date + 1 day): '
                    || time_local
            when not regexp_matches(request, {_q(REQUEST)})
                then 'request is not "METHOD target HTTP/x": ' || request
        end as detail,
    from typed
    """


RANKED_SQL = """
select
    *,
    row_number() over by_id as _copy,
    first_value(value) over by_id as _kept,
from parsed
where reason is null
window by_id as (partition by event_id order by value, source_file)
"""

QUARANTINE_SQL = """
select 'web' as stream, reason, detail, source_file, value as raw_line from parsed
where reason is not null
union all
select
    'web', 'id_conflict',
    'event_id ' || event_id || ' arrived with another payload too; kept: '
        || substring(_kept, 1, 300),
    source_file, value,
from ranked
where value != _kept
"""

SESSIONS_SQL = f"""
with requests as (
    select
        event_id, request_at, client_ip, remote_user, method, path, protocol, status,
        bytes_sent, referrer, user_agent,
        regexp_matches(coalesce(user_agent, ''), {_q(BOT_AGENTS)}) as is_bot,
        method in ('GET', 'HEAD') and status between 200 and 399
            and not regexp_matches(path, {_q(ASSET_PATHS)}) as is_page_view,
        source_file,
        sha256(concat_ws('|', client_ip, coalesce(user_agent, ''))) as visitor_id,
    from ranked
    where _copy = 1
),
starts as (
    select
        *,
        case
            when lag(request_at) over by_visitor is null
                or epoch(request_at) - epoch(lag(request_at) over by_visitor) > 1800 then 1
            else 0
        end as _new,
    from requests
    window by_visitor as (partition by visitor_id order by request_at, event_id)
),
numbered as (
    select
        *,
        sum(_new) over (partition by visitor_id order by request_at, event_id) as _seq,
    from starts
)
select
    * exclude (_new, _seq),
    min(request_at) over (partition by visitor_id, _seq) as session_start,
    sha256(visitor_id || '|' || session_start::varchar) as session_id,
from numbered
"""

STATE_SQL = """
with mine as (
    select visitor_id, min(session_start) as session_start, max(request_at) as last_request_at,
    from sessions
    group by visitor_id, session_id
),
latest as (
    select *, row_number() over (partition by visitor_id order by last_request_at desc) as _rank,
    from mine
)
select visitor_id, session_start, last_request_at,
from latest
where _rank = 1
    and last_request_at >= (select max(last_request_at) from mine) - interval 1 day
"""


def run(input_folder: Path, output: Path, run_date: date, threads: int = 2) -> BaselineResult:
    """Process the web objects under ``input_folder`` into ``output``; time it all."""
    started = time.perf_counter()
    delivered = delivered_lines(input_folder)
    output.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(config={"threads": threads}) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute("set enable_progress_bar = false")
        con.register("delivered", delivered)
        con.execute(f"create temp table lines as {lines_sql()}")
        con.execute(f"create temp table parsed as {parsed_sql(run_date)}")
        con.execute(f"create temp table ranked as {RANKED_SQL}")
        con.execute(f"create temp table sessions as {SESSIONS_SQL}")
        con.execute(
            f"copy (select * exclude (session_start) from sessions) "
            f"to {_q(str(output / 'web_requests.parquet'))} (format parquet)"
        )
        con.execute(f"copy ({STATE_SQL}) to {_q(str(output / 'web_sessions.parquet'))} "
                    f"(format parquet)")  # fmt: skip
        con.execute(f"create temp table quarantine as {QUARANTINE_SQL}")
        con.execute(f"copy quarantine to {_q(str(output / 'quarantine.json'))} (format json)")
        read = _scalar(con, "select count(*) from lines")
        processed = _scalar(con, "select count(*) from sessions")
        reasons = con.execute("select reason, count(*) from quarantine group by 1").fetchall()
    return BaselineResult(
        read=read,
        processed=processed,
        quarantined={str(reason): int(count) for reason, count in reasons},
        seconds=time.perf_counter() - started,
    )


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(con.execute(sql).fetchall()[0][0])
