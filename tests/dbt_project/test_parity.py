"""The same star schema from the same input on DuckDB, on PostgreSQL standing in for
Redshift and on fakesnow standing in for Snowflake.

The demo's logs arrive in two halves on two days. After each day's run every engine loads
the partition (twice) and builds: once from scratch, once incrementally (customers gain
versions, facts take late events); then the first day's partition is rewritten, as a re-run
does, and loaded again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from lake import layout
from lake.erasure import TOMBSTONE_CUSTOMER_ID, erased_of
from lake.layout import LOG_FILES
from lake.manifest import write_manifest
from local.analyses import Answer, run_analyses
from local.aws import provision_local, ship_logs
from local.demo import generate
from local.metrics import query_saved
from local.warehouses import connect, load_partition, run_setup_script, running
from orchestration import erasure, stages
from orchestration.settings import DBT_PROJECT_DIR, Settings, load_settings
from tests.clock import ARRIVAL_DAY
from tests.dbt_project.engines import execute, normalized, query, table_rows
from tests.expectations import SMALL_DEMO
from tests.metric_answers import differences

pytestmark = pytest.mark.integration

ENGINES = ("duckdb", "postgres", "fakesnow")
STAND_INS = ("postgres", "fakesnow")
RAW_TABLES = ("customers", "orders", "order_lines", "web_requests")


@dataclass
class Lake:
    settings: Settings
    days: list[date]
    work: Path


@dataclass
class Build:
    marts: dict[str, tuple[list[str], list[tuple]]] = field(default_factory=dict)
    raw_rows: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # day -> table
    skipped_setup: list[str] = field(default_factory=list)
    masking: dict[str, Any] = field(default_factory=dict)
    erasure: dict[str, Any] = field(default_factory=dict)  # the mart-level erase, after all
    # question -> (the analysis's answer, the saved query's), or why they could not be had
    answers: dict[str, tuple[Answer, Answer]] = field(default_factory=dict)
    answers_error: str = ""


def split_logs(logs: Path, out: Path) -> list[dict[str, list[Path]]]:
    """Each log's first and second half of lines, as two shipments."""
    batches: list[dict[str, list[Path]]] = [{}, {}]
    for stream, name in LOG_FILES.items():
        lines = (logs / name).read_bytes().splitlines(keepends=True)
        half = len(lines) // 2
        for index, part in enumerate((lines[:half], lines[half:])):
            path = out / f"batch{index}" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"".join(part))
            batches[index][stream] = [path]
    return batches


def rewrite_partition(settings: Settings, day: date) -> None:
    """What a re-run of the day does to its partition: same rows, new file names."""
    s3 = stages.aws_client(settings, "s3")
    manifest = stages.read_manifest(settings, day)
    published = []
    for key in manifest.published:
        folder, name = key.rsplit("/", 1)
        new_key = f"{folder}/rewritten-{name}"
        if key.startswith("processed/"):
            s3.copy_object(
                Bucket=settings.lake_bucket, Key=new_key,
                CopySource={"Bucket": settings.lake_bucket, "Key": key},
            )  # fmt: skip
            s3.delete_object(Bucket=settings.lake_bucket, Key=key)
            key = new_key
        published.append(key)
    write_manifest(s3, settings.lake_bucket, replace(manifest, published=published))


def parquet_rows(settings: Settings, day: date) -> dict[str, int]:
    s3 = stages.aws_client(settings, "s3")
    files = stages.read_manifest(settings, day).partition_files()
    rows = {}
    for table, names in files.items():
        rows[table] = 0
        for name in names:
            body = s3.get_object(
                Bucket=settings.lake_bucket, Key=layout.processed_prefix(table, day) + name
            )["Body"].read()
            rows[table] += pq.ParquetFile(pa.BufferReader(body)).metadata.num_rows
    return rows


