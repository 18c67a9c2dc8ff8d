"""The project compiles for the real Snowflake and Redshift without a connection, and what
it would send them (models, both branches of the incremental facts, the load operation and
the setup scripts) parses in that warehouse's SQL dialect."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
import sqlfluff
import yaml
from sqlfluff.api.simple import APIParsingError

from infra.warehouse_setup import render, script_path, statements
from orchestration.settings import DBT_PROJECT_DIR
from orchestration.warehouse_load import partition_locations

pytestmark = pytest.mark.integration

DBT = str(Path(sys.executable).with_name("dbt"))
COMPILE_TARGETS = DBT_PROJECT_DIR / "target" / "compile-tests"
# Enough for the profiles to render; nothing connects.
OFFLINE_ENV = {
    "SNOWFLAKE_ACCOUNT": "xy12345.eu-west-1",
    "SNOWFLAKE_USER": "shoplogs_pipeline",
    "DBT_ENV_SECRET_SNOWFLAKE_PRIVATE_KEY": "not-used-offline",
    "REDSHIFT_HOST": "shoplogs.example.invalid",
    "REDSHIFT_USER": "shoplogs_pipeline",
    "REDSHIFT_CLUSTER_ID": "shoplogs",
    "REDSHIFT_COPY_ROLE_ARN": "arn:aws:iam::123456789012:role/shoplogs-prod-redshift-copy",
    "LAKE_BUCKET": "shoplogs-prod-lake-123456789012",
}
SETUP_VARIABLES = {
    "LAKE_BUCKET": "shoplogs-prod-lake-123456789012",
    "SNOWFLAKE_DATABASE": "SHOPLOGS",
    "SNOWFLAKE_STORAGE_ROLE_ARN": "arn:aws:iam::123456789012:role/shoplogs-prod-snowflake",
    "SNOWFLAKE_STAGE_URL": "s3://shoplogs-prod-lake-123456789012/processed/",
    "GLUE_DATABASE": "shoplogs_prod",
    "REDSHIFT_SPECTRUM_ROLE_ARN": "arn:aws:iam::123456789012:role/shoplogs-prod-spectrum",
    "REDSHIFT_PIPELINE_USER": "IAMR:shoplogs-prod-mwaa",
}


def run_dbt(warehouse: str, *args: str, env: dict[str, str] | None = None) -> CompletedProcess[str]:
    """dbt for ``warehouse`` without a connection. Each warehouse and environment keeps its
    own target folder, where dbt keeps its partial parse: in one shared folder every switch
    of warehouse threw it away, a whole parse (~10 s) per call."""
    env = {**OFFLINE_ENV, "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR), **(env or {})}
    folder = f"{warehouse}-{env.get('SHOPLOGS_ENV', os.environ.get('SHOPLOGS_ENV', ''))}"
    return subprocess.run(
        [DBT, *args, "--target", warehouse],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, "DBT_TARGET_PATH": str(COMPILE_TARGETS / folder), **env},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def dbt(warehouse: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = run_dbt(warehouse, *args, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def compiled_models(warehouse: str, out: Path) -> dict[str, str]:
    """Every model and snapshot as the warehouse would get it; the incremental facts twice."""
    offline = ["--no-introspect", "--no-populate-cache", "--quiet"]
    dbt(warehouse, "compile", *offline, "--target-path", str(out / "full"))
    dbt(warehouse, "compile", *offline, "--target-path", str(out / "incremental"),
        "--select", "config.materialized:incremental",
        "--vars", "{compile_as_incremental: true}")  # fmt: skip
    sql = {}
    for variant in ("full", "incremental"):
        root = out / variant / "compiled" / "shoplogs"
        for path in sorted((root / "models").rglob("*.sql")):
            if path.parent.name != path.stem:  # skip data tests (compiled under their model)
                sql[f"{variant}:{path.relative_to(root)}"] = path.read_text()
    assert any("last_run_date >=" in text for name, text in sql.items() if "incremental:" in name)
    return sql


@dataclass(frozen=True)
class Compiled:
    models: dict[str, str]  # ``compiled_models``
    nodes: list[dict[str, Any]]  # the manifest's nodes, from the same compile


@pytest.fixture(scope="module")
def compiles(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Compiled]:
    """A warehouse's models and manifest, compiled once for the tests below."""
    done: dict[str, Compiled] = {}

    def compile_once(warehouse: str) -> Compiled:
        if warehouse not in done:
            out = tmp_path_factory.mktemp(warehouse)
            models = compiled_models(warehouse, out)
            manifest = json.loads((out / "full" / "manifest.json").read_text())
            done[warehouse] = Compiled(models, list(manifest["nodes"].values()))
        return done[warehouse]

    return compile_once


