"""Invoke dbt for the pipeline, with the environment the profile reads."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from orchestration.settings import DBT_PROJECT_DIR, Settings


class DbtError(RuntimeError):
    pass


# Airflow renders these templates when a dbt task runs, from the connection that the
# secrets backend (AWS Secrets Manager on MWAA) returns; nothing secret is parsed into the DAG.
CONNECTION_ENV = {
    "snowflake": {
        "SNOWFLAKE_ACCOUNT": "{{ conn.snowflake_default.extra_dejson.account }}",
        "SNOWFLAKE_USER": "{{ conn.snowflake_default.login }}",
        "DBT_ENV_SECRET_SNOWFLAKE_PRIVATE_KEY": (
            "{{ conn.snowflake_default.extra_dejson.private_key_content }}"
        ),
        "SNOWFLAKE_ROLE": "{{ conn.snowflake_default.extra_dejson.role }}",
        "SNOWFLAKE_WAREHOUSE": "{{ conn.snowflake_default.extra_dejson.warehouse }}",
        "SNOWFLAKE_DATABASE": "{{ conn.snowflake_default.extra_dejson.database }}",
    },
    "redshift": {
        "REDSHIFT_HOST": "{{ conn.redshift_default.host }}",
        "REDSHIFT_PORT": "{{ conn.redshift_default.port or 5439 }}",
        "REDSHIFT_USER": "{{ conn.redshift_default.login }}",
        "REDSHIFT_DATABASE": "{{ conn.redshift_default.schema }}",
        "REDSHIFT_CLUSTER_ID": "{{ conn.redshift_default.extra_dejson.cluster_identifier }}",
        "REDSHIFT_AUTH_METHOD": "{{ conn.redshift_default.extra_dejson.auth_method or 'iam' }}",
        "DBT_ENV_SECRET_REDSHIFT_PASSWORD": "{{ conn.redshift_default.password or '' }}",
    },
}


def profile_env(settings: Settings) -> dict[str, str]:
    """Variables ``dbt_project/profiles.yml`` and the sources read, from the settings."""
    env = {
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "DBT_TARGET": settings.dbt_target,
        "DUCKDB_PATH": str(settings.duckdb_path),
        "LAKE_BUCKET": settings.lake_bucket,
        "AWS_REGION": settings.region,
    }
    if settings.aws_endpoint_url:
        env["AWS_ENDPOINT_URL"] = settings.aws_endpoint_url
    return env


def dbt_env(settings: Settings, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment for a dbt subprocess; secrets are added here, never to what
    a DAG serializes."""
    env = {**os.environ, **profile_env(settings), **(extra or {})}
    if "AWS_SECRET_ACCESS_KEY" in os.environ:
        env["DBT_ENV_SECRET_AWS_SECRET_ACCESS_KEY"] = os.environ["AWS_SECRET_ACCESS_KEY"]
    return env


def run_dbt(
    settings: Settings, args: list[str], log_file: Path, extra_env: Mapping[str, str] | None = None
) -> None:
    """Run ``dbt <args>`` in the project; on failure raise with the failing lines."""
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    command = [str(Path(sys.executable).with_name("dbt")), *args]
    # A stuck warehouse connection must not hang a run forever (unset: no limit).
    timeout = float(os.environ.get("SHOPLOGS_DBT_TIMEOUT_SECONDS", "0")) or None
    with log_file.open("ab") as log:
        log.write(f"\n$ dbt {' '.join(args)}\n".encode())
        log.flush()
        try:
            result = subprocess.run(
                command,
                cwd=DBT_PROJECT_DIR,
                env=dbt_env(settings, extra_env),
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise DbtError(
                f"`dbt {args[0]}` did not finish within {timeout:.0f} s "
                f"(SHOPLOGS_DBT_TIMEOUT_SECONDS); full log: {log_file}"
            ) from exc
    if result.returncode != 0:
        lines = log_file.read_text(errors="replace").splitlines()
        failures = [ln for ln in lines if "ERROR" in ln or "FAIL" in ln][-10:] or lines[-15:]
        raise DbtError(
            f"`dbt {' '.join(args)}` failed (exit {result.returncode}); full log: {log_file}\n"
            + "\n".join(failures)
        )
