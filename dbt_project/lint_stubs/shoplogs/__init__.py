"""Stand-ins for the project's own macros called as ``shoplogs.<macro>`` in models."""


def type_long_string() -> str:
    return "varchar"
