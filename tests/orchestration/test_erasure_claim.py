"""A run's claim takes erased customers' lines out of what it claimed: logs resent from
the hosts never put them back in the processing zone."""

from __future__ import annotations

from datetime import date
from typing import Any

from lake import layout
from lake.erasure import erased_of
from orchestration.erasure import scrub_claimed

DAY = date(2026, 11, 2)


def test_claimed_lines_of_an_erased_customer_are_dropped_or_tombstoned(s3: Any) -> None:
    bucket = "erasure-claim-lake"
    s3.create_bucket(Bucket=bucket)
    entry = erased_of("C000030", ["ava@example.com"], ["O1"])
    s3.put_object(Bucket=bucket, Key=layout.register_entry(entry.customer), Body=entry.to_json())
    raw = layout.raw_prefix(DAY)
    customers = (
        b"e1,signup,t,C000030,ava@example.com,A,D,FR,Paris\ne2,signup,t,C000031,b@x,B,C,FR,Paris\n"
    )
    orders = b'{"order_id": "O1", "customer_id": "C000030"}\n'
    s3.put_object(Bucket=bucket, Key=raw + "customers/a", Body=customers)
    s3.put_object(Bucket=bucket, Key=raw + "orders/a", Body=orders)
    assert scrub_claimed(s3, bucket, DAY) == 2
    body = s3.get_object(Bucket=bucket, Key=raw + "customers/a")["Body"].read()
    assert body == customers.splitlines(keepends=True)[1]
    body = s3.get_object(Bucket=bucket, Key=raw + "orders/a")["Body"].read()
    assert body == b'{"order_id": "O1", "customer_id": "-2"}\n'
    assert scrub_claimed(s3, bucket, DAY) == 0  # nothing left: a retry rewrites nothing
