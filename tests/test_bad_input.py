"""The bad-input corpus through the whole local pipeline: each bad case ends in quarantine
with its reason, and the good lines around it reach the marts."""

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
from shoplogs_agent.firehose import MAX_RECORD_BYTES

pytestmark = pytest.mark.integration

CUSTOMER = "{id},signup,2026-11-01T10:00:00Z,{customer},a@example.com,Ann,Lee,US,Austin\n"
ORDER = (
    '{{"event_id": "{id}", "event_type": "placed", "event_at": "2026-11-01T11:00:00Z", '
    '"order_id": "O1", "customer_id": "C1", "currency": "USD", "lines": [{{"line_number": 1, '
    '"product_id": "P001", "quantity": 1, "unit_price": 119.0}}]}}\n'
)
HIT = (
    '10.0.0.{n} - - [01/Nov/2026:12:00:0{n} +0000] "GET /p/{n} HTTP/1.1" 200 10 "-" "Mozilla/5.0"\n'
)


def corpus(folder: Path) -> dict[str, list[Path]]:
    """Each log: good lines around every kind of bad line; plus an empty file."""
    (folder / "empty.log").write_bytes(b"")
    customers = (
        CUSTOMER.format(id="c-1", customer="C1")
        + "c-2,signup,2026-11-01T10:00:00Z,C2\n"  # wrong column count
        + CUSTOMER.format(id="c-3", customer="C3")
    ).encode()
    orders = (
        ORDER.format(id="o-1")
        + ORDER.format(id="o-2")[:60]
        + "\n"  # truncated JSON
        + ORDER.format(id="o-1")  # a resend
    ).encode()
    web = (
        HIT.format(n=1).encode()
        + b"\x00\x01\x02\x03 binary garbage \x04\x05\n"
        + HIT.format(n=2).encode().replace(b"/p/2", b"/caf\xe9")  # Latin-1, not UTF-8
        + b'10.0.0.9 - - [01/Nov/2026:12:00:09 +0000] "\\x16\\x03\\x01" 400 0 "-" "-"\n'
        + b"x" * (MAX_RECORD_BYTES + 10)
        + b"\n"  # over Firehose's record limit
        + b"\n"  # an empty line: no event, and quarantined as such
        + b"    \n"  # a line of spaces: a line, and a bad one
        + HIT.format(n=3).encode()
        + HIT.format(n=4).encode().replace(b"Nov/2026", b"Oct/2015")  # an old log: any year
    )
    for name, data in [("customers.log", customers), ("orders.log", orders), ("access.log", web)]:
        (folder / name).write_bytes(data)
    return {
        "customers": [folder / "customers.log", folder / "empty.log"],
        "orders": [folder / "orders.log"],
        "web": [folder / "access.log"],
    }


def test_every_bad_case_is_quarantined_with_its_reason(
    tmp_path: Path, own_aws_endpoint: str
) -> None:
    settings = replace(load_settings("local"), work_dir=tmp_path, lake_bucket="corpus-lake")
    settings = settings.with_endpoint(own_aws_endpoint)
    report = run_pipeline(settings, corpus(tmp_path))

    assert reconcile(report) == []
    quarantined = {name: dict(counts.quarantined) for name, counts in report.streams.items()}
    assert quarantined == {
        "customers": {"wrong_column_count": 1},
        "orders": {"unparseable": 1},
        "web": {"binary_content": 1, "empty_line": 1, "invalid_encoding": 1,
                "malformed_request": 1, "record_too_large": 1, "unparseable": 1},
    }  # fmt: skip
    assert report.streams["orders"].duplicates == 1
    # The run report shows a line of each reason, the shipper's rejects included.
    samples = report.quarantine_samples
    assert {name: set(by) for name, by in samples.items()} == {
        name: set(by) for name, by in quarantined.items()
    }
    assert samples["customers"]["wrong_column_count"].line == "c-2,signup,2026-11-01T10:00:00Z,C2"
    assert "binary garbage" in samples["web"]["binary_content"].line
    too_large = samples["web"]["record_too_large"]
    assert too_large.line.startswith("xxx") and len(too_large.line) <= 160
    assert too_large.detail.endswith(" bytes")
    s3 = boto3.client("s3", endpoint_url=own_aws_endpoint, region_name="us-east-1")
    reasons = {
        json.loads(line)["reason"]
        for key in zones.list_keys(s3, "corpus-lake", "quarantine/")
        for line in s3.get_object(Bucket="corpus-lake", Key=key)["Body"].read().splitlines()
    }
    assert reasons == {"wrong_column_count", "unparseable", "binary_content", "empty_line",
                       "invalid_encoding", "malformed_request", "record_too_large"}  # fmt: skip
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        customers = con.execute("select customer_id from marts.dim_customers order by 1")
        # The good customers, the unknown member '-1' that late orders point at, and the
        # erased member '-2' that keeps the orders of customers erased on request.
        assert customers.fetchall() == [("-1",), ("-2",), ("C1",), ("C3",)]
        assert con.execute("select count(*) from marts.fct_orders").fetchone() == (1,)
        requests = con.execute("select sum(request_count) from marts.fct_web_sessions")
        assert requests.fetchone() == (3,)  # the request of 2015 too: dim_date has its day