@pytest.fixture(scope="module")
def compiled(compiles: Callable[[str], Compiled]) -> Callable[[str], dict[str, str]]:
    return lambda warehouse: compiles(warehouse).models


@pytest.fixture(scope="module")
def nodes(compiles: Callable[[str], Compiled]) -> Callable[[str], list[dict[str, Any]]]:
    return lambda warehouse: compiles(warehouse).nodes


@functools.cache
def load_operation(warehouse: str) -> dict[str, str]:
    """The SQL of ``dbt run-operation load_raw`` for one partition, printed, not run."""
    files = {t: ["part-00000-a.snappy.parquet"] for t in ("customers", "orders")}
    locations = partition_locations(OFFLINE_ENV["LAKE_BUCKET"], date(2026, 11, 21))
    call = f"{{% do shoplogs.load_raw('2026-11-21', {files!r}, {locations!r}, dry_run=true) %}}"
    output = dbt(warehouse, "compile", "--no-introspect", "--no-populate-cache", "--quiet",
                 "--inline", call)  # fmt: skip
    # Each block: the relation on its first line, then the SQL (dbt renders --inline twice).
    blocks = output.split("-- load_raw: ")[1:]
    sql = {
        "load_raw " + block.split("\n", 1)[0].split(".")[-1].strip('"'): block.split("\n", 1)[1]
        for block in blocks
    }
    assert len(sql) == 4, output
    return sql


@pytest.mark.parametrize("warehouse", ["snowflake", "redshift"])
def test_what_each_warehouse_receives_parses_in_its_dialect(
    warehouse: str, compiled: Callable[[str], dict[str, str]]
) -> None:
    sources = {
        **compiled(warehouse),
        **load_operation(warehouse),
        "setup.sql": render(script_path(warehouse).read_text(), SETUP_VARIABLES),
    }
    unparsable = {}
    for name, sql in sources.items():
        for statement in statements(sql):
            try:
                sqlfluff.parse(statement + "\n", dialect=warehouse)
            except APIParsingError as exc:
                unparsable[name] = f"{statement[:200]}...\n{exc}"[:1500]
    assert unparsable == {}


def test_load_operation_speaks_each_warehouses_bulk_load(tmp_path: Path) -> None:
    snowflake = "\n".join(load_operation("snowflake").values())
    assert "copy into" in snowflake and "match_by_column_name = case_insensitive" in snowflake
    assert "@raw_data.processed_zone/customers/dt=2026-11-21/" in snowflake
    # Exactly the manifest's files, forced, after the partition's delete in one transaction:
    # the load never relies on Snowflake's load metadata, which expires after 64 days.
    customers = load_operation("snowflake")["load_raw customers"]
    load = customers[customers.index("begin;") : customers.index("commit;")]
    assert "files = ('part-00000-a.snappy.parquet')" in load and "force = true" in load
    assert load.index("delete from") < load.index("copy into")
    # ... and the staged files' columns are checked before it (INFER_SCHEMA on those files).
    check = customers[: customers.index("begin;")]
    assert "infer_schema(" in check and "files => ('part-00000-a.snappy.parquet')" in check
    redshift = "\n".join(load_operation("redshift").values())
    assert "format as parquet" in redshift
    assert "iam_role 'arn:aws:iam::123456789012:role/shoplogs-prod-redshift-copy'" in redshift
    assert "s3://shoplogs-prod-lake-123456789012/processed/customers/dt=2026-11-21/" in redshift
    # A table the run published no file for is emptied for the day, not copied from.
    order_lines = load_operation("redshift")["load_raw order_lines"]
    assert "copy " not in order_lines and "delete from" in order_lines


