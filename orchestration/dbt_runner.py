"""Invoke dbt for the pipeline, with the environment the profile reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from orchestration.settings import DBT_PROJECT_DIR, Settings


class DbtError(RuntimeError):
    pass


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
    if "AWS_SECRET_ACCESS_KEY" in os.environ:
        env["DBT_ENV_SECRET_AWS_SECRET_ACCESS_KEY"] = os.environ["AWS_SECRET_ACCESS_KEY"]
    return env


def dbt_env(settings: Settings) -> dict[str, str]:
    return {**os.environ, **profile_env(settings)}


def run_dbt(settings: Settings, args: list[str], log_file: Path) -> None:
    """Run ``dbt <args>`` in the project; on failure raise with the failing lines."""
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    command = [str(Path(sys.executable).with_name("dbt")), *args]
    with log_file.open("ab") as log:
        log.write(f"\n$ dbt {' '.join(args)}\n".encode())
        log.flush()
        result = subprocess.run(
            command,
            cwd=DBT_PROJECT_DIR,
            env=dbt_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if result.returncode != 0:
        lines = log_file.read_text(errors="replace").splitlines()
        failures = [ln for ln in lines if "ERROR" in ln or "FAIL" in ln][-10:] or lines[-15:]
        raise DbtError(
            f"`dbt {' '.join(args)}` failed (exit {result.returncode}); full log: {log_file}\n"
            + "\n".join(failures)
        )
