"""What the marts must hold for a generated demo: shared by the end-to-end tests."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb

from local.demo import DemoSpec, Truth

# Small enough for CI, big enough to hold every kind of bad line, duplicates and sessions.
SMALL_DEMO = DemoSpec(
    days=3,
    customers=40,
    orders_per_day=15,
    visits_per_day=25,
    malformed_rate=0.03,
    duplicate_rate=0.03,
    seed=11,
)


def mart_rows(duckdb_path: Path, marts: tuple[str, ...]) -> dict[str, list[tuple]]:
    """Every mart's rows, in an order that does not depend on the build's."""
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        return {
            m: sorted(con.execute(f"select * from marts.{m}").fetchall(), key=repr) for m in marts
        }


def assert_marts_hold_the_demo(duckdb_path: Path, truth: Truth) -> None:
    """Orders with their customer, status, currency, total and line count; customers;
    order lines; sessions by human/bot; page views and requests: exactly what the generator
    wrote."""
    expected = truth.to_json()
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        orders = {
            row[0]: {"customer_id": row[1], "status": row[2], "currency": row[3],
                     "total": str(row[4]), "lines": row[5]}
            for row in con.execute(
                "select order_id, customer_id, order_status, currency_code,"
                " cast(order_total as decimal(12, 2)), line_count from marts.fct_orders"
            ).fetchall()
        }  # fmt: skip
        assert orders == {
            order_id: {**order, "total": str(Decimal(order["total"]).quantize(Decimal("0.01")))}
            for order_id, order in expected["orders"].items()
        }
        customers = con.execute(
            "select count(distinct customer_id) from marts.dim_customers where profile_version > 0"
        )
        assert customers.fetchone() == (expected["customers"],)
        lines = con.execute("select count(*) from marts.fct_order_lines").fetchone()
        assert lines == (expected["order_lines"],)
        sessions = dict(
            con.execute(
                "select case when is_bot then 'bot' else 'human' end, count(*)"
                " from marts.fct_web_sessions group by 1"
            ).fetchall()
        )
        assert sessions == expected["sessions"]
        page_views = con.execute("select sum(page_view_count) from marts.fct_web_sessions")
        assert page_views.fetchone() == (expected["page_views"],)
        # Every placed order's visit ends on its confirmation page: one session per order.
        converted = con.execute(
            "select count(*), count(distinct web.order_id) from marts.fct_web_sessions as web"
            " inner join marts.fct_orders as orders on web.order_id = orders.order_id"
        ).fetchone()
        assert converted == (expected["converted_sessions"], expected["converted_sessions"])
        daily = con.execute(
            "select sum(converted_sessions), sum(sessions) from marts.agg_web_traffic_daily"
        ).fetchone()
        assert daily == (expected["converted_sessions"], sum(expected["sessions"].values()))
        # Every request line, the same request written twice in one second included.
        requests = con.execute("select sum(request_count) from marts.fct_web_sessions")
        assert requests.fetchone() == (expected["streams"]["web"]["valid"],)
        products = con.execute("select count(*) from marts.dim_products").fetchone()
        assert products == (20,)
