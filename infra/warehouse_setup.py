"""Render and run the warehouse setup scripts in ``infra/<warehouse>/setup.sql``.

    python -m infra.warehouse_setup snowflake        # print, ${...} filled from the env
    python -m infra.warehouse_setup redshift
    python -m infra.warehouse_setup apply redshift --secret shoplogs/dev/connections/redshift_admin

An administrator runs the printed script once per account (snowsql, psql, the console), or
``apply`` runs it with a connection read from AWS Secrets Manager, in the shape the
pipeline's Airflow secrets backend reads (``conn_type``, ``host``, ``login``, ``extra``...).
CI runs the same scripts against the local stand-ins (``execute``), statement by statement,
skipping only what the stand-in cannot do at all (``EMULATOR_GAPS``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from lake import layout

INFRA = Path(__file__).resolve().parent
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")

# What each stand-in cannot run: account-level objects that only exist in the real service.
EMULATOR_GAPS: dict[str, tuple[str, ...]] = {
    # fakesnow has no roles, warehouses, users, grants or storage integrations.
    "fakesnow": (
        r"create (role|warehouse|user|storage integration|masking policy)\b",
        r"grant\b",
    ),
    # PostgreSQL has no Spectrum (external schemas over the Glue catalog) and no masking
    # policies (the dbt project emulates them: macros/privacy/).
    "postgres": (
        r"create external schema\b",
        r"grant usage on schema spectrum\b",
        r"call shoplogs_ensure_masking_policies\b",
    ),
}

# Redshift syntax a stand-in spells differently, as (pattern, replacement): the rest of the
# script runs on it as Redshift gets it.
EMULATOR_REWRITES: dict[str, tuple[tuple[str, str], ...]] = {
    # A user that logs in only with IAM's temporary credentials: on PostgreSQL, a user
    # without a password.
    "postgres": (
        (r"\bpassword disable\b", "password null"),
        # Roles: Redshift lists them in svv_roles and grants one with GRANT ROLE.
        (r"\bsvv_roles where role_name\b", "pg_roles where rolname"),
        (r"\bgrant role (\w+) to\b", r"grant \1 to"),
    ),
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


def rewrite(sql: str, engine: str) -> str:
    """``sql`` as the stand-in ``engine`` spells it (``EMULATOR_REWRITES``)."""
    for pattern, replacement in EMULATOR_REWRITES.get(engine, ()):
        sql = re.sub(pattern, replacement, sql, flags=re.IGNORECASE)
    return sql


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
    sql = rewrite(render(script_path(warehouse).read_text(), variables), engine)
    to_run, skipped = runnable(statements(sql), EMULATOR_GAPS.get(engine, ()))
    for statement in to_run:
        run(statement)
    return skipped


@dataclass(frozen=True)
class Connection:
    """An Airflow connection as stored in Secrets Manager (JSON or URI form)."""

    conn_type: str
    host: str = ""
    port: int | None = None
    login: str = ""
    password: str = field(default="", repr=False)
    schema: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def parse_connection(secret: str) -> Connection:
    """Read a connection secret; a shape Airflow would not read is an error that says so."""
    if secret.lstrip().startswith("{"):
        raw = json.loads(secret)
        if "conn_type" not in raw:
            raise ValueError("the connection secret has no conn_type; see orchestration/README")
        extra = raw.get("extra") or {}
        return Connection(
            conn_type=raw["conn_type"], host=raw.get("host") or "", port=raw.get("port"),
            login=raw.get("login") or "", password=raw.get("password") or "",
            schema=raw.get("schema") or "",
            extra=json.loads(extra) if isinstance(extra, str) else dict(extra),
        )  # fmt: skip
    uri = urlsplit(secret)
    if not uri.scheme:
        raise ValueError("the connection secret is neither JSON nor a connection URI")
    return Connection(
        conn_type=uri.scheme.replace("-", "_"), host=uri.hostname or "", port=uri.port,
        login=unquote(uri.username or ""), password=unquote(uri.password or ""),
        schema=uri.path.lstrip("/"), extra=dict(parse_qsl(uri.query)),
    )  # fmt: skip


def derived_variables(secret_arn: str) -> dict[str, str]:
    """``${...}`` values follow from the secret's account and environment
    (``arn:...:<account>:secret:shoplogs/<env>/connections/...``), named as infra/ names them.
    """
    from orchestration.settings import (
        PROJECT,
        redshift_pipeline_user,
        resource_names,
        snowflake_database,
    )

    account = secret_arn.split(":")[4]
    name = secret_arn.split(":secret:", 1)[-1]
    env = name.split("/")[1] if name.startswith(f"{PROJECT}/") and name.count("/") >= 2 else ""
    if not env:
        return {}
    bucket, _ = resource_names(env, account)
    role = f"arn:aws:iam::{account}:role/{PROJECT}-{env}"
    return {
        "LAKE_BUCKET": bucket,
        "SNOWFLAKE_DATABASE": snowflake_database(env),
        "SNOWFLAKE_STAGE_URL": layout.uri(bucket, layout.PROCESSED),
        "GLUE_DATABASE": f"{PROJECT}_{env}",
        "REDSHIFT_SPECTRUM_ROLE_ARN": f"{role}-redshift-copy",
        "REDSHIFT_PIPELINE_USER": redshift_pipeline_user(env),
        "SNOWFLAKE_STORAGE_ROLE_ARN": f"{role}-snowflake-storage",
    }


def _connect_redshift(conn: Connection) -> Any:
    import redshift_connector

    options: dict[str, Any] = {"host": conn.host, "port": conn.port or 5439,
                               "database": conn.schema, "user": conn.login}  # fmt: skip
    if conn.extra.get("auth_method", "database" if conn.password else "iam") == "iam":
        # Redshift Serverless: temporary credentials for the caller's IAM identity.
        region = conn.extra.get("region_name", os.environ.get("AWS_REGION"))
        options |= {"iam": True, "is_serverless": True, "region": region,
                    "serverless_work_group": conn.extra.get("workgroup_name", "")}  # fmt: skip
    else:
        options["password"] = conn.password
    connection = redshift_connector.connect(**options)
    connection.autocommit = True
    return connection


def _connect_postgres(conn: Connection) -> Any:
    """The Redshift stand-in; also how CI runs ``apply`` end to end."""
    import psycopg2

    connection = psycopg2.connect(host=conn.host, port=conn.port or 5432, user=conn.login,
                                  password=conn.password or None, dbname=conn.schema)  # fmt: skip
    connection.autocommit = True
    return connection


def _connect_snowflake(conn: Connection) -> Any:
    import snowflake.connector
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(
        conn.extra["private_key_content"].encode(), password=None
    ).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    return snowflake.connector.connect(
        account=conn.extra["account"], user=conn.login, private_key=key,
        role=conn.extra.get("role"), warehouse=conn.extra.get("warehouse"),
    )  # fmt: skip


CONNECTORS: dict[str, Callable[[Connection], Any]] = {
    "redshift": _connect_redshift,
    "postgres": _connect_postgres,
    "snowflake": _connect_snowflake,
}


def apply(
    warehouse: str,
    secret_id: str,
    secrets: Any,
    environ: Mapping[str, str] = os.environ,
    connectors: Mapping[str, Callable[[Connection], Any]] = CONNECTORS,
) -> list[str]:
    """Run ``warehouse``'s setup script on the connection in ``secret_id``; returns what the
    engine had to skip (only a stand-in skips anything)."""
    found = secrets.get_secret_value(SecretId=secret_id)
    conn = parse_connection(found["SecretString"])
    if conn.conn_type not in connectors:
        raise ValueError(
            f"secret {secret_id} holds a {conn.conn_type!r} connection; "
            f"apply knows {', '.join(connectors)}"
        )
    variables = {**derived_variables(found["ARN"]), **environ}
    connection = connectors[conn.conn_type](conn)
    try:
        cursor = connection.cursor()
        return execute(warehouse, conn.conn_type, variables, cursor.execute)
    finally:
        connection.close()


def apply_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.warehouse_setup apply")
    parser.add_argument("warehouse", choices=["snowflake", "redshift"])
    parser.add_argument("--secret", required=True, help="e.g. shoplogs/dev/connections/...")
    args = parser.parse_args(argv)
    import boto3

    try:
        skipped = apply(args.warehouse, args.secret, boto3.client("secretsmanager"))
    except (FileNotFoundError, KeyError, ValueError) as exc:
        print(f"warehouse_setup: {exc.args[0]}", file=sys.stderr)
        return 1
    print(f"{args.warehouse} setup applied from {args.secret}" + (
        f"; skipped {len(skipped)} statements the engine lacks" if skipped else ""))  # fmt: skip
    return 0


def printed_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment, plus what follows from it: the stage URL from ``LAKE_BUCKET``, the
    pipeline's Redshift user from ``SHOPLOGS_ENV``."""
    from orchestration.settings import redshift_pipeline_user

    variables = dict(environ)
    if variables.get("LAKE_BUCKET"):
        variables.setdefault("SNOWFLAKE_STAGE_URL", f"s3://{variables['LAKE_BUCKET']}/processed/")
    if variables.get("SHOPLOGS_ENV"):
        variables.setdefault(
            "REDSHIFT_PIPELINE_USER", redshift_pipeline_user(variables["SHOPLOGS_ENV"])
        )
    return variables


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["apply"]:
        return apply_main(args[1:])
    if len(args) != 1:
        print(
            "usage: python -m infra.warehouse_setup snowflake|redshift\n"
            "       python -m infra.warehouse_setup apply snowflake|redshift --secret ID",
            file=sys.stderr,
        )
        return 2
    try:
        print(render(script_path(args[0]).read_text(), printed_variables(os.environ)))
    except (FileNotFoundError, KeyError) as exc:
        print(f"warehouse_setup: {exc.args[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