def test_bad_run_date_is_a_clear_error(tmp_path: Path) -> None:
    # Its own DuckDB file: the test must not depend on another test having made .local/.
    duckdb_path = str(tmp_path / "warehouse.duckdb")
    result = run_dbt("duckdb", "run-operation", "load_raw", "--args", '{run_date: "yesterday"}',
                     env={"DUCKDB_PATH": duckdb_path})  # fmt: skip
    assert result.returncode != 0
    assert 'run_date "yesterday" is not a date; pass it as YYYY-MM-DD' in result.stdout


def test_a_column_missing_from_the_staged_files_stops_the_snowflake_load() -> None:
    columns = "[{'name': 'customer_id'}, {'name': 'email'}, {'name': 'dt'}]"
    call = (
        "{% do shoplogs.check_staged_columns('raw_data.customers', "
        + columns
        + ", ['CUSTOMER_ID', 'e_mail'], '@stage/customers/dt=2026-11-21/') %}"
    )
    result = run_dbt("snowflake", "compile", "--no-introspect", "--no-populate-cache", "--inline",
                     call)  # fmt: skip
    assert result.returncode != 0
    assert "lack the column(s) email (found: customer_id, e_mail)" in result.stdout


def test_real_snowflake_runs_dbt_snowflakes_own_macros(tmp_path: Path) -> None:
    """The fakesnow workarounds (macros/emulator/fakesnow.sql) stay off a real Snowflake
    target: its incremental merge and temporary tables are dbt-snowflake's own SQL."""
    calls = {
        "merge": "{{ get_merge_sql(api.Relation.create(database='d', schema='s', identifier='t'),"
        " 'select 1', 'id', [api.Column('id', 'integer'), api.Column('v', 'integer')], []) }}",
        "temporary": "{{ snowflake__create_table_temporary_sql("
        "api.Relation.create(database='d', schema='s', identifier='t'), 'select 1') }}",
    }
    offline = ["--no-introspect", "--no-populate-cache", "--quiet"]
    compiled = {
        name: dbt("snowflake", "compile", *offline, "--inline", call).lower()
        for name, call in calls.items()
    }
    merge = " ".join(compiled["merge"].split())
    # dbt-snowflake's own merge: in a transaction, with unqualified insert values (the
    # fakesnow variant drops the transaction and qualifies the values).
    assert merge.startswith("-- back compat for old kwarg name begin;"), merge
    assert 'when not matched then insert ("id", "v") values ("id", "v")' in merge, merge
    assert "create or replace temporary table" in compiled["temporary"], compiled["temporary"]


@pytest.mark.parametrize(
    ("target", "env", "schema"),
    [
        ("snowflake", "prod", "marts"),
        ("snowflake", "dev", "analytics_marts"),
        ("snowflake", "", "analytics_marts"),
        ("redshift", "dev", "analytics_marts"),
        ("duckdb", "local", "marts"),
    ],
)
def test_only_prod_writes_the_unprefixed_marts_of_a_real_warehouse(
    target: str, env: str, schema: str
) -> None:
    schema_of = "{{ ref('fct_orders').schema }}"
    result = run_dbt(target, "compile", "--no-introspect", "--no-populate-cache", "--quiet",
                     "--inline", schema_of, env={"SHOPLOGS_ENV": env})  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert result.stdout.split()[-1].lower() == schema


def test_every_mart_string_has_a_length_that_holds_its_data_on_redshift(
    compiled: Callable[[str], dict[str, str]],
) -> None:
    """Redshift makes a bare `varchar` varchar(256): an enforced contract would create
    such columns and a cast would cut URLs and user agents short."""
    bare = re.compile(r"\bvarchar\b(?!\s*\()", re.IGNORECASE)
    contracts = [DBT_PROJECT_DIR / "models" / "marts" / d / f"_{d}__models.yml"
                 for d in ("core", "web")]  # fmt: skip
    for path in contracts:
        for model in yaml.safe_load(path.read_text())["models"]:
            types = {c["name"]: c.get("data_type", "") for c in model["columns"]}
            assert not [n for n, t in types.items() if bare.fullmatch(t)], model["name"]
    marts = {name: sql for name, sql in compiled("redshift").items() if "/marts/" in name}
    assert marts and not {name for name, sql in marts.items() if bare.search(sql)}


