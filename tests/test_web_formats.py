"""Web logs in configured formats: nginx with $request_time through the whole local
pipeline, and Apache, ALB and JSON flows, each shipped with its own format, through the
Spark job. Real-world line shapes are processed, only lines that break the format are
quarantined, each with a reason whose detail names the field, and the request duration
reaches the marts."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import duckdb
import job
import pytest

from lake import layout, zones
from local.aws import provision_pseudonym_key
from local.run import run_pipeline
from orchestration.settings import load_settings
from orchestration.summary import reconcile
from preprocess.pseudonym import read_key
from shoplogs_agent.firehose import ShipStats, pack_buffer
from shoplogs_agent.identity import Origin, format_token
from tests.spark.keys import pseudonym

pytestmark = pytest.mark.integration

NGINX_TIMED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" $request_time $host'
)


def hit(client: str, second: int, request: str, agent: str = "Mozilla/5.0", **kw: str) -> str:
    status, size, timing = kw.get("status", "200"), kw.get("size", "512"), kw.get("rt", "0.120")
    return (
        f'{client} - - [01/Nov/2026:12:00:{second:02d} +0000] "{request}" {status} {size} '
        f'"https://shop.example.com/" "{agent}" {timing} shop.example.com'
    )


GOOD = [
    hit("2001:db8::1", 1, "GET /products/7 HTTP/2.0"),  # IPv6
    hit("2001:db8::1", 2, "GET /a.js type= HTTP/1.1", rt="0.004"),  # a target with a space
    hit("crawl-66-249-66-1.googlebot.com", 3, "GET / HTTP/1.1", agent="Googlebot/2.1"),
    hit("45.9.20.7", 4, "GET /wp-login.php HTTP/1.1", agent="python-requests/2.31",
        status="404", size="0"),  # a scanner: a real request, flagged as a bot
    hit("10.0.0.8", 5, "GET /cart HTTP/1.1", rt="-"),  # no time logged for it
]  # fmt: skip
BAD = {  # line -> (reason, the field its detail names first)
    hit("45.9.20.1", 6, "\\x16\\x03\\x01\\x00\\xa5", status="400", size="157"):
        ("malformed_request", "request"),  # a TLS handshake sent to the HTTP port
    hit("45.9.20.2", 7, "-", status="400", size="0"): ("malformed_request", "request"),
    hit("10.0.0.9", 8, "GET /p HTTP/1.1") + " extra": ("unparseable", "not"),  # not the format
    hit("10.0.0.9", 9, "GET /q HTTP/1.1", status="20O"): ("invalid_value", "status"),
    hit("10.0.0.9", 10, "GET /r HTTP/1.1", agent="A" * 70_000): ("field_too_long", "user_agent"),
}  # fmt: skip


def test_an_nginx_format_with_request_time_end_to_end(
    tmp_path: Path, own_aws_endpoint: str
) -> None:
    log = tmp_path / "access.log"
    log.write_text("\n".join([*GOOD, *BAD]) + "\n")
    settings = replace(load_settings("local"), work_dir=tmp_path, lake_bucket="formats-lake")
    web = replace(settings.stream("web"), log_format=NGINX_TIMED)
    settings = replace(settings, streams=(*settings.streams[:2], web))
    report = run_pipeline(settings.with_endpoint(own_aws_endpoint), {"web": [log]})

    assert reconcile(report) == []
    counts = report.streams["web"]
    assert (counts.read, counts.processed) == (len(GOOD) + len(BAD), len(GOOD))
    s3 = boto3.client("s3", endpoint_url=own_aws_endpoint, region_name="us-east-1")
    quarantined = {
        row["raw_line"]: (row["reason"], row["detail"].split(" ")[0])
        for key in zones.list_keys(s3, "formats-lake", "quarantine/web/")
        for row in map(json.loads, s3.get_object(Bucket="formats-lake", Key=key)["Body"].read()
                       .splitlines())
    }  # fmt: skip
    assert quarantined == BAD
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        requests = con.execute(
            "select request_path, request_time_us, virtual_host, is_bot"
            " from staging.stg_web__requests order by request_at"
        ).fetchall()
        assert requests == [
            ("/products/7", 120_000, "shop.example.com", False),
            ("/a.js type=", 4_000, "shop.example.com", False),
            ("/", 120_000, "shop.example.com", True),
            ("/wp-login.php", 120_000, "shop.example.com", True),
            ("/cart", None, "shop.example.com", False),
        ]
        durations = con.execute(
            "select avg_request_duration_ms from marts.fct_web_sessions order by started_at"
        ).fetchall()
        assert durations == [(62.0,), (120.0,), (120.0,), (None,)]


# --- Each format through the Spark job, each flow in its own format --------------------------
# One run of the job (spark/job.py, as EMR and the local runner start it) on the web stream as
# the shippers deliver it: each flow's records carry its agent.json logFormat in their header
# (Apache with %D and a vhost, an ALB, nginx JSON with a field mapping, and one flow whose
# format is broken); lines shipped with no format are read in the stream's setting (combined).
APACHE_VHOST_D = r"%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\" %D %v"
NGINX_JSON = (
    'escape=json \'{"time":"$time_iso8601","ip":"$remote_addr","host":"$host",'
    '"request":"$request","status":$status,"bytes":$body_bytes_sent,"rt":$request_time,'
    '"ua":"$http_user_agent","xff":"$http_x_forwarded_for","id":"$request_id"}\''
)
BROKEN = "$remote_addr$time_local"  # two variables touching: no line can be read in it


APACHE_TAIL = '"Mozilla/5.0" 1532 shop.example.com'  # user agent, %D, %v


def apache(client: str, second: int, request: str, tail: str = APACHE_TAIL,
           status: str = "200", size: str = "512") -> str:  # fmt: skip
    time = f"[01/Nov/2026:12:00:{second:02d} +0000]"
    return f'{client} - - {time} "{request}" {status} {size} "-" {tail}'


APACHE_GOOD = [
    apache("2001:db8::5", 1, "GET /products/7 HTTP/2.0"),  # IPv6
    apache("crawl-66-249-66-1.googlebot.com", 2, "GET /robots.txt HTTP/1.1",  # HostnameLookups
           '"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)" 210 '
           "shop.example.com"),
    apache("45.9.20.7", 3, "GET /.env HTTP/1.1", '"python-requests/2.31.0" 95 www.example.com',
           status="404", size="196"),  # a scanner: a real request
    apache("10.0.0.8", 4, "HEAD / HTTP/1.1", '"Mozilla/5.0" 87 shop.example.com', "304", "-"),
    apache("10.0.0.9", 5, "GET /a.js type= HTTP/1.1", '"Mozilla/5.0" 402 shop.example.com'),
]  # fmt: skip
APACHE_BAD = {
    "-": ("unparseable", "not"),  # first in its record, and holds no space: its own line
    apache("45.9.20.1", 6, "\\x16\\x03\\x01\\x00\\xa5\\x01\\x00\\x00\\xa1\\x03\\x03", status="400",
           size="226"): ("malformed_request", "request"),  # a TLS handshake on the HTTP port
    apache("45.9.20.2", 7, "-", '"-" 20000612 shop.example.com', "408", "-"):
        ("malformed_request", "request"),  # a connection closed before its request
    apache("10.0.0.10", 8, "GET /x HTTP/1.1", '"Mozilla/5.0"'): ("unparseable", "not"),  # no %D %v
    apache("10.0.0.10", 9, "GET /y HTTP/1.1") + " extra": ("unparseable", "not"),
    apache("10.0.0.10", 10, "GET /z HTTP/1.1", '"Mozilla/5.0" 1.5ms shop.example.com'):
        ("invalid_value", "request"),  # request time is not a number
    apache("10.0.0.10", 11, "GET /s HTTP/1.1", status="20O"): ("invalid_value", "status"),
}  # fmt: skip

ALB_TAIL = (
    "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:eu-west-1:123456789012:"
    'targetgroup/shop/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" '
    '"shop.example.com" "arn:aws:acm:eu-west-1:123456789012:certificate/1234" 0 '
    '2026-11-01T12:00:10.080000Z "forward" "-" "-" "10.0.1.5:80" "200" "-" "-" TID_1234abcd'
)


def alb(kind: str, second: int, client: str, timing: str, status: str, request: str,
        agent: str = "Mozilla/5.0") -> str:  # fmt: skip
    return (f"{kind} 2026-11-01T12:00:{second:02d}.123456Z app/shop/50dc6c495c0c9188 {client} "
            f'10.0.1.5:80 {timing} {status} 34 366 "{request}" "{agent}" {ALB_TAIL}')  # fmt: skip


ALB_GOOD = [
    alb("https", 20, "192.0.2.10:46532", "0.000 0.042 0.000", "200 200",
        "GET https://shop.example.com:443/p/1 HTTP/1.1"),
    alb("h2", 21, "2001:db8::7:50544", "0.001 0.010 0.000", "200 200",  # IPv6 client:port
        "GET https://shop.example.com:443/ HTTP/2.0", "curl/8.5.0"),
    alb("http", 22, "198.51.100.3:1234", "-1 -1 -1", "460 -",  # the client left: no times
        "GET http://shop.example.com:80/slow HTTP/1.1"),
    alb("http", 23, "203.0.113.50:3333", "0.000 0.001 0.000", "403 403",  # a scanner
        "GET http://192.0.2.1:80/.git/config HTTP/1.1", "Go-http-client/1.1"),
]  # fmt: skip
ALB_BAD = {
    alb("http", 24, "203.0.113.51:4444", "-1 -1 -1", "400 -", "- - - "):
        ("malformed_request", "request"),  # what ALB logs for a request it cannot read
    alb("https", 25, "192.0.2.11:46533", "0.000 0.042 0.000", "2OO 200", "GET / HTTP/1.1"):
        ("invalid_value", "status"),
    "https 2026-11-01T12:00:26.000000Z app/shop/50dc6c 192.0.2.12:1 10.0.1.5:80 0.000":
        ("unparseable", "not"),  # cut short
}  # fmt: skip

REQUEST_ID = "5f2b8c1e" + "9a0d4b7c8e1f2a3b4c5d6e7f"


def as_json(second: int, ip: str, request: str, status: str = "200", **kw: str) -> str:
    ua = kw.get("ua", "Mozilla/5.0")
    return (f'{{"time":"2026-11-01T12:00:{second:02d}+00:00","ip":"{ip}","host":"shop.example.com",'
            f'"request":"{request}","status":{status},"bytes":{kw.get("bytes", "42")},'
            f'"rt":0.005,"ua":"{ua}","xff":"203.0.113.9, 10.0.0.1","id":"{kw.get("id", "")}"'
            f'{kw.get("extra", "")}}}')  # fmt: skip


JSON_GOOD = [
    as_json(30, "2001:db8::9", "GET /j HTTP/2.0", id=REQUEST_ID, extra=',"upstream":"10.0.1.5"'),
    as_json(31, "host-7.example.net", "GET /k HTTP/1.1", ua='Agent \\"quoted\\" 1.0'),
    as_json(32, "45.9.20.8", "GET /wp-login.php HTTP/1.1", "404", ua="zgrab/0.x", bytes="0"),
]
JSON_BAD = {
    as_json(33, "45.9.20.3", "\\u0016\\u0003\\u0001\\u0000", "400"):
        ("malformed_request", "request"),  # a TLS handshake, as escape=json writes it
    as_json(34, "45.9.20.4", "", "400"): ("malformed_request", "request"),  # no request at all
    as_json(35, "10.0.0.11", "GET /q HTTP/1.1", '"abc"'): ("invalid_value", "status"),
    '{"ip":"10.0.0.12","request":"GET /t HTTP/1.1","status":200}': ("invalid_timestamp", "time"),
    "upstream timed out (110: Connection timed out)": ("unparseable", "not"),  # not JSON
}  # fmt: skip

UNNAMED_GOOD = [  # shipped with no format: the stream's setting, combined, reads them
    hit("10.0.0.20", 40, "GET /plain HTTP/1.1").rsplit(" ", 2)[0],  # combined
    '10.0.0.21 - - [01/Nov/2026:12:00:41 +0000] "GET /common HTTP/1.0" 200 2326',  # common
]
UNNAMED_BAD = {"not an access log line": ("unparseable", "not")}
BROKEN_BAD = {apache("10.0.0.30", 50, "GET / HTTP/1.1"): ("unparseable", "the")}


def delivered(lines: list[str], log_format: str, offset: int = 0) -> bytes:
    """A flow's lines as its shipper delivers them (the agent's own code)."""
    data = "".join(f"{line}\n" for line in lines).encode()
    token = format_token(log_format) if log_format else b""
    origin = Origin("web-1", f"fp{offset:02d}", offset, token)
    return b"".join(r.data for r in pack_buffer(data, ShipStats(), origin=origin))


def test_each_flow_is_parsed_in_its_own_format_by_the_spark_job(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_endpoint: str
) -> None:
    flows = [
        (APACHE_VHOST_D, APACHE_GOOD, APACHE_BAD),
        ("alb", ALB_GOOD, ALB_BAD),
        (NGINX_JSON, JSON_GOOD, JSON_BAD),
        ("", UNNAMED_GOOD, UNNAMED_BAD),
        (BROKEN, [], BROKEN_BAD),
    ]
    raw = tmp_path / "raw" / "web"
    raw.mkdir(parents=True)
    for number, (log_format, good, bad) in enumerate(flows):
        (raw / f"object-{number}").write_bytes(delivered([*bad, *good], log_format, number))
    monkeypatch.setattr(type(spark), "stop", lambda self: None)  # the tests' shared session
    out = tmp_path / "out"
    # The job's pseudonymization key, from the local Secrets Manager as a run reads it.
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    secret = "shoplogs/web-formats/spark/pseudonym-key"  # pragma: allowlist secret
    secrets = boto3.client("secretsmanager", endpoint_url=aws_endpoint, region_name="us-east-1")
    provision_pseudonym_key(secrets, secret)
    key = read_key(secrets, secret)
    job.main(["--input", str(tmp_path / "raw"), "--output", str(out), "--run-date", "2026-11-01",
              "--streams", "web", "--pseudonym-secret", secret])  # fmt: skip

    good = [line for _, lines, _ in flows for line in lines]
    bad = {line: why for *_, lines in flows for line, why in lines.items()}
    run_date = date(2026, 11, 1)
    [stats] = [
        json.loads(p.read_text()) for p in (out / layout.stats_prefix(run_date)).rglob("*.json")
    ]
    assert (stats["read"], stats["processed"], stats["duplicates"]) == (
        len(good) + len(bad),
        len(good),
        0,
    )
    quarantine = out / layout.quarantine_prefix("web", run_date)
    rows = [
        json.loads(line) for p in quarantine.glob("*.json") for line in p.read_text().splitlines()
    ]
    assert {row["raw_line"]: (row["reason"], row["detail"].split(" ")[0]) for row in rows} == bad
    broken = next(row["detail"] for row in rows if row["raw_line"] in BROKEN_BAD)
    assert "$remote_addr and $time_local touch" in broken and "logFormat" in broken

    processed = spark.read.parquet(str(out / layout.processed_prefix("web_requests", run_date)))
    found = {row["path"]: row for row in processed.collect()}
    assert sorted(found) == sorted([
        "/products/7", "/robots.txt", "/.env", "/", "/a.js type=",
        "https://shop.example.com:443/p/1", "https://shop.example.com:443/",
        "http://shop.example.com:80/slow", "http://192.0.2.1:80/.git/config",
        "/j", "/k", "/wp-login.php", "/plain", "/common",
    ])  # fmt: skip
    described = {
        path: (r["client_ip"], r["request_time_us"], r["virtual_host"], r["is_bot"])
        for path, r in found.items()
    }
    assert described["/products/7"] == (
        pseudonym("2001:db8::5", key),
        1532,
        "shop.example.com",
        False,
    )
    assert described["/robots.txt"] == (
        pseudonym("crawl-66-249-66-1.googlebot.com", key),
        210,
        "shop.example.com",
        True,
    )
    assert described["https://shop.example.com:443/"] == (
        pseudonym("2001:db8::7", key),
        10_000,
        "shop.example.com",
        True,
    )
    assert described["http://shop.example.com:80/slow"][1] is None  # ALB's -1
    assert described["/j"] == (pseudonym("2001:db8::9", key), 5_000, "shop.example.com", False)
    assert described["/common"][3] is None  # no user agent field: unknown, not a bot
    assert found["/j"]["event_id"] == REQUEST_ID
    assert found["/j"]["forwarded_for"] == ", ".join(
        pseudonym(a, key) for a in ("203.0.113.9", "10.0.0.1")
    )
    assert found["/k"]["user_agent"] == 'Agent "quoted" 1.0'
