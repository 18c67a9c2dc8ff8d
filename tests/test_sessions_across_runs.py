"""Sessions across runs, through the whole local pipeline: a visit whose requests arrive on
two days is one row of fct_web_sessions, built from both runs."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import boto3
import duckdb
import pytest

from local.aws import provision_local
from orchestration import stages
from orchestration.settings import load_settings
from shoplogs_agent.firehose import ShipStats, pack_buffer
from shoplogs_agent.identity import Origin

pytestmark = pytest.mark.integration

DAYS = [date(2026, 11, 1), date(2026, 11, 2)]
VISIT = [  # one visitor, no gap over 30 minutes, across midnight
    '9.9.9.9 - - [01/Nov/2026:23:40:00 +0000] "GET / HTTP/1.1" 200 1 "-" "Mozilla/5.0"',
    '9.9.9.9 - - [01/Nov/2026:23:55:00 +0000] "GET /cart HTTP/1.1" 200 1 "-" "Mozilla/5.0"',
    '9.9.9.9 - - [02/Nov/2026:00:05:00 +0000] "GET /checkout HTTP/1.1" 200 1 "-" "Mozilla/5.0"',
]


def test_a_visit_split_across_two_runs_is_one_session(
    tmp_path: Path, own_aws_endpoint: str
) -> None:
    settings = replace(load_settings("local"), work_dir=tmp_path, lake_bucket="sessions-lake")
    settings = settings.with_endpoint(own_aws_endpoint)
    provision_local(settings)
    s3 = boto3.client("s3", endpoint_url=own_aws_endpoint, region_name="us-east-1")
    offset = 0
    for day, lines in zip(DAYS, [VISIT[:2], VISIT[2:]], strict=True):
        # What the shipper delivers, landed on the day it arrived (no wall clock involved).
        data = "".join(f"{line}\n" for line in lines).encode()
        origin = Origin("web-1", "f1", offset)
        body = b"".join(r.data for r in pack_buffer(data, ShipStats(), origin=origin))
        offset += len(data)
        key = f"landing/web/{day:%Y/%m/%d}/23/shoplogs-local-web-{day}"
        s3.put_object(Bucket="sessions-lake", Key=key, Body=body)
        stages.claim_landing(settings, day)
        stages.preprocess_locally(settings, day)
        stages.promote_zones(settings, day)
        stages.load_warehouse(settings, day)
        stages.build_warehouse(settings)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        sessions = con.execute(
            "select request_count, page_view_count, started_at, ended_at"
            " from marts.fct_web_sessions"
        ).fetchall()
    assert [(r[0], r[1], str(r[2]), str(r[3])) for r in sessions] == [
        (3, 3, "2026-11-01 23:40:00", "2026-11-02 00:05:00")
    ]
