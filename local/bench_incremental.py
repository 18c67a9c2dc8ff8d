"""How the dbt build's cost grows with history: N daily runs on DuckDB, each building its
own run date, as the nightly DAG does. With staging incremental and the facts replacing
only the run's customers, the last day's build should cost about what the first did.

The days are written straight into a processed zone (local/processed_zone.py) with the
demo's daily volumes, so the bench measures dbt alone, not Spark.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from local.processed_zone import parquet_glob, write_day
from orchestration import stages
from orchestration.runners.dbt import run_dbt
from orchestration.settings import Settings

FIRST_DAY = date(2026, 10, 1)
PRODUCTS = [f"P{n:03d}" for n in range(1, 21)]  # the seeded products


def day_rows(day: date, customers: int, sessions: int, rng: random.Random) -> dict[str, Any]:
    """One day: new customers sign up and place an order each, a fifth of the earlier
    customers order again, yesterday's orders are paid; sessions of a few page views."""
    start = datetime(day.year, day.month, day.day)
    index = (day - FIRST_DAY).days
    rows: dict[str, list[dict[str, Any]]] = {n: [] for n in ("customers", "orders", "order_lines",
                                                               "web_requests")}  # fmt: skip
    for n in range(customers):
        cid = f"C{index}-{n}"
        at = start + timedelta(seconds=rng.randrange(80_000))
        rows["customers"].append({
            "event_id": f"c-{cid}", "event_type": "signup", "event_at": at, "customer_id": cid,
            "email": f"{cid.lower()}@example.com", "first_name": "Ann", "last_name": "Lee",
            "country_code": rng.choice(["DE", "FR", "GB", "US"]), "city": "Berlin",
            "source_file": "customers.log",
        })  # fmt: skip
        buyers = [cid] + ([f"C{rng.randrange(index)}-{n}"] if index and n % 5 == 0 else [])
        for order_no, buyer in enumerate(buyers):
            oid = f"O{index}-{n}-{order_no}"
            placed = at + timedelta(minutes=5 + order_no)
            rows["orders"].append({
                "event_id": f"{oid}-placed", "event_type": "placed", "event_at": placed,
                "order_id": oid, "customer_id": buyer, "currency": "EUR", "line_count": 1,
                "source_file": "orders.log",
            })  # fmt: skip
            rows["order_lines"].append({
                "event_id": f"{oid}-placed", "order_id": oid, "line_number": 1,
                "product_id": rng.choice(PRODUCTS), "quantity": 1 + rng.randrange(3),
                "unit_price": Decimal("19.90"),
            })  # fmt: skip
        if index:
            rows["orders"].append({
                "event_id": f"O{index - 1}-{n}-0-paid", "event_type": "paid",
                "event_at": start + timedelta(minutes=n % 600), "order_id": f"O{index - 1}-{n}-0",
                "customer_id": f"C{index - 1}-{n}", "currency": "EUR", "line_count": 0,
                "source_file": "orders.log",
            })  # fmt: skip
    for n in range(sessions):
        sid = f"s{index}-{n}"
        began = start + timedelta(seconds=rng.randrange(80_000))
        for step in range(1 + rng.randrange(6)):
            rows["web_requests"].append({
                "event_id": f"{sid}-{step}", "request_at": began + timedelta(seconds=30 * step),
                "client_ip": "0f" * 32, "remote_user": None, "method": "GET",
                "path": f"/products/{rng.choice(PRODUCTS)}", "protocol": "HTTP/2.0",
                "status": 200, "bytes_sent": 2048, "referrer": None,
                "user_agent": "Mozilla/5.0", "is_bot": n % 10 == 0, "is_page_view": True,
                "source_file": "access.log", "visitor_id": f"v{sid}", "session_id": sid,
            })  # fmt: skip
    return rows


def daily_builds(
    settings: Settings, work: Path, days: int = 30, customers: int = 300, sessions: int = 1500
) -> dict[str, Any]:
    """Seconds of each day's ``dbt build`` for its run date, day 1 on an empty warehouse."""
    rng = random.Random(7)
    root = work / "processed"
    settings = replace(settings, work_dir=work / "warehouse")
    env = {"SHOPLOGS_PROCESSED_PARQUET": parquet_glob(root)}
    seconds = []
    for index in range(days):
        day = FIRST_DAY + timedelta(days=index)
        write_day(root, day, day_rows(day, customers, sessions, rng))
        started = time.perf_counter()
        day_env = {**env, **stages.run_date_env(day)}
        run_dbt(settings, ["build"], work / "dbt.log", extra_env=day_env)
        seconds.append(round(time.perf_counter() - started, 2))
    return {
        "days": days,
        "customers_per_day": customers,
        "sessions_per_day": sessions,
        "dbt_build_seconds": seconds,
        "day_1_seconds": seconds[0],
        "last_day_seconds": seconds[-1],
        "last_day_over_day_1": round(seconds[-1] / seconds[0], 2),
        # Day 1 creates every table; day 2 is the first incremental run, the fairer base.
        "last_day_over_day_2": round(seconds[-1] / seconds[1], 2) if days > 1 else None,
    }
