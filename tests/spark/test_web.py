"""Access logs as nginx and Apache write them: parsing, UTC, bots, sessions, quarantine."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pyspark.sql import functions as F

from lake.stats import StreamStats
from preprocess import formats, web
from preprocess.common import RunContext
from tests.spark.keys import KEY, KEYED, pseudonym

pytestmark = pytest.mark.integration
RUN = RunContext(date(2026, 11, 21), pseudonym_key=KEY)

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
    result = web.transform(
        lines([NGINX, APACHE_DOCS, COMMON, NGINX_MAIN, IPV6_CURL, ESCAPED]), KEYED
    )
    rows = {r["client_ip"] + r["path"]: r for r in result.datasets["web_requests"].collect()}
    nginx = rows[pseudonym("93.184.216.34") + "/index.html"]
    assert nginx["request_at"] == datetime(2026, 10, 10, 20, 55, 36)  # -0700 -> UTC
    assert (nginx["method"], nginx["status"], nginx["bytes_sent"]) == ("GET", 200, 2326)
    assert nginx["referrer"] == "http://example.com/start"
    assert not nginx["is_bot"] and nginx["is_page_view"]
    apache = rows[pseudonym("127.0.0.1") + "/apache_pb.gif"]
    assert apache["remote_user"] == "frank" and not apache["is_page_view"]  # an image
    iphone = rows[pseudonym("10.1.2.3") + "/cart"]
    assert iphone["user_agent"] == "Mozilla/5.0 (iPhone) Safari/604.1"
    curl = rows[pseudonym("2001:db8::1") + "/api/cart"]
    assert curl["is_bot"] and curl["bytes_sent"] == 0 and not curl["is_page_view"]  # a POST
    assert rows[pseudonym("10.9.9.9") + "/p"]["user_agent"] == 'Agent \\"with quotes\\" 1.0'
    # COMMON and APACHE_DOCS are the same request minus headers: two different lines.
    assert result.stats == StreamStats(read=6, processed=6, duplicates=0)


def test_bad_lines_are_quarantined_with_a_reason_and_good_ones_kept(lines) -> None:
    raw = [NGINX, TLS_PROBE, EMPTY_REQUEST, BAD_TIME, GARBAGE, "GET /caf\ufffd HTTP/1.1"]
    result = web.transform(lines(raw), KEYED)
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
    result = web.transform(lines([NGINX, NGINX, NGINX]), KEYED)
    assert result.stats == StreamStats(read=3, processed=1, duplicates=2)


def test_thirty_minutes_of_inactivity_starts_a_new_session(lines) -> None:
    def hit(minute: int, ip: str = "1.1.1.1") -> str:
        hours, minutes = divmod(minute, 60)
        return (
            f"{ip} - - [01/Nov/2026:{10 + hours:02d}:{minutes:02d}:00 +0000] "
            f'"GET /m{minute} HTTP/1.1" 200 1 "-" "Mozilla/5.0"'
        )

    raw = [hit(0), hit(10), hit(40), hit(71), hit(75), hit(5, ip="2.2.2.2")]
    requests = web.transform(lines(raw), KEYED).datasets["web_requests"].collect()
    by_path = {r["path"]: r["session_id"] for r in requests}
    # 0,10,40 are <= 30 min apart; 71 follows a 31-minute gap; another visitor is apart.
    assert by_path["/m0"] == by_path["/m10"] == by_path["/m40"]
    assert by_path["/m71"] == by_path["/m75"] != by_path["/m40"]
    assert len(set(by_path.values())) == 3
    again = {
        r["path"]: r["session_id"]
        for r in web.transform(lines(raw), KEYED).datasets["web_requests"].collect()
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


# Real-world line shapes in configured formats (docs/data-contract.md, "Formats").
NGINX_TIMED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" $request_time $upstream_response_time'
)
LONG = "x" * (1024 * 1024)  # a 1 MB field: no per-character recursion in any format


def nginx_timed(request: str, status: str = "200", tail: str = "0.125 0.010, 0.100") -> str:
    return (
        f'2001:db8::7 - - [21/Nov/2026:10:00:00 +0100] "{request}" {status} 12 "-" '
        f'"Mozilla/5.0" {tail}'
    )


def reasons_and_details(result) -> dict[str, tuple[str, str]]:
    return {r["raw_line"][:60]: (r["reason"], r["detail"]) for r in result.quarantine.collect()}


def test_an_nginx_format_with_timings_parses_and_quarantines_by_field(lines) -> None:
    log_format = formats.compile_format(NGINX_TIMED)
    raw = [
        nginx_timed("GET /a.js type= HTTP/1.1"),  # a broken template's target: served, 200
        nginx_timed("GET /p HTTP/1.1", tail="0.002 -"),  # no upstream (a cached response)
        nginx_timed("GET /w HTTP/1.1", tail="0.502 0.500, - : 0.001"),  # one gave no response
        nginx_timed("GET /" + LONG + " HTTP/1.1"),
        nginx_timed("\\x16\\x03\\x01\\x00\\xa5", status="400", tail="0.000 -"),  # TLS probe
        nginx_timed("-", status="400", tail="0.000 -"),
        nginx_timed("GET /s HTTP/1.1", status="2x0"),
        nginx_timed("GET /t HTTP/1.1", tail="fast -"),
        nginx_timed("GET /u HTTP/1.1").replace("21/Nov", "21/Nox"),
        nginx_timed("GET /v HTTP/1.1", tail="0.1"),  # a field short
    ]
    result = web.transform(lines(raw), RUN, log_format)
    rows = {r["path"][:10]: r for r in result.datasets["web_requests"].collect()}
    spaced = rows["/a.js type"]
    assert (spaced["method"], spaced["path"], spaced["protocol"]) == (
        "GET", "/a.js type=", "HTTP/1.1"
    )  # fmt: skip
    assert (spaced["request_time_us"], spaced["upstream_time_us"]) == (125_000, 110_000)
    assert spaced["request_at"] == datetime(2026, 11, 21, 9, 0, 0)
    assert (rows["/p"]["request_time_us"], rows["/p"]["upstream_time_us"]) == (2_000, None)
    assert rows["/w"]["upstream_time_us"] == 501_000
    assert rows["/p"]["is_bot"] is False
    reasons = {raw_line: reason for raw_line, (reason, _) in reasons_and_details(result).items()}
    assert sorted(reasons.values()) == ["field_too_long", "invalid_timestamp", "invalid_value",
                                        "invalid_value", "malformed_request",
                                        "malformed_request", "unparseable"]  # fmt: skip
    details = sorted(detail for _, detail in reasons_and_details(result).values())
    assert [d.split(" ")[0] for d in details] == ["not", "path", "request", "request",
                                                  "request", "status", "time"]  # fmt: skip
    assert result.stats.read == result.stats.processed + sum(result.stats.quarantined.values())


def test_apache_with_duration_a_hostname_client_and_common_format_agents(lines) -> None:
    apache = formats.compile_format(
        r"%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\" %D"
    )
    raw = [
        'crawl-66-249-66-1.googlebot.com - - [21/Nov/2026:10:00:00 +0000] "GET /r HTTP/1.1" '
        '200 5 "-" "Googlebot/2.1" 1532',
        'shop-client.example.net - frank [21/Nov/2026:10:00:01 +0000] "GET /q HTTP/1.0" '
        '304 - "-" "Mozilla/5.0 \\"quoted\\"" 87',
        '10.0.0.1 - - [21/Nov/2026:10:00:02 +0000] "GET /x HTTP/1.1" 200 5 "-" "' + LONG + '" 9',
    ]
    result = web.transform(lines(raw), RUN, apache)
    rows = {r["path"]: r for r in result.datasets["web_requests"].collect()}
    assert rows["/r"]["client_ip"] == pseudonym("crawl-66-249-66-1.googlebot.com")
    assert rows["/r"]["is_bot"]
    assert (rows["/q"]["request_time_us"], rows["/q"]["bytes_sent"]) == (87, 0)
    assert dict(result.stats.quarantined) == {"field_too_long": 1}
    # The common log format has no user agent: a request is not a bot for lack of one.
    common = '10.0.0.2 - - [21/Nov/2026:10:00:03 +0000] "GET /c HTTP/1.1" 200 5'
    for log_format in (formats.compile_format("common"), None):  # None: combined, the default
        [row] = web.transform(lines([common]), RUN, log_format).datasets["web_requests"].collect()
        assert row["is_bot"] is None and row["user_agent"] is None


def test_json_and_alb_lines(lines) -> None:
    template = (
        '{"time":"$time_iso8601","ip":"$remote_addr","request":"$request","status":$status,'
        '"bytes":$body_bytes_sent,"rt":$request_time,"ua":"$http_user_agent","host":"$host",'
        '"id":"$request_id"}'
    )
    request_id = "5f2b8c1e" + "9a0d4b7c8e1f2a3b4c5d6e7f"  # nginx's $request_id: 32 hex digits
    good = (
        '{"time":"2026-11-21T10:00:00+00:00","ip":"2001:db8::1","request":"GET /j HTTP/2.0",'
        '"status":200,"bytes":42,"rt":0.005,"ua":"curl/8.5","host":"shop.example.com",'
        f'"id":"{request_id}","extra":"kept in the raw line"}}'
    )
    raw = [good, good.replace('"status":200', '"status":"abc"'), "not json", '{"ip":"1"}',
           good.replace("curl/8.5", LONG).replace("5f2b", "6f2b")]  # fmt: skip
    result = web.transform(lines(raw), RUN, formats.compile_format(template))
    [row] = result.datasets["web_requests"].collect()
    assert (row["event_id"], row["virtual_host"], row["request_time_us"]) == (
        request_id, "shop.example.com", 5_000
    )  # fmt: skip
    assert row["is_bot"] and row["status"] == 200 and row["bytes_sent"] == 42
    assert dict(result.stats.quarantined) == {
        "invalid_value": 1, "unparseable": 1, "invalid_timestamp": 1, "field_too_long": 1
    }  # fmt: skip
    alb = (
        "https 2026-11-21T10:00:00.123456Z app/shop/50dc6c 192.0.2.10:46532 10.0.1.5:80 "
        '0.000 0.042 0.000 200 200 34 366 "GET https://shop.example.com:443/p/1 HTTP/1.1" '
        '"Mozilla/5.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:x '
        '"Root=1-58337262-36d228ad5d99923122bbe354" "shop.example.com" "arn:cert" 0 "-"'
    )
    [row] = (
        web.transform(lines([alb]), RUN, formats.compile_format("alb"))
        .datasets["web_requests"]
        .collect()
    )
    assert (row["client_ip"], row["request_time_us"], row["path"]) == (
        pseudonym("192.0.2.10"), 42_000, "https://shop.example.com:443/p/1"
    )  # fmt: skip
    assert row["request_at"] == datetime(2026, 11, 21, 10, 0, 0, 123456)
