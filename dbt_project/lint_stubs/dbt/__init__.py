"""Stand-ins for dbt's cross-database macros, so sqlfluff renders models offline.

Each returns SQL of the same shape the real macro emits on DuckDB.
"""


def type_string() -> str:
    return "varchar"


def type_timestamp() -> str:
    return "timestamp"


def type_bigint() -> str:
    return "bigint"


def type_numeric() -> str:
    return "numeric(28, 6)"


def concat(fields: list[str]) -> str:
    return " || ".join(fields)


def bool_or(expression: str) -> str:
    return f"bool_or({expression})"


def datediff(first: str, second: str, datepart: str) -> str:
    return f"date_diff('{datepart}', {first}, {second})"


def date_trunc(datepart: str, expression: str) -> str:
    return f"date_trunc('{datepart}', {expression})"


def date_spine(datepart: str, start_date: str, end_date: str) -> str:
    return (
        f"select cast(range as date) as date_{datepart} "
        f"from range({start_date}, {end_date}, interval 1 {datepart})"
    )
