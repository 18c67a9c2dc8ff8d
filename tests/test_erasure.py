"""Erasure on request, end to end on DuckDB: a copy of the demo run's lake and warehouse,
one customer erased; then no zone and no table holds their email or ids, every mart still
adds up, erasing again is a recorded no-op, and neither a re-run of the past date nor a
resend of the shop's logs brings the customer back."""

from __future__ import annotations

import base64
import gzip
import io
import json
import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import duckdb
import pyarrow.parquet as pq
import pytest

from lake import layout, wire, zones
from lake.erasure import TOMBSTONE_CUSTOMER_ID, identifier_hash
from lake.manifest import read_manifest
from local.aws import provision_local, ship_logs
from orchestration import erasure, stages
from orchestration.settings import Settings

pytestmark = pytest.mark.integration

ERASED_AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
# What must still add up after the erasure: revenue and counts of every mart.
TOTALS = {
    "fct_orders": "count(*), sum(order_total_usd), sum(net_revenue_usd),"
    " sum(refunded_revenue_usd), sum(line_count)",
    "fct_order_lines": "count(*), sum(line_amount_usd), sum(net_revenue_usd)",
    "dim_customers_current": "sum(lifetime_value_usd), sum(order_count)",
    "fct_web_sessions": "count(*), sum(request_count), sum(page_view_count), count(order_id)",
    "agg_web_traffic_daily": "sum(sessions), sum(converted_sessions)",
}


def mart_totals(settings: Settings) -> dict[str, tuple]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        return {
            mart: tuple(con.execute(f"select {sql} from marts.{mart}").fetchone() or ())
            for mart, sql in TOTALS.items()
        }


def pattern(values: list[str]) -> re.Pattern[bytes]:
    """Any of the values as a whole word (C0007 must not hit C00071)."""
    words = "|".join(re.escape(v) for v in values)
    return re.compile(f"(?<![A-Za-z0-9])(?:{words})(?![A-Za-z0-9])".encode(), re.IGNORECASE)


RAW_DATA = re.compile(rb'"rawData"\s*:\s*"([A-Za-z0-9+/=]*)"')


def lake_hits(s3: Any, bucket: str, found: re.Pattern[bytes]) -> list[str]:
    """Every object of the bucket (Parquet read row by row, gzip opened, the base64 records
    of Firehose's error output decoded) holding a match."""
    hits = []
    for key in zones.list_keys(s3, bucket, ""):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if key.endswith(".parquet"):
            body = repr(pq.read_table(io.BytesIO(body)).to_pylist()).encode()
        elif body.startswith(b"\x1f\x8b"):
            body = zones.gunzip(body)[0]
        body += b"\n".join(base64.b64decode(raw) for raw in RAW_DATA.findall(body))
        if found.search(body):
            hits.append(key)
    return hits


def firehose_errors(*records: bytes) -> bytes:
    """An object of Firehose's error output: a JSON document per undelivered record."""
    return b"".join(
        json.dumps({"attemptsMade": 4, "arrivalTimestamp": 1764504000000,
                    "errorCode": "S3.KMS.AccessDeniedException", "errorMessage": "denied",
                    "rawData": base64.b64encode(r).decode()}).encode() + b"\n"
        for r in records
    )  # fmt: skip


# Where the customer may hide beyond the zones a run writes: what Firehose could not deliver
# (the local stack's prefix and AWS's), the Spark and EMR logs, and a test's stored failures.
LANDING_ERRORS = layout.landing_errors_prefix("customers") + "2026/11/30/11/errors-1"
FIREHOSE_ERRORS = layout.FIREHOSE_ERRORS + "orders/2026/11/30/11/errors-1.gz"
EMR_LOG = layout.EMR_LOGS + "j-1PLANTED/steps/s-1PLANTED/stderr.gz"
OTHER_PROFILE = b"e-planted-2,signup,2026-11-01T10:00:00Z,C-nobody,nobody@example.com,N,B,DE,Bonn\n"


