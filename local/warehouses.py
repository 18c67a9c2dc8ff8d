"""Local stand-ins for the cloud warehouses: a real PostgreSQL server for the Redshift family
and a fakesnow server (Snowflake's HTTP API over DuckDB) for Snowflake.

Each context manager starts its server on a free loopback port, yields the variables the
matching dbt target in ``dbt_project/profiles.yml`` reads, and stops the server however the
block exits. ``load_partition`` is the pipeline's load stage for them: neither stand-in can
read Parquet from S3, so the partition is first put where each can (what the real COPY
would read), then the real load operation runs. Tests and the benchmark use them; nothing
here runs in AWS.
"""

from __future__ import annotations

import glob
import io
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path
from typing import Any
from unittest import mock

from infra.warehouse_setup import execute
from lake import layout
from local.servers import free_port, start_on_free_port, stop
from orchestration import stages
from orchestration.settings import Settings

# The real warehouse each stand-in takes the setup script (infra/<warehouse>/setup.sql) of.
SETUP_SCRIPT = {"postgres": "redshift", "fakesnow": "snowflake"}
POSTGRES_USER = "shoplogs"
POSTGRES_DATABASE = "shoplogs"


class EngineUnavailable(RuntimeError):
    pass


def postgres_bin_dir() -> Path:
    """Where Debian (or a PATH entry) keeps initdb/pg_ctl; the newest version wins."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise EngineUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found; run `make install`, "
        "which installs Debian's `postgresql` package, or put a PostgreSQL bin folder on PATH"
    )


def _version_key(path: str) -> int:
    version = Path(path).parents[1].name
    return int(version) if version.isdigit() else 0


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; CI runs as root, so drop to the `postgres` user."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def postgres_server(timeout: float = 60.0) -> Iterator[dict[str, str]]:
    """A throwaway PostgreSQL cluster (trust auth, no fsync) on a free port."""
    bin_dir = postgres_bin_dir()
    data_root = Path(tempfile.mkdtemp(prefix="shoplogs-pg-"))
    if os.geteuid() == 0:
        server_user = pwd.getpwnam("postgres")
        os.chown(data_root, server_user.pw_uid, server_user.pw_gid)
    data_dir, socket_dir = data_root / "data", data_root
    port = free_port()
    log_file = data_root / "server.log"
    run = _as_server_user
    try:
        subprocess.run(
            run([str(bin_dir / "initdb"), "-D", str(data_dir), "-U", POSTGRES_USER,
                 "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"]),
            check=True, capture_output=True, timeout=timeout,
        )  # fmt: skip
        options = (
            f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        subprocess.run(
            run([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-o", options,
                 "-l", str(log_file), "-w", "-t", str(int(timeout)), "start"]),
            check=True, capture_output=True, timeout=timeout + 5,
        )  # fmt: skip
        subprocess.run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port),
             "-U", POSTGRES_USER, POSTGRES_DATABASE],
            check=True, capture_output=True, timeout=timeout,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        output = getattr(exc, "stderr", b"") or b""
        log = log_file.read_text(errors="replace") if log_file.exists() else ""
        _stop_postgres(bin_dir, data_dir)
        shutil.rmtree(data_root, ignore_errors=True)
        raise EngineUnavailable(
            f"PostgreSQL did not start in {data_dir}: {output.decode(errors='replace')}{log}"
        ) from exc
    try:
        yield {
            "POSTGRES_HOST": "127.0.0.1",
            "POSTGRES_PORT": str(port),
            "POSTGRES_USER": POSTGRES_USER,
            "POSTGRES_DATABASE": POSTGRES_DATABASE,
        }
    finally:
        _stop_postgres(bin_dir, data_dir)
        shutil.rmtree(data_root, ignore_errors=True)


def _stop_postgres(bin_dir: Path, data_dir: Path) -> None:
    if (data_dir / "postmaster.pid").exists():
        subprocess.run(
            _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate",
                             "-w", "stop"]),
            capture_output=True, timeout=60,
        )  # fmt: skip


@contextmanager
def fakesnow_server(stage_root: Path, timeout: float = 30.0) -> Iterator[dict[str, str]]:
    """A fakesnow server process with one in-memory account shared by its connections.

    fakesnow cannot read S3 (DuckDB's httpfs is not installable here), so its external stage
    points at ``stage_root``, a local folder the emulator load mirrors the processed zone into.
    One fresh server per use: after a failed statement its transaction can stay aborted.
    """
    executable = Path(sys.executable).with_name("fakesnow")
    if not executable.exists():
        raise EngineUnavailable("fakesnow is not installed; run `make install` first")
    log_path = Path(tempfile.mkdtemp(prefix="shoplogs-fakesnow-")) / "server.log"
    with log_path.open("ab") as log:
        process, port = start_on_free_port(
            lambda chosen: [str(executable), "-s", "-p", str(chosen)],
            lambda chosen: f"http://127.0.0.1:{chosen}/",
            what="fakesnow", log=log, see=str(log_path), timeout=timeout,
        )  # fmt: skip
    try:
        stage_root.mkdir(parents=True, exist_ok=True)
        yield {
            "FAKESNOW_PORT": str(port),
            "FAKESNOW_STAGE_URL": stage_root.resolve().as_uri() + "/",
        }
    finally:
        stop(process)


@contextmanager
def running(engine: str, work: Path) -> Iterator[dict[str, str]]:
    """Start ``engine``'s stand-in (nothing to start for DuckDB) with its variables in
    os.environ for the block, where the dbt profile and ``connect`` read them."""
    with ExitStack() as stack:
        env: dict[str, str] = {}
        if engine == "postgres":
            env = stack.enter_context(postgres_server())
        elif engine == "fakesnow":
            env = stack.enter_context(fakesnow_server(work / "fakesnow-stage"))
        stack.enter_context(mock.patch.dict(os.environ, env))
        yield env


def connect(engine: str, settings: Settings) -> Any:
    """A DB-API connection to a running engine (its variables in os.environ)."""
    import duckdb
    import psycopg2
    import snowflake.connector

    if engine == "duckdb":
        return duckdb.connect(str(settings.duckdb_path), read_only=True)
    if engine == "postgres":
        connection = psycopg2.connect(
            host=os.environ["POSTGRES_HOST"], port=os.environ["POSTGRES_PORT"],
            user=os.environ["POSTGRES_USER"], dbname=os.environ["POSTGRES_DATABASE"],
        )  # fmt: skip
        connection.autocommit = True
        return connection
    return snowflake.connector.connect(
        user="fakesnow", password="fakesnow", account="fakesnow", host="127.0.0.1",
        port=int(os.environ["FAKESNOW_PORT"]), protocol="http",
        database=settings.snowflake_database, login_timeout=20, network_timeout=60,
    )  # fmt: skip


def run_setup_script(engine: str, settings: Settings) -> list[str]:
    """Run infra/<warehouse>/setup.sql on the stand-in; returns what it had to skip."""
    variables = {
        "LAKE_BUCKET": settings.lake_bucket,
        "SNOWFLAKE_DATABASE": settings.snowflake_database,
        "SNOWFLAKE_STORAGE_ROLE_ARN": "arn:aws:iam::123456789012:role/shoplogs-snowflake",
        "SNOWFLAKE_STAGE_URL": os.environ.get("FAKESNOW_STAGE_URL", ""),
        "GLUE_DATABASE": settings.glue_database,
        "REDSHIFT_SPECTRUM_ROLE_ARN": "arn:aws:iam::123456789012:role/shoplogs-spectrum",
        "REDSHIFT_PIPELINE_USER": settings.redshift_pipeline_user,
    }
    connection = connect(engine, settings)
    try:
        cursor = connection.cursor()
        return execute(SETUP_SCRIPT[engine], engine, variables, cursor.execute)
    finally:
        connection.close()


def load_partition(settings: Settings, run_date: date) -> dict[str, int]:
    """The load stage on a stand-in (or DuckDB): stage the partition where the stand-in
    can read it, then run the real load operation, as the pipeline's load task does."""
    manifest = stages.read_manifest(settings, run_date)
    s3 = stages.aws_client(settings, "s3")
    files = manifest.partition_files()
    if settings.warehouse == "fakesnow":
        mirror_to_stage(s3, settings.lake_bucket, run_date, files, fakesnow_stage_root())
    elif settings.warehouse == "postgres":
        stage_into_postgres(s3, settings.lake_bucket, run_date, files)
    return stages.load_warehouse(settings, run_date)


def fakesnow_stage_root() -> Path:
    url = os.environ.get("FAKESNOW_STAGE_URL", "")
    if not url.startswith("file://"):
        raise RuntimeError(
            "FAKESNOW_STAGE_URL is not set to a file:// folder; start the emulator with "
            "local.warehouses.fakesnow_server(), which sets it"
        )
    return Path(url.removeprefix("file://"))


def mirror_to_stage(
    s3: Any, bucket: str, run_date: date, files: dict[str, list[str]], root: Path
) -> None:
    """Make ``root/<table>/dt=<run>/`` hold exactly the partition's files."""
    for table, names in files.items():
        folder = root / layout.processed_prefix(table, run_date).removeprefix(layout.PROCESSED)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.iterdir():
            if stale.name not in names:
                stale.unlink()
        for name in names:
            key = layout.processed_prefix(table, run_date) + name
            s3.download_file(bucket, key, str(folder / name))


def stage_into_postgres(s3: Any, bucket: str, run_date: date, files: dict[str, list[str]]) -> None:
    """Fill ``raw_data.<table>__incoming`` with the partition's rows, as Redshift's COPY would."""
    import psycopg2
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    connection = psycopg2.connect(
        host=os.environ["POSTGRES_HOST"],
        port=os.environ["POSTGRES_PORT"],
        user=os.environ["POSTGRES_USER"],
        dbname=os.environ["POSTGRES_DATABASE"],
    )
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("create schema if not exists raw_data")
            for table, names in files.items():
                tables = [
                    pq.read_table(
                        io.BytesIO(
                            s3.get_object(
                                Bucket=bucket,
                                Key=layout.processed_prefix(table, run_date) + name,
                            )["Body"].read()
                        )
                    )
                    for name in names
                ]
                data = pa.concat_tables(tables)
                incoming = f"raw_data.{table}__incoming"
                columns = ", ".join(
                    f"{field.name} {postgres_type(field.type)}" for field in data.schema
                )
                cursor.execute(f"drop table if exists {incoming}")
                cursor.execute(f"create table {incoming} ({columns})")
                buffer = io.BytesIO()
                # Quote every value so that an empty string stays one; NULL stays unquoted.
                options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
                pacsv.write_csv(data, buffer, options)
                buffer.seek(0)
                cursor.copy_expert(f"copy {incoming} from stdin with (format csv)", buffer)
    finally:
        connection.close()


def postgres_type(arrow: Any) -> str:
    import pyarrow as pa

    if pa.types.is_string(arrow):
        return "text"
    if pa.types.is_timestamp(arrow):
        return "timestamp"
    if pa.types.is_boolean(arrow):
        return "boolean"
    if pa.types.is_int64(arrow):
        return "bigint"
    if pa.types.is_integer(arrow):
        return "integer"
    if pa.types.is_decimal(arrow):
        return f"numeric({arrow.precision}, {arrow.scale})"
    if pa.types.is_date(arrow):
        return "date"
    if pa.types.is_floating(arrow):
        return "double precision"
    raise TypeError(f"no PostgreSQL type for Parquet type {arrow}; extend postgres_type()")
