"""Re-running or backfilling any day replaces exactly that run's rows in the marts.

Ten days of processed Parquet are built; then day 2 is rewritten with different rows (an
order gone, an order added, a line changed, a late profile change, a session gone) and
re-run, as a backfill does. The marts must equal a full refresh on the same input: rows
that day 2 no longer holds are gone, however far back day 2 lies.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from local.processed_zone import SCHEMAS, parquet_glob, write_day
from orchestration import stages
from orchestration.runners.dbt import run_dbt
from orchestration.settings import Settings, load_settings
from tests.dbt_project.engines import table_rows

pytestmark = pytest.mark.integration

DAYS = [date(2026, 3, 1) + timedelta(days=n) for n in range(10)]
REWRITTEN = DAYS[1]


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour)


def customer(day: date, event_id: str, customer_id: str, city: str, kind: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": kind,
        "event_at": at(day, 1),
        "customer_id": customer_id,
        "email": f"{customer_id}@example.com".lower(),
        "first_name": "Ann",
        "last_name": "Lee",
        "country_code": "DE",
        "city": city,
        "source_file": "customers.log",
    }


def order(day: date, order_id: str, customer_id: str, kind: str, hour: int) -> dict[str, Any]:
    return {
        "event_id": f"{order_id}-{kind}",
        "event_type": kind,
        "event_at": at(day, hour),
        "order_id": order_id,
        "customer_id": customer_id,
        "currency": "EUR",
        "line_count": 1 if kind == "placed" else 0,
        "source_file": "orders.log",
    }


def line(order_id: str, quantity: int, product: str = "P001") -> dict[str, Any]:
    return {
        "event_id": f"{order_id}-placed",
        "order_id": order_id,
        "line_number": 1,
        "product_id": product,
        "quantity": quantity,
        "unit_price": Decimal("19.90"),
    }


def request(day: date, session: str, minute: int) -> dict[str, Any]:
    return {
        "event_id": f"{session}-{minute}",
        "request_at": at(day, 12) + timedelta(minutes=minute),
        "client_ip": "0f" * 32,  # a pseudonym, as the Spark job writes the address
        "remote_user": None,
        "method": "GET",
        "path": "/",
        "protocol": "HTTP/2.0",
        "status": 200,
        "bytes_sent": 512,
        "referrer": None,
        "user_agent": "Mozilla/5.0",
        "is_bot": False,
        "is_page_view": True,
        "source_file": "access.log",
        "visitor_id": f"v-{session}",
        "session_id": session,
    }


def day_rows(day: date, index: int) -> dict[str, list[dict[str, Any]]]:
    """Each day: a customer signs up, orders, pays the previous day's order; a session."""
    cid = f"C{index}"
    rows: dict[str, list[dict[str, Any]]] = {
        "customers": [customer(day, f"c{index}", cid, "Berlin", "signup")],
        "orders": [order(day, f"O{index}", cid, "placed", 9)],
        "order_lines": [line(f"O{index}", 1 + index % 3)],
        "web_requests": [request(day, f"s{index}", m) for m in (0, 4)],
    }
    if index > 0:
        rows["orders"].append(order(day, f"O{index - 1}", f"C{index - 1}", "paid", 10))
    if day == REWRITTEN:
        rows["orders"].append(order(day, "Ogone", cid, "placed", 15))
        rows["order_lines"].append(line("Ogone", 1))
        # A visit from 23:40 that goes on past midnight, into the next run.
        rows["web_requests"] += [request(day, "span", m) for m in (700, 705, 710)]
    if index == DAYS.index(REWRITTEN) + 1:
        rows["web_requests"].append(request(REWRITTEN, "span", 725))
    return rows


def rewritten_day_2(day: date) -> dict[str, list[dict[str, Any]]]:
    """Day 2 again, changed: Ogone is gone, O1 lost its placed event and line (its payment
    on day 3 remains), O1b is new, C0 moved to Hamburg before ordering again, the session
    s1 is gone, O0 was paid later and the visit `span` lost its first two requests."""
    return {
        "customers": [
            customer(day, "c1", "C1", "Berlin", "signup"),
            customer(day, "c0-move", "C0", "Hamburg", "profile_update"),
        ],
        "orders": [
            order(day, "O1b", "C1", "placed", 11),
            order(day, "O0", "C0", "paid", 23),
            order(day, "O0b", "C0", "placed", 8),
        ],
        "order_lines": [line("O1b", 5, "P002"), line("O0b", 2)],
        "web_requests": [request(day, "s1b", 0), request(day, "span", 710)],
    }


def build(settings: Settings, root: Path, *args: str, run_date: date | None = None) -> None:
    env = {"SHOPLOGS_PROCESSED_PARQUET": parquet_glob(root), **stages.run_date_env(run_date)}
    run_dbt(settings, ["build", *args], settings.work_dir / "dbt.log", extra_env=env)


def marts(settings: Settings) -> dict[str, tuple[list[str], list[tuple]]]:
    return {mart: table_rows("duckdb", settings, f"marts.{mart}") for mart in stages.MARTS}


def test_a_rewritten_old_day_rerun_equals_a_full_refresh(tmp_path: Path) -> None:
    root = tmp_path / "processed"
    for index, day in enumerate(DAYS):
        write_day(root, day, day_rows(day, index))
    local = load_settings("local")
    incremental = replace(local, work_dir=tmp_path / "incremental")
    rebuilt = replace(local, work_dir=tmp_path / "rebuilt")

    build(incremental, root, run_date=DAYS[-1])
    before = marts(incremental)
    assert "Ogone" in {row[0] for row in before["fct_orders"][1]}

    write_day(root, REWRITTEN, rewritten_day_2(REWRITTEN))
    build(incremental, root, run_date=REWRITTEN)
    build(rebuilt, root, "--full-refresh")

    after, expected = marts(incremental), marts(rebuilt)
    orders = {row[0] for row in after["fct_orders"][1]}
    assert "Ogone" not in orders and {"O0b", "O1b"} <= orders
    columns, lines = after["fct_order_lines"]
    assert {row[columns.index("order_id")] for row in lines}.isdisjoint({"O1", "Ogone"})
    # The visit spanning days 2 and 3 is rebuilt from what day 2 holds now.
    columns, sessions = after["fct_web_sessions"]
    span = [row for row in sessions if row[columns.index("session_id")] == "span"]
    assert [
        (row[columns.index("request_count")], row[columns.index("started_at")]) for row in span
    ] == [("2", "2026-03-02 23:50:00")]
    for mart in stages.MARTS:
        assert after[mart] == expected[mart], mart


def test_a_nightly_run_reads_only_its_own_raw_partition(tmp_path: Path) -> None:
    """Once staged, old raw partitions are never read again: with them gone (expired from the
    lake, say), the next night's run still leaves every earlier order in the marts."""
    root = tmp_path / "processed"
    for index, day in enumerate(DAYS[:-1]):
        write_day(root, day, day_rows(day, index))
    settings = replace(load_settings("local"), work_dir=tmp_path / "warehouse")
    build(settings, root, run_date=DAYS[-2])

    for day in DAYS[:-1]:
        for table in SCHEMAS:
            (root / table / f"dt={day}" / "part-0.parquet").unlink()
    write_day(root, DAYS[-1], day_rows(DAYS[-1], len(DAYS) - 1))
    build(settings, root, run_date=DAYS[-1])

    orders = {row[0] for row in marts(settings)["fct_orders"][1]}
    assert orders == {f"O{index}" for index in range(len(DAYS))} | {"Ogone"}