def plant(s3: Any, settings: Settings, customer_id: str, email: str, order_id: str) -> None:
    """One object or row naming the customer in each place the zones' search used to miss."""
    profile = f"e-planted,signup,2026-11-01T10:00:00Z,{customer_id},{email},A,B,DE,Berlin\n"
    order = json.dumps({"order_id": order_id, "customer_id": customer_id}) + "\n"
    log = f"INFO parsing line 12 of customers.log: {customer_id},{email}\nINFO done\n"
    bucket = settings.lake_bucket
    s3.put_object(Bucket=bucket, Key=LANDING_ERRORS,
                  Body=firehose_errors(profile.encode(), OTHER_PROFILE))  # fmt: skip
    s3.put_object(Bucket=bucket, Key=FIREHOSE_ERRORS,
                  Body=gzip.compress(firehose_errors(order.encode())))  # fmt: skip
    s3.put_object(Bucket=bucket, Key=EMR_LOG, Body=gzip.compress(log.encode()))
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute("create schema if not exists audit")
        con.execute("create table audit.planted_failures (from_field varchar, n_records int)")
        con.execute("insert into audit.planted_failures values (?, 1), (?, 2), ('C-nobody', 3)",
                    [customer_id, email])  # fmt: skip


def warehouse_hits(settings: Settings, found: re.Pattern[bytes]) -> list[str]:
    """Every table and view of the warehouse holding a match, in any column."""
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        relations = con.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_schema not in ('information_schema', 'pg_catalog')"
        ).fetchall()
        return [
            f"{schema}.{name}"
            for schema, name in relations
            if found.search(repr(con.execute(f'select * from "{schema}"."{name}"').fetchall())
                            .encode())
        ]  # fmt: skip


