"""Customer CSV and order JSON lines: typing, UTC, validation reasons, de-duplication."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from decimal import Decimal

import pytest

from orchestration.settings import REPO_ROOT
from preprocess import customers, orders

pytestmark = pytest.mark.integration


def customer(event_id: str = "e1", at: str = "2026-11-01T10:00:00+02:00", **over: str) -> str:
    values = {
        "event_id": event_id,
        "event_type": "signup",
        "event_at": at,
        "customer_id": "C1",
        "email": "Ann@Example.com",
        "first_name": "Ann",
        "last_name": "O'Neil",
        "country_code": "US",
        "city": '"Washington, D.C."',
    }
    values.update(over)
    return ",".join(values.values())


def order(event_id: str = "o-e1", **over: object) -> str:
    event = {
        "event_id": event_id,
        "event_type": "placed",
        "event_at": "2026-11-01T10:00:00Z",
        "order_id": "O1",
        "customer_id": "C1",
        "currency": "EUR",
        "lines": [{"line_number": 1, "product_id": "P001", "quantity": 2, "unit_price": 19.99}],
    }
    event.update(over)
    return json.dumps(event)


def test_customers_are_typed_quoted_fields_kept_and_times_in_utc(lines) -> None:
    result = customers.transform(lines([customer()]))
    row = result.datasets["customers"].collect()[0]
    assert row["event_at"] == datetime(2026, 11, 1, 8, 0, 0)
    assert row["city"] == "Washington, D.C." and row["email"] == "ann@example.com"


def test_bad_customer_lines_get_reasons_and_duplicates_are_counted(lines) -> None:
    raw = [
        customer("e1"),
        customer("e1"),  # a resend
        "e2,signup,2026-11-01T10:00:00Z,C2",
        customer("e3", at="yesterday"),
        customer("e4", event_type="deleted"),
        customer("e5", customer_id=""),
    ]
    result = customers.transform(lines(raw))
    reasons = sorted(r["reason"] for r in result.quarantine.collect())
    assert reasons == ["invalid_timestamp", "invalid_value", "missing_field", "wrong_column_count"]
    assert result.stats.processed == 1 and result.stats.duplicates == 1


def test_orders_are_flattened_into_events_and_lines(lines) -> None:
    result = orders.transform(lines([order(), order("o-e2", event_type="paid", lines=[])]))
    events = {r["event_type"]: r for r in result.datasets["orders"].collect()}
    assert events["placed"]["line_count"] == 1 and events["paid"]["line_count"] == 0
    [line] = result.datasets["order_lines"].collect()
    assert (line["product_id"], line["quantity"], line["unit_price"]) == (
        "P001",
        2,
        Decimal("19.99"),
    )


def test_bad_order_lines_get_reasons(lines) -> None:
    raw = [
        order()[:40],
        order("x2", order_id=None),
        order("x3", event_at="2026-13-45T99:00:00Z"),
        order("x4", lines=[]),
        order("x5", lines=[{"line_number": 1, "product_id": "P1", "quantity": 0, "unit_price": 1}]),
        order("x6", currency="euro"),
    ]
    result = orders.transform(lines(raw))
    reasons = {r["raw_line"]: r["reason"] for r in result.quarantine.collect()}
    assert list(reasons.values()).count("invalid_value") == 3
    assert sorted(set(reasons.values())) == [
        "invalid_timestamp",
        "invalid_value",
        "missing_field",
        "unparseable",
    ]
    assert result.stats.processed == 0


def test_an_order_in_a_currency_without_rates_is_quarantined_with_the_reason(lines) -> None:
    result = orders.transform(lines([order("x1", currency="JPY"), order("x2")]))
    [bad] = result.quarantine.collect()
    assert bad["reason"] == "invalid_value"
    assert "exchange rates cover ('EUR', 'GBP', 'USD'): JPY" in bad["detail"]
    assert result.stats.processed == 1


def test_the_accepted_currencies_are_the_ones_the_exchange_rates_cover() -> None:
    seed = REPO_ROOT / "dbt_project" / "seeds" / "exchange_rates.csv"
    with seed.open(newline="") as rates:
        covered = {row["currency_code"] for row in csv.DictReader(rates)}
    assert covered == set(orders.SUPPORTED_CURRENCIES)
