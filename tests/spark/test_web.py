"""Access logs as nginx and Apache write them: parsing, UTC, bots, sessions, quarantine."""

from __future__ import annotations

from datetime import datetime

import pytest
from pyspark.sql import functions as F

from lake.stats import StreamStats
from preprocess import web

pytestmark = pytest.mark.integration

NGINX = (
    '93.184.216.34 - - [10/Oct/2026:13:55:36 -0700] "GET /index.html HTTP/1.1" 200 2326 '
    '"http://example.com/start" "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"'
)
APACHE_DOCS = (  # the example from Apache httpd's log-file documentation
    '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
    '"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"'
)
COMMON = '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'
NGINX_MAIN = (  # nginx's "main" format adds $http_x_forwarded_for
    '10.1.2.3 - - [01/Nov/2026:00:00:01 +0000] "GET /cart HTTP/2.0" 200 512 "-" '
    '"Mozilla/5.0 (iPhone) Safari/604.1" "203.0.113.9"'
)
IPV6_CURL = (
    '2001:db8::1 - - [01/Nov/2026:00:00:02 +0000] "POST /api/cart HTTP/2.0" 201 - "-" "curl/8.5.0"'
)
ESCAPED = (
    '10.9.9.9 - - [01/Nov/2026:00:00:03 +0000] "GET /p HTTP/1.1" 200 5 "-" '
    '"Agent \\"with quotes\\" 1.0"'
)
TLS_PROBE = '45.9.20.1 - - [01/Nov/2026:00:00:04 +0000] "\\x16\\x03\\x01\\x00\\xa5" 400 157 "-" "-"'
EMPTY_REQUEST = '45.9.20.2 - - [01/Nov/2026:00:00:05 +0000] "-" 400 0 "-" "-"'
BAD_TIME = '45.9.20.3 - - [01/Foo/2026:00:00:05 +0000] "GET / HTTP/1.1" 200 1 "-" "x"'
GARBAGE = "upstream timed out (110: Connection timed out) while reading response header"


def test_real_nginx_and_apache_lines_parse_with_times_in_utc(lines) -> None:
    result = web.transform(lines([NGINX, APACHE_DOCS, COMMON, NGINX_MAIN, IPV6_CURL, ESCAPED]))
    rows = {r["client_ip"] + r["path"]: r for r in result.datasets["web_requests"].collect()}
    nginx = rows["93.184.216.34/index.html"]
    assert nginx["request_at"] == datetime(2026, 10, 10, 20, 55, 36)  # -0700 -> UTC
    assert (nginx["method"], nginx["status"], nginx["bytes_sent"]) == ("GET", 200, 2326)
    assert nginx["referrer"] == "http://example.com/start"
    assert not nginx["is_bot"] and nginx["is_page_view"]
    apache = rows["127.0.0.1/apache_pb.gif"]
    assert apache["remote_user"] == "frank" and not apache["is_page_view"]  # an image
    assert rows["10.1.2.3/cart"]["user_agent"] == "Mozilla/5.0 (iPhone) Safari/604.1"
    curl = rows["2001:db8::1/api/cart"]
    assert curl["is_bot"] and curl["bytes_sent"] == 0 and not curl["is_page_view"]  # a POST
    assert rows["10.9.9.9/p"]["user_agent"] == 'Agent \\"with quotes\\" 1.0'
    # COMMON and APACHE_DOCS are the same request minus headers: two different lines.
    assert result.stats == StreamStats(read=6, processed=6, duplicates=0)


def test_bad_lines_are_quarantined_with_a_reason_and_good_ones_kept(lines) -> None:
    raw = [NGINX, TLS_PROBE, EMPTY_REQUEST, BAD_TIME, GARBAGE, "GET /caf\ufffd HTTP/1.1"]
    result = web.transform(lines(raw))
    reasons = {r["raw_line"]: r["reason"] for r in result.quarantine.collect()}
    assert reasons == {
        TLS_PROBE: "malformed_request",
        EMPTY_REQUEST: "malformed_request",
        BAD_TIME: "invalid_timestamp",
        GARBAGE: "unparseable",
        "GET /caf\ufffd HTTP/1.1": "invalid_encoding",
    }
    assert result.stats.processed == 1


def test_a_resent_line_is_a_counted_duplicate(lines) -> None:
    result = web.transform(lines([NGINX, NGINX, NGINX]))
    assert result.stats == StreamStats(read=3, processed=1, duplicates=2)


def test_thirty_minutes_of_inactivity_starts_a_new_session(lines) -> None:
    def hit(minute: int, ip: str = "1.1.1.1") -> str:
        hours, minutes = divmod(minute, 60)
        return (
            f"{ip} - - [01/Nov/2026:{10 + hours:02d}:{minutes:02d}:00 +0000] "
            f'"GET /m{minute} HTTP/1.1" 200 1 "-" "Mozilla/5.0"'
        )

    raw = [hit(0), hit(10), hit(40), hit(71), hit(75), hit(5, ip="2.2.2.2")]
    requests = web.transform(lines(raw)).datasets["web_requests"].collect()
    by_path = {r["path"]: r["session_id"] for r in requests}
    # 0,10,40 are <= 30 min apart; 71 follows a 31-minute gap; another visitor is apart.
    assert by_path["/m0"] == by_path["/m10"] == by_path["/m40"]
    assert by_path["/m71"] == by_path["/m75"] != by_path["/m40"]
    assert len(set(by_path.values())) == 3
    again = {
        r["path"]: r["session_id"]
        for r in web.transform(lines(raw)).datasets["web_requests"].collect()
    }
    assert again == by_path  # ids are stable across re-runs


def test_bots_and_assets_are_told_apart_whatever_the_case_or_query_string(spark) -> None:
    agents = ["Googlebot/2.1", "Mozilla/5.0 (compatible; BINGBOT)", "curl/8.4", "-", "",
              "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"]  # fmt: skip
    paths = ["/static/app.JS?v=3", "/img/logo.png", "/a.mjs", "/download?file=report.css",
             "/products/7", "/css-guide", "/page.html?x=.png-ish"]  # fmt: skip
    frame = spark.createDataFrame(
        [(agents[i % len(agents)], paths[i % len(paths)]) for i in range(len(paths))],
        "agent string, path string",
    )
    flagged = frame.select(
        "agent", "path", web.is_bot(F.col("agent")).alias("bot"),
        web.is_asset(F.col("path")).alias("asset"),
    ).collect()  # fmt: skip
    assert {r["agent"]: r["bot"] for r in flagged} == {
        "Googlebot/2.1": True, "Mozilla/5.0 (compatible; BINGBOT)": True, "curl/8.4": True,
        "-": True, "": True, "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0": False,
    }  # fmt: skip
    assert {r["path"]: r["asset"] for r in flagged} == {
        "/static/app.JS?v=3": True, "/img/logo.png": True, "/a.mjs": True,
        "/download?file=report.css": True, "/products/7": False, "/css-guide": False,
        "/page.html?x=.png-ish": False,
    }  # fmt: skip
