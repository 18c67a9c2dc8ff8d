"""Invoke dbt for the pipeline, with the environment the profile reads."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from lake import layout
from orchestration.settings import DBT_PROJECT_DIR, Settings
from orchestration.tools import run_tool

MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"
PROFILE = "shoplogs"

# Airflow options the dbt task group (Cosmos watcher mode) wants, as ``section.key``: MWAA
# sets them through infra/mwaa_bundle.py, local Airflow through the environment. Cosmos
# otherwise copies every node's outcome into an Airflow Variable as it happens, so that a
# killed producer's retry can restore them: a write per node, and on MWAA every Variable read
# asks Secrets Manager first. Without it the outcomes are saved once, when the producer fails;
# a producer killed outright (OOM) leaves its per-model tasks to build their own node.
AIRFLOW_CONFIGURATION = {"cosmos.enable_watcher_reliable_retry": "False"}

# The Airflow UI's link to the docs site: Cosmos's Airflow 3 plugin (Airflow >= 3.1) serves
# the published site (index.html, manifest.json, catalog.json) from ``dir`` under
# ``/cosmos/<slug>/`` and adds an entry to the Browse menu.
DOCS_VIEW_SLUG = "shoplogs"
DOCS_VIEW_NAME = "dbt docs: shop analytics"


def docs_view_configuration(docs_dir: str, conn_id: str | None = None) -> dict[str, str]:
    """``[cosmos] dbt_docs_projects``: where the plugin reads the published docs site
    (a folder, or ``s3://bucket/docs/`` read through the Airflow connection ``conn_id``)."""
    project: dict[str, str] = {"dir": docs_dir, "name": DOCS_VIEW_NAME}
    if conn_id:
        project["conn_id"] = conn_id
    return {"cosmos.dbt_docs_projects": json.dumps({DOCS_VIEW_SLUG: project}, sort_keys=True)}


def dbt_executable() -> str:
    """``SHOPLOGS_DBT_EXECUTABLE`` (on MWAA, the virtualenv the startup script makes: dbt
    cannot be installed under MWAA's constraints, infra/mwaa/README.md), else dbt beside this
    interpreter (the project's venv), else the one on PATH."""
    configured = os.environ.get("SHOPLOGS_DBT_EXECUTABLE")
    if configured:
        return configured
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def profile_args(settings: Settings) -> list[str]:
    """``--profile``/``--target`` as Cosmos passes them. dbt keys its partial-parse state on
    these flags as given: the same flags everywhere let every dbt run after ``dbt parse``
    reuse its parse (~5 s each) instead of parsing the whole project again."""
    return ["--profile", PROFILE, "--target", settings.dbt_target]


# Airflow renders these templates when a dbt task runs, from the connection that the
# secrets backend (AWS Secrets Manager on MWAA) returns; nothing secret is parsed into the DAG.
# Airflow renders with StrictUndefined: an absent key raises. Optional keys are read with a
# default of '' and profiles.yml reads '' as its own default, so each default is written once.
CONNECTION_ENV = {
    "snowflake": {
        "SNOWFLAKE_ACCOUNT": "{{ conn.snowflake_default.extra_dejson.account }}",
        "SNOWFLAKE_USER": "{{ conn.snowflake_default.login }}",
        "DBT_ENV_SECRET_SNOWFLAKE_PRIVATE_KEY": (
            "{{ conn.snowflake_default.extra_dejson.private_key_content }}"
        ),
        "SNOWFLAKE_ROLE": "{{ conn.snowflake_default.extra_dejson.get('role') or '' }}",
        "SNOWFLAKE_WAREHOUSE": "{{ conn.snowflake_default.extra_dejson.get('warehouse') or '' }}",
    },
    "redshift": {
        "REDSHIFT_HOST": "{{ conn.redshift_default.host }}",
        "REDSHIFT_PORT": "{{ conn.redshift_default.port or 5439 }}",
        # With IAM auth on Serverless the user is the caller's IAM identity, whatever this says.
        "REDSHIFT_USER": "{{ conn.redshift_default.login or '' }}",
        "REDSHIFT_DATABASE": "{{ conn.redshift_default.schema or '' }}",
        "REDSHIFT_CLUSTER_ID": (
            "{{ conn.redshift_default.extra_dejson.get('cluster_identifier') or '' }}"
        ),
        "REDSHIFT_AUTH_METHOD": "{{ conn.redshift_default.extra_dejson.get('auth_method') or '' }}",
        "DBT_ENV_SECRET_REDSHIFT_PASSWORD": "{{ conn.redshift_default.password or '' }}",
    },
}


def profile_env(settings: Settings) -> dict[str, str]:
    """Variables ``dbt_project/profiles.yml`` and the sources read, from the settings."""
    env = {
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "DBT_TARGET": settings.dbt_target,
        # generate_schema_name: only prod writes the unprefixed marts of a real warehouse.
        "SHOPLOGS_ENV": settings.env,
        # Named by the environment, not by the connection a person typed in.
        "SNOWFLAKE_DATABASE": settings.snowflake_database,
        "DUCKDB_PATH": str(settings.duckdb_path),
        "LAKE_BUCKET": settings.lake_bucket,
        # DuckDB reads the processed zone in place (the sources' external_location).
        "SHOPLOGS_PROCESSED_PARQUET": layout.processed_glob(settings.lake_bucket),
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
    # A role's credentials (MWAA's execution role; the local stack's assumed roles) come
    # with a session token, without which S3 refuses the key.
    if "AWS_SESSION_TOKEN" in os.environ:
        env["DBT_ENV_SECRET_AWS_SESSION_TOKEN"] = os.environ["AWS_SESSION_TOKEN"]
    return env


def failing_lines(lines: list[str]) -> list[str]:
    """dbt's own summary of what failed, or the end of its output."""
    return [ln for ln in lines if "ERROR" in ln or "FAIL" in ln][-10:] or lines[-15:]


def seed_partial_parse(target_dir: Path, project_target: Path = MANIFEST.parent) -> None:
    """Start ``target_dir`` from the project's own parse state, as Cosmos does for each of
    its tasks: without it the run's first dbt command parses the whole project (~5 s)."""
    state = project_target / "partial_parse.msgpack"
    copy = target_dir / state.name
    if state.exists() and (not copy.exists() or copy.stat().st_mtime < state.stat().st_mtime):
        target_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(state, copy)


def run_dbt(
    settings: Settings,
    args: list[str],
    log_file: Path,
    extra_env: Mapping[str, str] | None = None,
    target_dir: Path | None = None,
) -> None:
    """Run ``dbt <args>`` in the project; on failure raise with the failing lines.

    dbt writes its ``target/`` (``target_dir``, by default the run's:
    ``Settings.dbt_target_dir``) and ``logs/`` under the work directory, never into the
    project, which on MWAA lies in the read-only DAGs folder."""
    target_dir = target_dir or settings.dbt_target_dir
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    seed_partial_parse(target_dir)
    # A stuck warehouse connection must not hang a run forever (unset: no limit).
    timeout = float(os.environ.get("SHOPLOGS_DBT_TIMEOUT_SECONDS", "0")) or None
    paths = {"DBT_TARGET_PATH": str(target_dir), "DBT_LOG_PATH": str(settings.dbt_log_dir)}
    run_tool(
        [dbt_executable(), *args, *profile_args(settings)],
        what=f"`dbt {' '.join(args)}`", log_file=log_file,
        env=dbt_env(settings, {**(extra_env or {}), **paths}),
        cwd=DBT_PROJECT_DIR, timeout=timeout, append=True, telling=failing_lines,
    )  # fmt: skip


# What a parse leaves that later dbt commands, Cosmos and MetricFlow's `mf` (the semantic
# manifest) read from the project's target/.
PARSE_STATE = ("manifest.json", "partial_parse.msgpack", "erd.json", "semantic_manifest.json")


def build_manifest(settings: Settings, log_file: Path) -> Path:
    """``dbt parse`` for the project's own ``target/``: the manifest Cosmos renders the DAG
    from (no warehouse needed), built before Airflow starts and shipped in the MWAA bundle.
    The docs overview's star schema diagram is redrawn first if the marts changed
    (``orchestration.erd``), so what ships never drifts from the models.

    dbt parses into a folder of its own; the files then replace the project's atomically, so
    a DAG parse (or a second build beside this one) never reads a half-written manifest."""
    from orchestration import erd  # dbterd, only when the marts changed

    inputs = parse_inputs(settings)
    if manifest_current(inputs):
        return MANIFEST
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".parse-", dir=MANIFEST.parent))
    try:
        if (MANIFEST.parent / "erd.json").exists():  # what dbterd last drew (erd.refresh)
            shutil.copy2(MANIFEST.parent / "erd.json", scratch / "erd.json")
        run_dbt(settings, ["parse"], log_file, target_dir=scratch)
        if erd.refresh(scratch / MANIFEST.name):
            run_dbt(settings, ["parse"], log_file, target_dir=scratch)
        for name in PARSE_STATE:
            if (scratch / name).exists():
                os.replace(scratch / name, MANIFEST.parent / name)
        PARSE_INPUTS.write_text(inputs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return MANIFEST


# What the manifest was parsed from (``parse_inputs``), written beside it after each parse.
PARSE_INPUTS = MANIFEST.parent / "manifest.inputs"
# Folders of the project that dbt writes, or that only lint reads: never parse input.
_NOT_PARSED = {"target", "logs", "dbt_packages", "lint_stubs"}
_ENV_VAR = re.compile(r"env_var\(\s*['\"]([A-Za-z0-9_]+)['\"]")


def parse_inputs(settings: Settings, project_dir: Path = DBT_PROJECT_DIR) -> str:
    """A digest of everything ``dbt parse`` reads: the project's files, the values of the
    environment variables they name (outside dbt's secrets, which a manifest never holds),
    the profile flags and dbt's version. The same digest means the same manifest."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256()
    names: set[str] = set()
    for path in sorted(project_dir.rglob("*")):
        parts = path.relative_to(project_dir).parts
        if not path.is_file() or parts[0] in _NOT_PARSED or parts[-1].startswith("."):
            continue
        body = path.read_bytes()
        digest.update(f"{'/'.join(parts)}\0{len(body)}\0".encode())
        digest.update(body)
        names |= set(_ENV_VAR.findall(body.decode("utf-8", "replace")))
    env = dbt_env(settings)
    for name in sorted(n for n in names if not n.startswith("DBT_ENV_SECRET_")):
        digest.update(f"{name}={env.get(name)}\0".encode())
    try:
        dbt = version("dbt-core")
    except PackageNotFoundError:  # on MWAA dbt lives in a venv of its own: name that
        dbt = dbt_executable()
    digest.update(" ".join([*profile_args(settings), dbt]).encode())
    return digest.hexdigest()


def manifest_current(inputs: str) -> bool:
    """The project's manifest was parsed from ``inputs``: a second parse would write the
    same files (~6-10 s of ``make run`` saved)."""
    state = [MANIFEST.parent / name for name in PARSE_STATE if name != "erd.json"]
    if not PARSE_INPUTS.is_file() or not all(path.is_file() for path in state):
        return False
    # A parse by other means (``make manifest``) rewrote the state after the digest.
    newest = max(path.stat().st_mtime for path in state)
    return PARSE_INPUTS.read_text() == inputs and newest <= PARSE_INPUTS.stat().st_mtime