def test_a_new_run_date_leaves_partial_parsing_on(tmp_path: Path) -> None:
    """Each nightly build has another run date: passed as a var, it made dbt re-parse the
    whole project every run (seconds of each build); as SHOPLOGS_RUN_DATE, dbt re-parses
    only the models that read it, and the date still reaches their SQL."""
    target = tmp_path / "target"

    def parse(run_date: str) -> str:
        env = {"SHOPLOGS_RUN_DATE": run_date, "DUCKDB_PATH": str(tmp_path / "w.duckdb")}
        return dbt("duckdb", "parse", "--target-path", str(target), env=env)

    parse("2026-11-01")
    assert "Unable to do partial parsing" not in parse("2026-11-02")


def call_arguments(sql: str, function: str) -> list[list[str]]:
    """The arguments of every call of ``function`` in ``sql``, split at top-level commas."""
    calls = []
    for match in re.finditer(rf"\b{function}\s*\(", sql, re.IGNORECASE):
        depth, start, arguments = 1, match.end(), []
        for index in range(match.end(), len(sql)):
            char = sql[index]
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
            if (char == "," and depth == 1) or depth == 0:
                arguments.append(sql[start:index].strip())
                start = index + 1
            if depth == 0:
                break
        calls.append(arguments)
    return calls


def is_integer_expression(expression: str) -> bool:
    """Integer literals and casts to an integer type, combined by + - *: what Redshift's
    DATEADD accepts as its number. A bare column or a division may be double precision."""
    integer_type = r"(?:integer|int|bigint|smallint)"
    integer_cast = re.compile(
        rf"cast\((?:[^()]|\([^()]*\))*?\bas\s+{integer_type}\s*\)", re.IGNORECASE
    )
    previous = None
    while previous != expression:  # innermost casts first, so nested ones collapse too
        previous, expression = expression, integer_cast.sub("0", expression)
    return re.fullmatch(r"[\s\d+\-*()]+", expression) is not None


def test_the_integer_check_tells_a_cast_from_a_double() -> None:
    assert is_integer_expression("-1 * 3")
    assert is_integer_expression("cast(numbers.generated_number - 1 as integer)")
    assert is_integer_expression("1 - cast(case extract(dow from d) when 0 then 7 end as integer)")
    assert not is_integer_expression("numbers.generated_number - 1")
    assert not is_integer_expression("power(2, 3)")
    sql = "select dateadd(day, cast(n - 1 as integer), d), dateadd(day, n / 2, coalesce(a, b))"
    assert call_arguments(sql, "dateadd") == [
        ["day", "cast(n - 1 as integer)", "d"], ["day", "n / 2", "coalesce(a, b)"]
    ]  # fmt: skip


def test_redshift_dateadd_gets_an_integer_number_of_days(
    compiled: Callable[[str], dict[str, str]],
) -> None:
    """Redshift's DATEADD rejects a double precision number (its generate_series gives one,
    power(2, i)); PostgreSQL, which stands in for Redshift, accepts it, so only the
    compiled SQL can tell."""
    calls = {
        name: arguments
        for name, sql in compiled("redshift").items()
        for arguments in call_arguments(sql, "dateadd")
    }
    assert calls, "no dateadd compiled for Redshift"
    assert {name: a[1] for name, a in calls.items() if not is_integer_expression(a[1])} == {}


def test_redshift_views_are_late_binding(nodes: Callable[[str], list[dict[str, Any]]]) -> None:
    """Rebuilding dim_customers on Redshift drops the views bound to it (cascade) until dbt
    rebuilds them; a late-binding view (`with no schema binding`) is not bound."""
    views = {n["name"]: n["config"] for n in nodes("redshift")
             if n["resource_type"] == "model" and n["config"]["materialized"] == "view"
             and "/marts/" in n["original_file_path"]}  # fmt: skip
    assert "dim_customers_current" in views
    for name, config in views.items():
        bind = "true" if config.get("bind", True) else "false"
        call = (
            f"{{{{ config(bind={bind}) }}}}{{{{ redshift__create_view_as("
            "api.Relation.create(database='d', schema='s', identifier='v'), 'select 1') }}"
        )
        ddl = dbt("redshift", "compile", "--no-introspect", "--no-populate-cache", "--quiet",
                  "--inline", call)  # fmt: skip
        assert "with no schema binding" in ddl, name


