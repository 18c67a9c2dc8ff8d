"""Hostile or broken input never stops a run: every line is processed or quarantined with a
reason, whatever its size, and the good lines around it load. And any year is a year."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import pytest

from preprocess import customers, orders, web
from preprocess.common import MAX_FIELD_BYTES, RunContext
from tests.spark.keys import KEY

pytestmark = pytest.mark.integration

RUN = RunContext(date(2026, 11, 21), pseudonym_key=KEY)
GOOD = '10.0.0.1 - - [21/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "Mozilla/5.0"'


def request(path: str = "/", agent: str = "Mozilla/5.0", when: str = "21/Nov/2026:10:00:01") -> str:
    return f'10.0.0.2 - - [{when} +0000] "GET {path} HTTP/1.1" 200 5 "-" "{agent}"'


def outcome(result: Any) -> tuple[int, dict[str, int]]:
    return result.stats.processed, dict(result.stats.quarantined)


def test_huge_fields_in_an_access_log_are_parsed(lines: Any) -> None:
    """Every field up to the longest string every warehouse loads (Redshift's 65,535 bytes)
    loads; a longer one is parsed, then quarantined as field_too_long, never a crash."""
    fits = "A" * MAX_FIELD_BYTES
    raw = [GOOD, request(agent=fits), request(path="/ü" + "p" * (MAX_FIELD_BYTES - 3)),
           request(agent="B" * (MAX_FIELD_BYTES + 1)), request(path="/" + "p" * 1024 * 1024),
           request(agent='x \\"quoted\\" ' * 20_000)]  # fmt: skip
    result = web.transform(lines(raw), RUN)
    assert outcome(result) == (3, {"field_too_long": 3})
    agents = {len(r["user_agent"]) for r in result.datasets["web_requests"].collect()}
    assert MAX_FIELD_BYTES in agents
    details = sorted(r["detail"] for r in result.quarantine.collect())
    assert details == [f"{field} is longer than 65535 bytes"
                       for field in ("path", "user_agent", "user_agent")]  # fmt: skip


def test_an_overlong_field_is_quarantined_in_customers_and_orders(lines: Any) -> None:
    line = {"line_number": 1, "product_id": "P1", "quantity": 1, "unit_price": 2.5}
    event = {"event_id": "e1", "event_type": "placed", "event_at": "2026-11-21T10:00:00Z",
             "order_id": "O1", "customer_id": "C1", "currency": "EUR", "lines": [line]}  # fmt: skip
    long_id = {**line, "product_id": "P" * (MAX_FIELD_BYTES + 1)}
    long_line = {**event, "event_id": "e2", "lines": [long_id]}
    result = orders.transform(lines([json.dumps(event), json.dumps(long_line)]), RUN)
    assert outcome(result) == (1, {"field_too_long": 1})
    [bad] = result.quarantine.collect()
    assert bad["detail"] == "line_product_id is longer than 65535 bytes"
    long_email = CUSTOMER.replace("a@example.com", "a" * MAX_FIELD_BYTES + "@x").format(city="X")
    result = customers.transform(lines([long_email]), RUN)
    assert outcome(result) == (0, {"field_too_long": 1})


def test_a_multi_megabyte_line_is_quarantined_in_every_stream(lines: Any) -> None:
    junk = "x" * (3 * 1024 * 1024)
    assert outcome(web.transform(lines([GOOD, junk]), RUN)) == (1, {"unparseable": 1})
    event = {"event_id": "e1", "event_type": "paid", "event_at": "2026-11-21T10:00:00Z",
             "order_id": "O1", "customer_id": "C1", "currency": "EUR", "lines": []}  # fmt: skip
    assert outcome(orders.transform(lines([json.dumps(event), junk]), RUN)) == (
        1, {"unparseable": 1}
    )  # fmt: skip
    huge_json = json.dumps({**event, "event_id": "e2", "note": junk})
    assert outcome(orders.transform(lines([huge_json]), RUN)) == (1, {})


CUSTOMER = "c1,signup,2026-11-21T10:00:00Z,C1,a@example.com,Ann,Lee,US,{city}"


def test_a_csv_field_of_100k_commas(lines: Any) -> None:
    quoted = CUSTOMER.format(city='"' + "," * 100_000 + '"')
    unquoted = CUSTOMER.replace("c1,", "c2,").format(city="," * 100_000)
    good = CUSTOMER.replace("c1,", "c3,").format(city='"Washington, D.C."')
    fits = CUSTOMER.replace("c1,", "c4,").format(city='"' + "," * 60_000 + '"')
    result = customers.transform(lines([quoted, unquoted, good, fits]), RUN)
    assert outcome(result) == (2, {"wrong_column_count": 1, "field_too_long": 1})
    cities = {r["event_id"]: r["city"] for r in result.datasets["customers"].collect()}
    assert cities == {"c3": "Washington, D.C.", "c4": "," * 60_000}
    details = {r["reason"]: r["detail"] for r in result.quarantine.collect()}
    assert details == {
        "wrong_column_count": "expected 9 columns, found 100009",
        "field_too_long": "city is longer than 65535 bytes",
    }


def test_any_real_year_is_valid_and_an_impossible_time_is_not(lines: Any) -> None:
    raw = [
        request(when="10/Oct/2015:13:55:36"),  # an old log replayed today
        request(path="/y", when="01/Nov/20260:00:00:00"),  # a five-digit year
        request(path="/z", when="30/Nov/2026:00:00:00"),  # days after the run's date
        request(path="/s", when="22/Nov/2026:23:59:59"),  # within a day of clock skew
    ]
    result = web.transform(lines(raw), RUN)
    kept = {r["path"]: r["request_at"] for r in result.datasets["web_requests"].collect()}
    assert kept == {"/": datetime(2015, 10, 10, 13, 55, 36),
                    "/s": datetime(2026, 11, 22, 23, 59, 59)}  # fmt: skip
    assert outcome(result)[1] == {"invalid_timestamp": 2}
    future = CUSTOMER.replace("2026-11-21", "20260-11-21").format(city="Austin")
    old = CUSTOMER.replace("2026-11-21", "2015-01-01").replace("c1,", "c9,").format(city="x")
    assert outcome(customers.transform(lines([future, old]), RUN)) == (
        1, {"invalid_timestamp": 1}
    )  # fmt: skip
