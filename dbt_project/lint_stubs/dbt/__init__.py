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


def dateadd(datepart: str, interval: str, from_date_or_timestamp: str) -> str:
    return f"{from_date_or_timestamp} + ({interval}) * interval 1 {datepart}"


def generate_series(upper_bound: int) -> str:
    return f"select range + 1 as generated_number from range({upper_bound})"


def type_int() -> str:
    return "integer"


def split_part(string_text: str, delimiter_text: str, part_number: int) -> str:
    return f"split_part({string_text}, {delimiter_text}, {part_number})"