def test_snowflake_sessions_pin_timestamp_mapping_and_week_start(
    compiled: Callable[[str], dict[str, str]], nodes: Callable[[str], list[dict[str, Any]]]
) -> None:
    """`timestamp` on Snowflake follows the account's TIMESTAMP_TYPE_MAPPING and
    date_trunc('week') its WEEK_START: every model's session pins both."""
    pinned = dbt("snowflake", "compile", "--no-introspect", "--no-populate-cache", "--quiet",
                 "--inline", "{{ shoplogs.pin_session_parameters() }}").lower()  # fmt: skip
    pins = statements(pinned[pinned.index("alter session") :])
    assert pins == [
        "alter session set timestamp_type_mapping = 'timestamp_ntz'",
        "alter session set week_start = 1",
    ]
    for statement in pins:
        sqlfluff.parse(statement + "\n", dialect="snowflake")
    models = [n for n in nodes("snowflake") if n["resource_type"] == "model"]
    unpinned = [n["name"] for n in models
                if "pin_session_parameters" not in str(n["config"]["pre-hook"])]  # fmt: skip
    assert models and unpinned == []
    # dim_date spells the ISO week out rather than trusting date_trunc('week').
    dim_date = compiled("snowflake")["full:models/marts/core/dim_date.sql"]
    assert "date_trunc('week'," not in dim_date.lower()


MASKING_CALL = (
    "{%- set node = graph.nodes['model.shoplogs.dim_customers'] -%}"
    "{%- set view = graph.nodes['model.shoplogs.dim_customers_current'] -%}"
    "-- table\n{{ shoplogs.mask_personal_data(ref('dim_customers'), node.columns, 'table') }}\n"
    "-- view\n{{ shoplogs.mask_personal_data(ref('dim_customers_current'), view.columns, 'view') }}"
    "\n-- end"
)


@pytest.mark.parametrize("warehouse", ["snowflake", "redshift"])
def test_masking_uses_each_warehouses_own_policies(warehouse: str) -> None:
    """What could only be compiled: on a real Snowflake the tagged columns of a mart's table
    get the setup script's masking policy (views need none: it follows its column); on
    Redshift the setup script's procedure attaches dynamic data masking to each. Both parse
    in the warehouse's dialect."""
    output = dbt(warehouse, "compile", "--no-introspect", "--no-populate-cache", "--quiet",
                 "--inline", MASKING_CALL)  # fmt: skip
    table = output[output.index("-- table") + len("-- table") : output.index("-- view")].strip()
    view = output[output.index("-- view") + len("-- view") : output.index("-- end")].strip()
    assert view == ""
    marts = "analytics_marts"  # not prod: dbt's "<target schema>_marts"
    if warehouse == "snowflake":
        policy = "set masking policy shoplogs.governance.pii_direct force"
        assert statements(table.lower()) == [
            f"alter table shoplogs.{marts}.dim_customers modify column email {policy}, "
            f"column first_name {policy}, column last_name {policy}"
        ]
    else:
        assert statements(table) == [
            f"call shoplogs_mask_column('{marts}', 'dim_customers', '{column}')"
            for column in ("email", "first_name", "last_name")
        ]
    for statement in statements(table):
        sqlfluff.parse(statement + "\n", dialect=warehouse)
    setup = script_path(warehouse).read_text()
    assert "shoplogs_pii_reader" in setup
    assert ("governance.pii_direct" if warehouse == "snowflake" else "shoplogs_pii_direct") in setup


def test_the_setup_scripts_mask_as_the_dbt_project_does() -> None:
    """The policies in infra/ and the emulation's views (the var pii_mask) show one mask."""
    mask = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]["pii_mask"]
    assert f"else '{mask}'" in script_path("snowflake").read_text()
    assert f"else ''{mask}'' end" in script_path("redshift").read_text()
