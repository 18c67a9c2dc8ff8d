"""Stand-ins for the project's own macros called as ``shoplogs.<macro>`` in models."""

from datetime import date


def type_long_string() -> str:
    return "varchar"


def days_between(start: str, end: str) -> int:
    try:
        return (date.fromisoformat(str(end)) - date.fromisoformat(str(start))).days
    except ValueError:  # sqlfluff's var() stand-in returns a placeholder, not the date
        return 1461