def emails_read(engine: str, settings: Settings, relation: str, role: str | None) -> Any:
    """The non-null emails ``role`` reads from ``relation`` (None: the build's own user), or
    the refusal's message. DuckDB and fakesnow have no roles to switch to."""
    sql = f"select email from {relation} where email is not null"
    if role is None:
        return sorted(row[0] for row in query(engine, settings, sql))
    import psycopg2

    connection = connect(engine, settings)
    try:
        cursor = connection.cursor()
        cursor.execute(f"set role {role}")
        try:
            cursor.execute(sql)
        except psycopg2.errors.InsufficientPrivilege as exc:
            return str(exc).splitlines()[0]
        return sorted(row[0] for row in cursor.fetchall())
    finally:
        connection.close()


def masking_seen(engine: str, settings: Settings) -> dict[str, Any]:
    """What each reader gets of dim_customers' emails, clear and masked."""
    seen = {
        "clear": emails_read(engine, settings, "marts.dim_customers", None),
        "masked view": emails_read(engine, settings, "marts_masked.dim_customers", None),
        "masked current view": emails_read(
            engine, settings, "marts_masked.dim_customers_current", None
        ),
    }
    if engine == "postgres":
        reporters, privileged = "shoplogs_reporters", "shoplogs_pii_reader"
        for relation in ("marts.dim_customers", "marts.dim_customers_current"):
            seen[f"reporter: {relation}"] = emails_read(engine, settings, relation, reporters)
        seen["reporter: masked view"] = emails_read(
            engine, settings, "marts_masked.dim_customers", reporters
        )
        seen["reporter: other columns"] = query(
            engine, settings,
            "set role shoplogs_reporters; select count(customer_id) from marts.dim_customers",
        )  # fmt: skip
        seen["privileged"] = emails_read(engine, settings, "marts.dim_customers", privileged)
    return seen


def raw_rows(engine: str, settings: Settings, day: date) -> dict[str, int]:
    counts = {}
    for table in RAW_TABLES:
        sql = f"select count(*) from raw_data.{table} where dt = '{day}'"
        counts[table] = int(query(engine, settings, sql)[0][0])
    return counts


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, own_aws_endpoint: str) -> Lake:
    work = tmp_path_factory.mktemp("parity")
    generate(SMALL_DEMO, work / "logs")
    settings = replace(load_settings("local"), work_dir=work, lake_bucket="parity-lake")
    settings = settings.with_endpoint(own_aws_endpoint)
    provision_local(settings)
    return Lake(settings, [ARRIVAL_DAY, ARRIVAL_DAY + timedelta(days=1)], work)


def publish(lake: Lake, day: date, batch: dict[str, list[Path]]) -> None:
    """One pipeline run up to the processed zone: ship, claim, Spark, promote."""
    ship_logs(lake.settings, batch)
    stages.claim_landing(lake.settings, day)
    stages.preprocess_locally(lake.settings, day)
    stages.promote_zones(lake.settings, day)


def answers(settings: Settings) -> tuple[dict[str, tuple[Answer, Answer]], str]:
    """Every analysis and saved query on the engine, or the error that stopped them (the
    test shows it; the marts' own checks still run)."""
    try:
        metrics = {answer.name: answer for answer in query_saved(settings)}
        analyses = run_analyses(settings)
    except Exception as exc:  # any engine's failure, reported by the test
        return {}, f"{type(exc).__name__}: {exc}"
    return {a.name: (a, metrics[a.name]) for a in analyses}, ""


def side_by_side(work: Callable[[str], None]) -> None:
    """``work`` for every engine at once: each loads and builds in dbt processes of its own,
    against its own warehouse, as the engines' pipelines would. One after another, the
    fixture took 332 s of a CI run; side by side 314 s, in an hour 12 % slower."""
    with ThreadPoolExecutor(len(ENGINES)) as pool:
        for done in [pool.submit(work, engine) for engine in ENGINES]:
            done.result()


