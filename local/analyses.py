"""``make analyses``: run the business questions in ``dbt_project/analyses/`` against the
current warehouse and print each answer as a table.

    python -m local.analyses            # the local DuckDB that `make run` built
    SHOPLOGS_WAREHOUSE=snowflake SHOPLOGS_ENV=dev python -m local.analyses

dbt compiles each analysis for the configured target and runs it there (``dbt show``), so
one command answers on DuckDB, Snowflake or Redshift alike.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

from orchestration.runners.dbt import profile_args, profile_env, seed_partial_parse
from orchestration.settings import DBT_PROJECT_DIR, Settings, settings_for_command

# In the order they are printed: the questions the business asks of the star schema.
ANALYSES = (
    "revenue_by_day_and_country",
    "web_session_conversion",
    "top_products",
    "repeat_customer_share",
    "bot_share_of_traffic",
)


@dataclass(frozen=True)
class Answer:
    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def column(self, name: str) -> list[Any]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]


class AnalysesFailed(RuntimeError):
    pass


@contextmanager
def dbt_environment(settings: Settings, extra: Mapping[str, str] | None = None) -> Iterator[None]:
    """The variables the profile reads, for an in-process dbt (the pipeline's own values),
    with ``extra`` ones beside them."""
    with mock.patch.dict(os.environ, {**profile_env(settings), **(extra or {})}):
        yield


def run_analyses(settings: Settings, names: Sequence[str] = ANALYSES) -> list[Answer]:
    """Compile and run each analysis on ``settings``' warehouse: one dbt invocation."""
    from dbt.cli.main import dbtRunner  # heavy: only when asked

    selector = " ".join(names)
    args = ["show", "--select", selector, "--limit", "-1", "--quiet",
            "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
            *profile_args(settings)]  # fmt: skip
    # A target of its own, beside the run's, never the project's: there `dbt show` put
    # this warehouse's parse over the one Cosmos and the next run's dbt start from, and every
    # later dbt command parsed the whole project again (~5 s). It starts from the run's
    # parse, which the build left for this very profile.
    target = analyses_target(settings)
    seed_partial_parse(target)
    seed_partial_parse(target, settings.dbt_target_dir)
    paths = {"DBT_TARGET_PATH": str(target), "DBT_LOG_PATH": str(settings.dbt_log_dir)}
    with dbt_environment(settings, paths):
        outcome = dbtRunner().invoke(args)
    results: Any = getattr(outcome.result, "results", None)
    if not outcome.success or results is None:
        log = settings.dbt_log_dir / "dbt.log"
        raise AnalysesFailed(f"the analyses did not run on {settings.warehouse}: "
                             f"{outcome.exception or f'see {log}'}")  # fmt: skip
    # dbt runs them in threads: the answers come back in any order.
    answers = {result.node.name: answer(result.node.name, result.agate_table) for result in results}
    return [answers[name] for name in names]


def analyses_target(settings: Settings) -> Path:
    """dbt's ``target/`` for the analyses: beside the run's, so the build's files there
    (its run results, kept for the report) stay the build's."""
    return settings.dbt_target_dir.with_name("target-analyses")


def answer(name: str, table: Any) -> Answer:
    """An analysis's result (an agate table, as dbt show returns it)."""
    return Answer(name, tuple(table.column_names), tuple(tuple(row.values()) for row in table.rows))


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def format_answer(answer: Answer) -> str:
    """The answer as a plain text table: numbers right-aligned, text left."""
    cells = [[cell(v) for v in row] for row in answer.rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(answer.columns)]
    numeric = [
        bool(answer.rows) and all(isinstance(r[i], int | float | Decimal) for r in answer.rows)
        for i in range(len(answer.columns))
    ]

    def line(values: Sequence[str]) -> str:
        columns = zip(values, widths, numeric, strict=True)
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in columns).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(r) for r in cells] or ["(no rows)"]
    return "\n".join([answer.name, line(answer.columns), rule, *body])


def missing_warehouse(settings: Settings) -> str:
    """Why there is nothing to ask yet (the local DuckDB file ``make run`` makes), or ""."""
    if settings.warehouse == "duckdb" and not settings.duckdb_path.exists():
        return f"no warehouse at {settings.duckdb_path}: run `make run` first"
    return ""


def main(argv: list[str] | None = None) -> int:
    del argv  # no options: the warehouse comes from the environment, as for the pipeline
    settings = settings_for_command("make analyses")
    if missing := missing_warehouse(settings):
        print(f"make analyses FAILED: {missing}", file=sys.stderr)
        return 1
    try:
        answers = run_analyses(settings)
    except AnalysesFailed as exc:
        print(f"make analyses FAILED: {exc}", file=sys.stderr)
        return 1
    print("\n\n".join(format_answer(answer) for answer in answers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