@pytest.fixture(scope="module")
def lake(
    demo_run: dict[str, Any], own_aws_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The demo run's lake and warehouse copied (the shared run stays as it was), and the
    customer to erase: the one with most orders, one of whose sessions placed an order."""
    demo: Settings = demo_run["settings"]
    work = tmp_path_factory.mktemp("erasure")
    settings = replace(demo, work_dir=work, lake_bucket="erasure-lake")
    settings = settings.with_endpoint(own_aws_endpoint)
    provision_local(settings)
    source = boto3.client("s3", endpoint_url=demo.aws_endpoint_url, region_name=demo.region)
    target = stages.aws_client(settings, "s3")
    for key in zones.list_keys(source, demo.lake_bucket, ""):
        got = source.get_object(Bucket=demo.lake_bucket, Key=key)
        target.put_object(Bucket=settings.lake_bucket, Key=key, Body=got["Body"].read(),
                          ContentType=got.get("ContentType", "binary/octet-stream"))  # fmt: skip
    settings.duckdb_path.parent.mkdir(parents=True)
    shutil.copy(demo.duckdb_path, settings.duckdb_path)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        customer_id, email = con.execute(
            "select orders.customer_id, max(customers.email) from marts.fct_orders as orders"
            " inner join marts.dim_customers as customers"
            " on orders.customer_id = customers.customer_id"
            " where orders.order_id in (select order_id from marts.fct_web_sessions)"
            " group by 1 order by count(distinct orders.order_id) desc, 1 limit 1"
        ).fetchone()
        orders = [r[0] for r in con.execute(
            "select order_id from marts.fct_orders where customer_id = ?", [customer_id]
        ).fetchall()]  # fmt: skip
    before = mart_totals(settings)
    plant(target, settings, customer_id, email, orders[0])
    audit = erasure.erase_customer(settings, customer_id, "privacy-desk", ERASED_AT)
    return {"settings": settings, "customer_id": customer_id, "email": email,
            "orders": orders, "before": before, "audit": audit, "demo": demo_run}  # fmt: skip


def test_no_zone_and_no_table_holds_the_customer(lake: dict[str, Any]) -> None:
    settings = lake["settings"]
    found = pattern([lake["customer_id"], lake["email"]])
    s3 = stages.aws_client(settings, "s3")
    # The copy held them in every zone before: landing, processing, processed, quarantine.
    assert lake["audit"].counts["processed"]["customers rows"] > 0
    assert lake_hits(s3, settings.lake_bucket, found) == []
    assert warehouse_hits(settings, found) == []


def test_what_the_runs_do_not_write_is_scrubbed_too(lake: dict[str, Any]) -> None:
    settings = lake["settings"]
    s3 = stages.aws_client(settings, "s3")

    def body(key: str) -> bytes:
        got = s3.get_object(Bucket=settings.lake_bucket, Key=key)["Body"].read()
        return zones.gunzip(got)[0] if got.startswith(b"\x1f\x8b") else got

    # Firehose's undelivered records: their profile record went, the other stayed; their
    # order record stayed under the tombstone.
    [other] = [json.loads(line) for line in body(LANDING_ERRORS).splitlines()]
    assert base64.b64decode(other["rawData"]) == OTHER_PROFILE
    [order] = [json.loads(line) for line in body(FIREHOSE_ERRORS).splitlines()]
    assert json.loads(base64.b64decode(order["rawData"])) == {
        "order_id": lake["orders"][0], "customer_id": TOMBSTONE_CUSTOMER_ID
    }  # fmt: skip
    # The EMR step log keeps its lines, without the identifiers.
    assert body(EMR_LOG) == b"INFO parsing line 12 of customers.log: [erased],[erased]\nINFO done\n"
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        left = con.execute("select from_field from audit.planted_failures").fetchall()
    assert left == [("C-nobody",)]
    counts = lake["audit"].counts
    assert counts["landing-errors"]["lines dropped"] == 1
    assert counts["emr-logs"]["mentions redacted"] == 2
    assert counts["warehouse"]["audit.planted_failures"] == 2


def test_every_mart_still_adds_up(lake: dict[str, Any]) -> None:
    settings = lake["settings"]
    assert mart_totals(settings) == lake["before"]
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        kept = con.execute(
            "select order_id, customer_key from marts.fct_orders where customer_id = ?",
            [TOMBSTONE_CUSTOMER_ID],
        ).fetchall()
        assert sorted(kept) == sorted((o, TOMBSTONE_CUSTOMER_ID) for o in lake["orders"])
        lifetime, net = con.execute(
            "select (select sum(lifetime_value_usd) from marts.dim_customers_current),"
            " (select sum(net_revenue_usd) from marts.fct_orders)"
        ).fetchone()
        assert lifetime == net
        # The sessions that placed their orders are still counted, with no visitor.
        visitors = con.execute(
            "select distinct visitor_id from marts.fct_web_sessions where order_id in"
            " (select order_id from marts.fct_orders where customer_id = ?)",
            [TOMBSTONE_CUSTOMER_ID],
        ).fetchall()
        assert visitors == [("erased",)]


def test_the_audit_record_counts_per_zone_without_the_identifiers(lake: dict[str, Any]) -> None:
    settings, audit = lake["settings"], lake["audit"]
    s3 = stages.aws_client(settings, "s3")
    customer_hash = identifier_hash(lake["customer_id"])
    key = layout.erasure_audit(customer_hash, audit.erased_at)
    record = json.loads(s3.get_object(Bucket=settings.lake_bucket, Key=key)["Body"].read())
    assert record["requested_by"] == "privacy-desk"
    assert record["erased_at"] == "2026-11-30T12:00:00+00:00"
    assert record["customer_hash"] == customer_hash and not record["already_erased"]
    counts = record["counts"]
    # Landing is empty once a run claimed it; the claimed copies are under processing/.
    assert {"processing", "processed", "warehouse"} <= set(counts)
    assert counts["warehouse"]["marts.dim_customers"] > 0
    assert counts["warehouse"]["marts.fct_orders"] == len(lake["orders"])
    assert counts["processed"]["orders rows"] > 0 and counts["processed"]["web_requests rows"] > 0


def test_erasing_again_is_a_recorded_no_op(lake: dict[str, Any]) -> None:
    settings = lake["settings"]
    later = ERASED_AT.replace(hour=13)
    again = erasure.erase_customer(settings, lake["customer_id"], "privacy-desk", later)
    assert again.already_erased and again.nothing_left
    record = json.loads(
        stages.aws_client(settings, "s3").get_object(
            Bucket=settings.lake_bucket, Key=layout.erasure_audit(again.customer_hash,
                                                                  again.erased_at)
        )["Body"].read()
    )  # fmt: skip
    assert record["nothing_left_to_remove"] is True and record["counts"] == {}
    assert mart_totals(settings) == lake["before"]


def raw_lines(s3: Any, bucket: str, prefix: str) -> dict[str, int]:
    """Log lines per stream in the raw objects under ``prefix`` (shipper records opened),
    counted as the Spark job counts them."""
    counts: dict[str, int] = {}
    for key in zones.list_keys(s3, bucket, prefix):
        stream = key.removeprefix(prefix).split("/", 1)[0]
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        text = zones.gunzip(body)[0] if body.startswith(b"\x1f\x8b") else body
        delivered = text.removesuffix(b"\n").split(b"\n") if text else []
        lines = [line for d in delivered for line in wire.lines_of(d)]
        counts[stream] = counts.get(stream, 0) + len(lines)
    return counts


def test_a_rerun_of_the_past_date_and_a_resend_do_not_bring_them_back(
    lake: dict[str, Any],
) -> None:
    settings, run_date = lake["settings"], lake["demo"]["run_date"]
    s3 = stages.aws_client(settings, "s3")
    # What the past date's raw objects hold after the erasure (what it removed there is in
    # its audit record), before anything new lands.
    assert zones.list_keys(s3, settings.lake_bucket, layout.LANDING) == []
    kept = raw_lines(s3, settings.lake_bucket, layout.raw_prefix(run_date))
    # The shop's hosts still hold the old logs: a shipper resending everything, then the
    # past date run again, every stage.
    shipped = ship_logs(settings, lake["demo"]["files"])
    stages.claim_landing(settings, run_date)
    stages.preprocess_locally(settings, run_date)
    manifest = stages.promote_zones(settings, run_date)
    stages.build_warehouse(settings, run_date=run_date)
    found = pattern([lake["customer_id"], lake["email"]])
    assert lake_hits(s3, settings.lake_bucket, found) == []
    assert warehouse_hits(settings, found) == []
    assert mart_totals(settings) == lake["before"]
    # Their resent profile lines were taken out at the claim (erasure.scrub_claimed), so the
    # run never read them; the manifest counts them as erased, and every line that entered
    # the run (what its raw objects held, and what the shipper sent again) is accounted for.
    streams = manifest.stats.streams
    assert streams["customers"].erased > 0
    for name, ship in shipped.items():
        entered = kept.get(name, 0) + ship.lines_shipped
        s = streams[name]
        assert (name, entered) == (
            name, s.processed + s.quarantined_total + s.duplicates + s.erased
        )  # fmt: skip
        assert s.read + s.erased == entered
    written = read_manifest(s3, settings.lake_bucket, run_date)
    assert written.stats.streams["customers"].erased == streams["customers"].erased
    stages.build_warehouse(settings, "--full-refresh")
    assert warehouse_hits(settings, found) == []
    assert mart_totals(settings) == lake["before"]


def test_a_bad_customer_id_is_refused_naming_it(lake: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"'a b'.*make erase CUSTOMER="):
        erasure.erase_customer(lake["settings"], "a b", "privacy-desk", ERASED_AT)
    with pytest.raises(ValueError, match="reserved"):
        erasure.erase_customer(lake["settings"], TOMBSTONE_CUSTOMER_ID, "x", ERASED_AT)