@pytest.fixture(scope="module")
def builds(lake: Lake) -> dict[str, Build]:
    """Run the pipeline day by day; after each day's promote, every engine loads the
    partition (twice: a retried task) and builds, as its own pipeline would."""
    results = {engine: Build() for engine in ENGINES}
    settings = {
        engine: replace(lake.settings, warehouse=engine, work_dir=lake.work / engine)
        for engine in ENGINES
    }
    with ExitStack() as stack:
        stack.enter_context(mock.patch.dict("os.environ", {"SHOPLOGS_DBT_TIMEOUT_SECONDS": "600"}))
        for engine in ENGINES:
            stack.enter_context(running(engine, lake.work / engine))
        for engine in STAND_INS:
            results[engine].skipped_setup = run_setup_script(engine, settings[engine])
            # idempotent: a second run changes nothing and skips the same statements
            assert run_setup_script(engine, settings[engine]) == results[engine].skipped_setup
        batches = split_logs(lake.work / "logs", lake.work / "batches")

        def load_and_build(engine: str, day: date, attempt: str, loads: int) -> None:
            for _ in range(loads):
                load_partition(settings[engine], day)
            if engine in STAND_INS:
                rows = raw_rows(engine, settings[engine], day)
                results[engine].raw_rows.setdefault(str(day), {})[attempt] = rows
            stages.build_warehouse(settings[engine], run_date=day)

        for day, batch in zip(lake.days, batches, strict=True):
            publish(lake, day, batch)
            side_by_side(lambda engine, day=day: load_and_build(engine, day, "twice", 2))
        first = lake.days[0]
        rewrite_partition(lake.settings, first)
        side_by_side(lambda engine: load_and_build(engine, first, "rewritten", 1))
        for engine in ENGINES:
            for mart in stages.MARTS:
                results[engine].marts[mart] = table_rows(engine, settings[engine], f"marts.{mart}")
            results[engine].masking = masking_seen(engine, settings[engine])
            # One engine at a time: the analyses and saved queries run dbt in this process.
            results[engine].answers, results[engine].answers_error = answers(settings[engine])
        stages.build_warehouse(settings["duckdb"], "--full-refresh")
        for mart in stages.MARTS:
            rebuilt = table_rows("duckdb", settings["duckdb"], f"marts.{mart}")
            results["duckdb"].marts[f"{mart} (full refresh)"] = rebuilt
        # Last, when every mart is read: one customer erased in each warehouse, in place.
        results = {engine: replace(build, erasure=erase_one_customer(engine, settings[engine]))
                   for engine, build in results.items()}  # fmt: skip
    return results


# What an erasure must leave as it was on every engine. The money to the cent: fakesnow sums
# numeric(18, 2) columns as doubles, in an order DuckDB's threads choose, so the same rows
# summed twice could differ in the last bit (11310.369999999997 against ...999999).
ERASURE_TOTALS = (
    "select (select count(*) from marts.fct_orders), (select round(sum(order_total_usd), 2)"
    " from marts.fct_orders), (select round(sum(net_revenue_usd), 2) from marts.fct_orders),"
    " (select round(sum(line_amount_usd), 2) from marts.fct_order_lines),"
    " (select round(sum(lifetime_value_usd), 2) from marts.dim_customers_current),"
    " (select count(*) from marts.fct_web_sessions)"
)


