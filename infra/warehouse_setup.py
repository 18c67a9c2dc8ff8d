"""Render and run the warehouse setup scripts in ``infra/<warehouse>/setup.sql``.

    python -m infra.warehouse_setup snowflake        # print, ${...} filled from the env
    python -m infra.warehouse_setup redshift

An administrator runs the printed script once per account (snowsql, psql, the console).
CI runs the same scripts against the local stand-ins (``execute``), statement by statement,
skipping only what the stand-in cannot do at all (``EMULATOR_GAPS``).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

INFRA = Path(__file__).resolve().parent
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")

# What each stand-in cannot run: account-level objects that only exist in the real service.
EMULATOR_GAPS: dict[str, tuple[str, ...]] = {
    # fakesnow has no roles, warehouses, users, grants or storage integrations.
    "fakesnow": (
        r"create (role|warehouse|user|storage integration)\b",
        r"grant\b",
    ),
    # PostgreSQL has no Spectrum (external schemas over the Glue catalog).
    "postgres": (r"create external schema\b", r"grant usage on schema spectrum\b"),
}


def script_path(warehouse: str) -> Path:
    path = INFRA / warehouse / "setup.sql"
    if not path.is_file():
        known = sorted(p.parent.name for p in INFRA.glob("*/setup.sql"))
        raise FileNotFoundError(f"no setup script for {warehouse!r}; known: {', '.join(known)}")
    return path


def render(sql: str, variables: Mapping[str, str]) -> str:
    """Fill ``${NAME}`` placeholders; a missing one is an error that names it."""
    missing = sorted({name for name in PLACEHOLDER.findall(sql) if not variables.get(name)})
    if missing:
        raise KeyError(
            f"set {', '.join(missing)} in the environment before rendering the setup script"
        )
    return PLACEHOLDER.sub(lambda match: variables[match[1]], sql)


def statements(sql: str) -> list[str]:
    """Split on semicolons outside quotes, ``$$`` bodies and ``--`` comments."""
    result, current, i = [], [], 0
    quote: str | None = None
    while i < len(sql):
        char = sql[i]
        if quote is None and sql.startswith("--", i):
            i = sql.find("\n", i) if "\n" in sql[i:] else len(sql)
            continue
        if quote in (None, "$$") and sql.startswith("$$", i):
            quote = None if quote == "$$" else "$$"
            current.append("$$")
            i += 2
            continue
        if char == "'" and quote in (None, "'"):
            quote = None if quote == "'" else "'"
        if char == ";" and quote is None:
            result.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        i += 1
    result.append("".join(current).strip())
    return [statement for statement in result if statement]


def runnable(statements: Iterable[str], gaps: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split statements into what an engine runs and what it skips, by ``gaps``."""
    patterns = [re.compile(gap, re.IGNORECASE) for gap in gaps]
    run: list[str] = []
    skipped: list[str] = []
    for statement in statements:
        (skipped if any(p.match(statement) for p in patterns) else run).append(statement)
    return run, skipped


def execute(
    warehouse: str, engine: str, variables: Mapping[str, str], run: Callable[[str], object]
) -> list[str]:
    """Run ``warehouse``'s script on a stand-in ``engine``; returns the statements skipped."""
    sql = render(script_path(warehouse).read_text(), variables)
    to_run, skipped = runnable(statements(sql), EMULATOR_GAPS.get(engine, ()))
    for statement in to_run:
        run(statement)
    return skipped


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m infra.warehouse_setup snowflake|redshift", file=sys.stderr)
        return 2
    try:
        variables = dict(os.environ)
        if variables.get("LAKE_BUCKET"):
            variables.setdefault(
                "SNOWFLAKE_STAGE_URL", f"s3://{variables['LAKE_BUCKET']}/processed/"
            )
        print(render(script_path(args[0]).read_text(), variables))
    except (FileNotFoundError, KeyError) as exc:
        print(f"warehouse_setup: {exc.args[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
