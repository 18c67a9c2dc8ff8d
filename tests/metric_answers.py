"""Which column of a saved query's answer (MetricFlow) answers which column of its analysis,
and the check that the two agree (tests on the demo build and on every parity engine)."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from local.analyses import Answer

# analysis column -> saved query column, per question (same name unless said).
COLUMNS: dict[str, dict[str, str]] = {
    "revenue_by_day_and_country": {
        "revenue_date": "metric_time__day", "country_code": "customer_version__country_code",
        "orders": "orders", "gross_bookings_usd": "gross_bookings",
        "net_revenue_usd": "net_revenue",
        "net_revenue_by_refund_date_usd": "net_revenue_by_refund_date",
        "revenue_orders": "revenue_orders", "average_order_value_usd": "average_order_value",
    },
    "web_session_conversion": {
        "session_date": "metric_time__day", "human_sessions": "human_sessions",
        "converted_sessions": "converted_sessions", "conversion_rate": "conversion_rate",
        "viewing_sessions": "viewing_sessions", "bounced_sessions": "bounced_sessions",
        "bounce_rate": "bounce_rate",
    },
    "top_products": {
        "product_id": "product", "product_name": "product__product_name",
        "category": "product__category", "orders": "line_orders", "units": "units",
        "gross_bookings_usd": "line_gross_bookings", "net_revenue_usd": "line_net_revenue",
    },
    "repeat_customer_share": {
        "customers": "ordering_customers", "repeat_customers": "repeat_customers",
        "repeat_customer_share": "repeat_customer_share", "orders": "orders",
        "repeat_orders": "repeat_orders", "repeat_order_share": "repeat_order_share",
    },
    "bot_share_of_traffic": {
        "session_date": "metric_time__day", "sessions": "sessions",
        "bot_sessions": "bot_sessions", "classified_sessions": "classified_sessions",
        "bot_session_share": "bot_share", "requests": "requests",
        "bot_requests": "bot_requests", "bot_request_share": "bot_request_share",
    },
}  # fmt: skip
# The analyses print rates rounded to four places; MetricFlow divides in floating point.
ROUNDED = 0.5e-4


def same(analysis_value: Any, metric_value: Any) -> bool:
    if analysis_value is None or metric_value is None:
        return analysis_value is None and metric_value is None
    if isinstance(metric_value, datetime):
        metric_value = metric_value.date()
    if isinstance(analysis_value, datetime):
        analysis_value = analysis_value.date()
    if isinstance(analysis_value, str | date) or isinstance(metric_value, str | date):
        return str(analysis_value) == str(metric_value)
    a, m = Decimal(str(analysis_value)), Decimal(str(metric_value))
    return math.isclose(a, m, abs_tol=ROUNDED if a != a.to_integral_value() else 1e-9)


def differences(analysis: Answer, metrics: Answer) -> list[str]:
    """Where the saved query's answer differs from the analysis's: a row count, or a cell
    named by row and column. Empty when they agree."""
    columns = COLUMNS[analysis.name]
    found = [f"{analysis.name}: {len(analysis.rows)} rows, the saved query {len(metrics.rows)}"]
    if len(analysis.rows) == len(metrics.rows):
        found = []
    # Snowflake answers in upper case: a column is known by its name in any case.
    analysis_columns = [c.lower() for c in analysis.columns]
    metric_columns = [c.lower() for c in metrics.columns]
    for index, (row, metric_row) in enumerate(zip(analysis.rows, metrics.rows, strict=False)):
        for column, metric_column in columns.items():
            a = row[analysis_columns.index(column.lower())]
            m = metric_row[metric_columns.index(metric_column.lower())]
            if not same(a, m):
                found.append(f"{analysis.name} row {index} {column}: analysis {a!r}, "
                             f"{metric_column} {m!r}")  # fmt: skip
    return found