def erase_one_customer(engine: str, settings: Settings) -> dict[str, Any]:
    """The warehouse side of an erasure (dbt's erase_customer) on the customer with most
    orders: rows changed per table, totals before and after, and every table (raw layer,
    staging, marts, the tests' stored failures) that still names them."""
    [(customer_id, email)] = query(
        engine, settings,
        "select customer_id, max(email) from marts.dim_customers where customer_id in"
        " (select customer_id from marts.fct_orders where order_id in"
        "  (select order_id from marts.fct_web_sessions))"
        " group by customer_id order by count(*) desc, customer_id limit 1",
    )  # fmt: skip
    sql = f"select order_id from marts.fct_orders where customer_id = '{customer_id}'"
    orders = [r[0] for r in query(engine, settings, sql)]
    before = [normalized(v) for v in query(engine, settings, ERASURE_TOTALS)[0]]
    # A test's stored failures may name them (the audit schema): two such rows planted, as a
    # test that is no longer in the project would have left them, beside one that does not.
    execute(
        engine, settings, "create schema if not exists audit",
        "create table audit.planted_failures (from_field varchar(64), n_records integer)",
        f"insert into audit.planted_failures values ('{customer_id}', 1), ('{email}', 2),"
        " ('someone-else', 3)",
    )  # fmt: skip
    counts = erasure.erase_in_warehouse(settings, erased_of(customer_id, [email], orders))
    after = [normalized(v) for v in query(engine, settings, ERASURE_TOTALS)[0]]
    tables = query(
        engine, settings,
        "select table_schema, table_name from information_schema.tables where"
        " lower(table_schema) in ('raw_data', 'staging', 'intermediate', 'marts', 'audit')",
    )  # fmt: skip
    # As whole words, in any column (a customer_key is the id and an event id).
    named = re.compile(
        rf"(?<![A-Za-z0-9])({re.escape(customer_id)}|{re.escape(email)})(?![A-Za-z0-9])"
    )
    left = [
        f"{schema}.{name}".lower()
        for schema, name in tables
        if named.search(repr(table_rows(engine, settings, f"{schema}.{name}")[1]))
    ]
    tombstoned = query(
        engine, settings,
        f"select count(*) from marts.fct_orders where customer_key = '{TOMBSTONE_CUSTOMER_ID}'",
    )[0][0]  # fmt: skip
    planted = query(engine, settings, "select from_field from audit.planted_failures")
    return {"counts": counts, "before": before, "after": after, "left": left,
            "orders": len(orders), "tombstoned": int(tombstoned),
            "planted": [row[0] for row in planted]}  # fmt: skip


@pytest.mark.parametrize("mart", stages.MARTS)
def test_every_mart_has_the_same_rows_on_every_engine(builds: dict[str, Build], mart: str) -> None:
    columns, rows = builds["duckdb"].marts[mart]
    assert rows, f"{mart} is empty on DuckDB"
    for engine in STAND_INS:
        other_columns, other_rows = builds[engine].marts[mart]
        assert other_columns == columns, engine
        assert len(other_rows) == len(rows), engine
        assert other_rows == rows, engine


@pytest.mark.parametrize("engine", ENGINES)
def test_the_metrics_answer_as_the_analyses_on_every_engine(
    builds: dict[str, Build], engine: str
) -> None:
    build = builds[engine]
    assert build.answers_error == ""
    assert build.answers
    for analysis, metrics in build.answers.values():
        assert metrics.rows, (engine, metrics.name)
        assert differences(analysis, metrics) == [], engine


def test_incremental_builds_equal_a_full_rebuild(builds: dict[str, Build]) -> None:
    marts = builds["duckdb"].marts
    for mart in stages.MARTS:
        assert marts[mart] == marts[f"{mart} (full refresh)"], mart


def test_loads_are_idempotent_per_partition(lake: Lake, builds: dict[str, Build]) -> None:
    expected = {str(day): parquet_rows(lake.settings, day) for day in lake.days}
    for engine in STAND_INS:
        for day, loads in builds[engine].raw_rows.items():
            for attempt, rows in loads.items():
                assert rows == {t: expected[day].get(t, 0) for t in RAW_TABLES}, (engine, attempt)


def test_dim_customers_keeps_every_profile_version(builds: dict[str, Build]) -> None:
    columns, rows = builds["duckdb"].marts["dim_customers"]
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_customer.setdefault(record["customer_id"], []).append(record)
    assert any(len(versions) > 1 for versions in by_customer.values()), "no profile changed"
    for versions in by_customer.values():
        versions.sort(key=lambda r: int(r["profile_version"]))
        assert [v["is_current"] for v in versions] == [False] * (len(versions) - 1) + [True]
        for earlier, later in pairwise(versions):
            assert earlier["valid_to"] == later["valid_from"]


