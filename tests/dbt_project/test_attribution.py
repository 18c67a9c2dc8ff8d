"""The marts' answers on the edge cases an analyst hits: an order placed a minute before its
customer's sign-up, a sign-up and an update in the same second, a confirmation page reloaded
days later, a refund in a later period. Two days of processed Parquet, built once on DuckDB;
each test asks one question of the result."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from local.processed_zone import write_day
from orchestration.settings import Settings, load_settings
from tests.dbt_project.engines import query
from tests.dbt_project.test_backfill import build, customer, line, order, request

pytestmark = pytest.mark.integration

DAY1, DAY2 = date(2026, 3, 1), date(2026, 3, 5)


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second)


def confirmation(day: date, session: str, minute: int, order_id: str) -> dict[str, Any]:
    return {**request(day, session, minute), "path": f"/checkout/confirmation?order_id={order_id}"}


def day1() -> dict[str, list[dict[str, Any]]]:
    return {
        "customers": [
            # Ordered at 09:59, signed up at 10:00.
            {**customer(DAY1, "early-signup", "CEARLY", "Berlin", "signup"),
             "event_at": at(DAY1, 10)},
            # A sign-up and an update in the same second; the update's id sorts first.
            {**customer(DAY1, "z-signup", "CSAME", "Berlin", "signup"), "event_at": at(DAY1, 12)},
            {**customer(DAY1, "a-update", "CSAME", "Hamburg", "profile_update"),
             "event_at": at(DAY1, 12)},
            customer(DAY1, "refund-signup", "CREFUND", "Berlin", "signup"),
        ],
        "orders": [
            {**order(DAY1, "OEARLY", "CEARLY", "placed", 9), "event_at": at(DAY1, 9, 59)},
            order(DAY1, "OEARLY", "CEARLY", "paid", 11),
            order(DAY1, "OSAME", "CSAME", "placed", 13),
            order(DAY1, "OREFUND", "CREFUND", "placed", 14),
            order(DAY1, "OREFUND", "CREFUND", "paid", 15),
        ],
        "order_lines": [line("OEARLY", 1), line("OSAME", 1), line("OREFUND", 2)],
        "web_requests": [
            request(DAY1, "visit", 0),
            confirmation(DAY1, "visit", 3, "OEARLY"),
        ],
    }  # fmt: skip


def day2() -> dict[str, list[dict[str, Any]]]:
    return {
        "customers": [],
        "orders": [order(DAY2, "OREFUND", "CREFUND", "refunded", 9)],
        "order_lines": [],
        # Four days later the visitor reloads the confirmation page: a new session.
        "web_requests": [confirmation(DAY2, "reload", 0, "OEARLY")],
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("attribution")
    write_day(root / "processed", DAY1, day1())
    write_day(root / "processed", DAY2, day2())
    settings = replace(load_settings("local"), work_dir=root / "warehouse")
    build(settings, root / "processed", run_date=DAY1)
    build(settings, root / "processed", run_date=DAY2)
    return settings


def ask(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    return query("duckdb", settings, sql)


def test_an_order_placed_before_the_sign_up_belongs_to_its_customer(built: Settings) -> None:
    rows = ask(
        built,
        "select orders.customer_key, customers.country_code from marts.fct_orders as orders"
        " inner join marts.dim_customers as customers using (customer_key)"
        " where orders.order_id = 'OEARLY'",
    )
    assert rows == [("CEARLY-early-signup", "DE")]
    lines = ask(built, "select customer_key from marts.fct_order_lines where order_id = 'OEARLY'")
    assert lines == [("CEARLY-early-signup",)]


def test_a_sign_up_and_an_update_in_one_second_leave_the_update_current(built: Settings) -> None:
    versions = ask(
        built,
        "select city, is_current, valid_to is null from marts.dim_customers"
        " where customer_id = 'CSAME' order by profile_version",
    )
    assert versions == [("Hamburg", True, True)]
    current = ask(built, "select city from marts.dim_customers_current where customer_id = 'CSAME'")
    assert current == [("Hamburg",)]
    zero_length = ask(built, "select count(*) from marts.dim_customers where valid_from = valid_to")
    assert zero_length == [(0,)]


def test_an_order_converts_one_session_the_earliest(built: Settings) -> None:
    sessions = ask(built, "select session_id from marts.fct_web_sessions where order_id = 'OEARLY'")
    assert sessions == [("visit",)]
    daily = ask(built, "select sum(converted_sessions) from marts.agg_web_traffic_daily")
    assert daily == [(1,)]


def test_customer_measures_live_on_the_customer_grain(built: Settings) -> None:
    columns = {
        row[0]
        for row in ask(
            built,
            "select column_name from information_schema.columns"
            " where table_schema = 'marts' and table_name = 'dim_customers'",
        )
    }
    assert columns.isdisjoint({"lifetime_value_usd", "order_count", "first_order_date"})
    lifetime = ask(built, "select sum(lifetime_value_usd) from marts.dim_customers_current")
    net = ask(built, "select sum(net_revenue_usd) from marts.fct_orders")
    paid = ask(built, "select order_total_usd from marts.fct_orders where order_id = 'OEARLY'")
    assert lifetime == net == paid and paid[0][0] > 0
    counts = ask(
        built,
        "select customer_id, order_count, first_order_date from marts.dim_customers_current"
        " where customer_id = 'CEARLY'",
    )
    assert counts == [("CEARLY", 1, DAY1)]


def test_a_refund_counts_on_its_own_day_by_refund_date(built: Settings) -> None:
    rows = ask(
        built,
        "select order_date, net_revenue_usd, refund_date, refunded_revenue_usd - order_total_usd"
        " from marts.fct_orders where order_id = 'OREFUND'",
    )
    assert rows == [(DAY1, Decimal("0.00"), DAY2, Decimal("0.00"))]
