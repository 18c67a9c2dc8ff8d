"""Stand-ins for the project's own macros called as ``shoplogs.<macro>`` in models."""


def type_long_string() -> str:
    return "varchar"


def is_net_revenue(relation: str | None = None) -> str:
    prefix = f"{relation}." if relation else ""
    return (
        f"({prefix}paid_at is not null and {prefix}cancelled_at is null"
        f" and {prefix}refunded_at is null)"
    )


def in_run_window(column: str, fact_run_date_column: str) -> str:
    return f"{column} = cast('2026-11-02' as date)"


def affected_customers() -> str:
    return "(select customer_id from affected)"


def restaged_partitions(partition_column: str = "dt") -> str:
    return f"where cast({partition_column} as date) >= cast('2026-11-02' as date)"


def staged_earlier(key: str) -> str:
    return f"where {key} not in (select staged.{key} from staged)"


def is_refunded_revenue(relation: str | None = None) -> str:
    prefix = f"{relation}." if relation else ""
    return (
        f"({prefix}paid_at is not null and {prefix}cancelled_at is null"
        f" and {prefix}refunded_at is not null)"
    )


def affected_sessions() -> str:
    return "(select session_id from affected)"


def confirmed_order_id(path: str = "request_path", status: str = "status_code") -> str:
    return f"case when {status} = 200 then {path} end"


def measure(name: str) -> str:
    return f"sum({name})"


def metric_sql(name: str, over_columns: bool = False) -> str:
    return f"sum({name})" if not over_columns else f"1.0 * {name}"