@pytest.mark.parametrize("fact", ["fct_orders", "fct_order_lines"])
def test_orders_point_at_the_profile_version_of_their_time(
    builds: dict[str, Build], fact: str
) -> None:
    """Once every customer has arrived, no order is left on the unknown customer."""
    columns, rows = builds["duckdb"].marts[fact]
    keys = [row[columns.index("customer_key")] for row in rows]
    assert all(keys), "an order without its customer's profile version"
    assert "-1" not in keys, "an order left on the unknown customer after its customer arrived"
    _, customers = builds["duckdb"].marts["dim_customers"]
    assert set(keys) <= {row[0] for row in customers}


def test_setup_scripts_run_on_the_stand_ins_but_for_account_objects(
    builds: dict[str, Build],
) -> None:
    fakesnow_skipped = builds["fakesnow"].skipped_setup
    assert fakesnow_skipped and all(
        s.lower().startswith(("create role", "create warehouse", "create user", "grant",
                              "create storage integration", "create masking policy"))
        for s in fakesnow_skipped
    )  # fmt: skip
    assert [s.split("\n")[0] for s in builds["postgres"].skipped_setup] == [
        "call shoplogs_ensure_masking_policies()",
        "create external schema if not exists spectrum",
        "grant usage on schema spectrum to group shoplogs_transformers",
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_analysts_never_read_a_clear_email(builds: dict[str, Build], engine: str) -> None:
    """The masked views hold every customer's row with the email masked, on every engine;
    on PostgreSQL (Redshift's stand-in) the reporters' role is refused the clear column of
    the mart and its view, reads the rest, and the privileged role reads the emails clear.
    DuckDB and fakesnow have no roles: there the masked schema is what analysts query."""
    seen = builds[engine].masking
    clear = seen["clear"]
    assert clear and all("@" in email for email in clear)
    assert seen["masked view"] == ["*****"] * len(clear)
    assert seen["masked current view"] and set(seen["masked current view"]) == {"*****"}
    if engine == "postgres":
        for relation in ("marts.dim_customers", "marts.dim_customers_current"):
            assert seen[f"reporter: {relation}"].startswith("permission denied"), relation
        assert seen["reporter: masked view"] == seen["masked view"]
        assert seen["reporter: other columns"][0][0] > 0
        assert seen["privileged"] == clear


def test_source_columns_follow_the_parquet_column_order(
    lake: Lake, builds: dict[str, Build]
) -> None:
    """Redshift's Parquet COPY maps columns by position: the sources must list them in the
    order the Spark job writes them (the raw tables are created from the sources)."""
    declared = {}
    for path in (DBT_PROJECT_DIR / "models" / "staging").rglob("_*__sources.yml"):
        for source in yaml.safe_load(path.read_text())["sources"]:
            for table in source["tables"]:
                declared[table["name"]] = [c["name"] for c in table["columns"]]
    s3 = stages.aws_client(lake.settings, "s3")
    day = lake.days[-1]
    for table, names in stages.read_manifest(lake.settings, day).partition_files().items():
        body = s3.get_object(
            Bucket=lake.settings.lake_bucket, Key=layout.processed_prefix(table, day) + names[0]
        )["Body"].read()
        written = pq.ParquetFile(pa.BufferReader(body)).schema_arrow.names
        assert declared[table] == [*written, "dt"], table


@pytest.mark.parametrize("engine", ENGINES)
def test_the_erasure_sql_leaves_no_trace_and_keeps_the_money(
    builds: dict[str, Build], engine: str
) -> None:
    erased = builds[engine].erasure
    assert erased["left"] == [], "tables still naming the erased customer"
    assert erased["after"] == erased["before"]
    assert erased["tombstoned"] == erased["orders"] > 0
    counts = erased["counts"]
    assert counts["marts.dim_customers"] > 0 and counts["marts.fct_orders"] == erased["orders"]
    # The audit schema's stored failures lost the rows naming them, and only those.
    assert counts["audit.planted_failures"] == 2 and erased["planted"] == ["someone-else"]
    if engine in STAND_INS:  # their raw layer is a loaded copy; DuckDB reads the lake
        assert counts["raw_data.customers"] > 0 and counts["raw_data.orders"] > 0
