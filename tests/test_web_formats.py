"""A web log in a configured format (nginx with $request_time) through the whole local
pipeline: real-world line shapes are processed, only lines that break the format are
quarantined, each with a reason whose detail names the field, and the request duration
reaches the marts."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import boto3
import duckdb
import pytest

from lake import zones
from local.run import run_pipeline
from orchestration.settings import load_settings
from orchestration.summary import reconcile

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
