"""The project compiles for the real Snowflake and Redshift without a connection, and what
it would send them (models, both branches of the incremental facts, the load operation and
the setup scripts) parses in that warehouse's SQL dialect."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import sqlfluff
import yaml
from sqlfluff.api.simple import APIParsingError

from infra.warehouse_setup import render, script_path, statements
from orchestration.settings import DBT_PROJECT_DIR
from orchestration.warehouse_load import partition_locations

pytestmark = pytest.mark.integration

DBT = str(Path(sys.executable).with_name("dbt"))
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


def dbt(warehouse: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [DBT, *args, "--target", warehouse],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **OFFLINE_ENV, "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR), **(env or {})},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
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
def test_what_each_warehouse_receives_parses_in_its_dialect(warehouse: str, tmp_path: Path) -> None:
    sources = {
        **compiled_models(warehouse, tmp_path),
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
    result = subprocess.run(
        [DBT, "run-operation", "load_raw", "--args", '{run_date: "yesterday"}', "--target",
         "duckdb"],
        cwd=DBT_PROJECT_DIR, capture_output=True, text=True, timeout=300,
        env={**os.environ, **OFFLINE_ENV, "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
             "DUCKDB_PATH": duckdb_path},
    )  # fmt: skip
    assert result.returncode != 0
    assert 'run_date "yesterday" is not a date; pass it as YYYY-MM-DD' in result.stdout


def test_a_column_missing_from_the_staged_files_stops_the_snowflake_load() -> None:
    columns = "[{'name': 'customer_id'}, {'name': 'email'}, {'name': 'dt'}]"
    call = (
        "{% do shoplogs.check_staged_columns('raw_data.customers', "
        + columns
        + ", ['CUSTOMER_ID', 'e_mail'], '@stage/customers/dt=2026-11-21/') %}"
    )
    result = subprocess.run(
        [DBT, "compile", "--no-introspect", "--no-populate-cache", "--target", "snowflake",
         "--inline", call],
        cwd=DBT_PROJECT_DIR, capture_output=True, text=True, timeout=300,
        env={**os.environ, **OFFLINE_ENV, "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR)},
    )  # fmt: skip
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
    result = subprocess.run(
        [DBT, "compile", "--no-introspect", "--no-populate-cache", "--quiet", "--target", target,
         "--inline", "{{ ref('fct_orders').schema }}"],
        cwd=DBT_PROJECT_DIR, capture_output=True, text=True, timeout=300,
        env={**os.environ, **OFFLINE_ENV, "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
             "SHOPLOGS_ENV": env},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert result.stdout.split()[-1].lower() == schema


def test_every_mart_string_has_a_length_that_holds_its_data_on_redshift(tmp_path: Path) -> None:
    """Redshift makes a bare `varchar` varchar(256): an enforced contract would create
    such columns and a cast would cut URLs and user agents short."""
    bare = re.compile(r"\bvarchar\b(?!\s*\()", re.IGNORECASE)
    contracts = [DBT_PROJECT_DIR / "models" / "marts" / d / f"_{d}__models.yml"
                 for d in ("core", "web")]  # fmt: skip
    for path in contracts:
        for model in yaml.safe_load(path.read_text())["models"]:
            types = {c["name"]: c.get("data_type", "") for c in model["columns"]}
            assert not [n for n, t in types.items() if bare.fullmatch(t)], model["name"]
    marts = {name: sql for name, sql in compiled_models("redshift", tmp_path).items()
             if "/marts/" in name}  # fmt: skip
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
