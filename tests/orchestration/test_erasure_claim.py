"""A run's claim takes erased customers' lines out of what it claimed: logs resent from
the hosts never put them back in the processing zone, and the run counts them, once."""

from __future__ import annotations

from datetime import date
from typing import Any

from lake import layout, wire
from lake.erasure import erased_of
from orchestration.erasure import claim_erasures, scrub_claimed

DAY = date(2026, 11, 2)


def registered(s3: Any, bucket: str) -> None:
    s3.create_bucket(Bucket=bucket)
    entry = erased_of("C000030", ["ava@example.com"], ["O1"])
    s3.put_object(Bucket=bucket, Key=layout.register_entry(entry.customer), Body=entry.to_json())


def test_claimed_lines_of_an_erased_customer_are_dropped_or_tombstoned(s3: Any) -> None:
    bucket = "erasure-claim-lake"
    registered(s3, bucket)
    raw = layout.raw_prefix(DAY)
    customers = (
        b"e1,signup,t,C000030,ava@example.com,A,D,FR,Paris\ne2,signup,t,C000031,b@x,B,C,FR,Paris\n"
    )
    orders = b'{"order_id": "O1", "customer_id": "C000030"}\n'
    s3.put_object(Bucket=bucket, Key=raw + "customers/a", Body=customers)
    s3.put_object(Bucket=bucket, Key=raw + "orders/a", Body=orders)
    # The profile line left the run; the order line stays in it, under the tombstone.
    assert scrub_claimed(s3, bucket, DAY) == {"customers": 1}
    body = s3.get_object(Bucket=bucket, Key=raw + "customers/a")["Body"].read()
    assert body == customers.splitlines(keepends=True)[1]
    body = s3.get_object(Bucket=bucket, Key=raw + "orders/a")["Body"].read()
    assert body == b'{"order_id": "O1", "customer_id": "-2"}\n'
    assert scrub_claimed(s3, bucket, DAY) == {}  # nothing left: a retry rewrites nothing
    assert claim_erasures(s3, bucket, DAY) == {"customers": 1}  # and the count stays


def test_the_erased_lines_of_a_shipper_record_are_counted_line_by_line(s3: Any) -> None:
    bucket = "erasure-claim-records"
    registered(s3, bucket)
    lines = [b"e1,signup,t,C000030,a,b,c,DE,x", b"e2,update,t,C000030,a,b,c,DE,y",
             b"e3,signup,t,C000031,a,b,c,DE,x"]  # fmt: skip
    record = wire.RECORD_MAGIC + b"host fp 0 3" + wire.SEPARATOR + wire.SEPARATOR.join(lines)
    s3.put_object(Bucket=bucket, Key=layout.raw_prefix(DAY) + "customers/a", Body=record + b"\n")
    assert scrub_claimed(s3, bucket, DAY) == {"customers": 2}
    assert claim_erasures(s3, bucket, DAY) == {"customers": 2}


def test_a_claim_retried_after_a_crash_counts_each_erased_line_once(s3: Any) -> None:
    bucket = "erasure-claim-retry"
    registered(s3, bucket)
    key = layout.raw_prefix(DAY) + "customers/a"
    original = b"e1,signup,t,C000030,ava@example.com,A,D,FR,Paris\ne2,signup,t,C9,b@x,B,C,FR,P\n"
    s3.put_object(Bucket=bucket, Key=key, Body=original)
    scrub_claimed(s3, bucket, DAY)
    # The first attempt died after recording its count, before the object was replaced
    # (or a copy from landing came back): the retry rewrites the same body again.
    s3.put_object(Bucket=bucket, Key=key, Body=original)
    scrub_claimed(s3, bucket, DAY)
    scrub_claimed(s3, bucket, DAY)
    assert claim_erasures(s3, bucket, DAY) == {"customers": 1}
    # A second object claimed by the retry adds its own.
    s3.put_object(Bucket=bucket, Key=key + "2", Body=original.splitlines(keepends=True)[0])
    assert scrub_claimed(s3, bucket, DAY) == {"customers": 1}
    assert claim_erasures(s3, bucket, DAY) == {"customers": 2}
