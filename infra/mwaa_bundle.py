"""``make mwaa-bundle``: everything an AWS MWAA environment needs, in ``dist/mwaa/``.

dist/mwaa/dags/              -> s3://<mwaa bucket>/dags/ (the DAGs folder)
    shoplogs_pipeline.py         the DAG
    orchestration/ lake/         the code its tasks import
    spark/                       job code, shipped to S3 as a versioned artifact at run time
    dbt_project/                 the dbt project with target/manifest.json (Cosmos renders
                                 from it, so parsing never runs dbt)
    .airflowignore               keeps the scheduler out of the code folders
    constraints-3.3.1-python3.12.txt   MWAA's constraints, named by requirements.txt

Only what runs on MWAA goes in, by an explicit list (``CODE``, ``SPARK``, ``DBT_PARTS``):
never the local stack (``local/``), the EC2 agent or this deploy tooling.
dist/mwaa/requirements.txt   -> what the DAGs import in MWAA's own environment, top level
                                only, under the ``--constraint`` line MWAA expects (Airflow
                                and everything its constraints pin come from there)
dist/mwaa/startup.sh         -> the environment's startup script: picks the environment and
                                makes dbt's virtualenv (dbt cannot be installed under MWAA's
                                constraints: infra/mwaa/README.md), pinned from uv.lock
dist/mwaa/airflow-configuration.json  the AirflowConfigurationOptions to set (secrets)
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra import environments, mwaa
from lake import layout
from orchestration.runners.dbt import AIRFLOW_CONFIGURATION, MANIFEST, docs_view_configuration
from orchestration.settings import REPO_ROOT, check_web_format, resource_names

# The packages the DAG's tasks import (the DAG file itself goes to the folder's root).
CODE = ["orchestration", "lake"]
# What the Spark tasks upload to S3 for EMR (orchestration.runners.emr.package_job).
SPARK = ["spark/job.py", "spark/preprocess", "spark/emr/bootstrap.sh"]
# Every folder dbt_project.yml names: a missing one (tests/ was) silently drops its nodes from
# the run while the manifest Cosmos renders from still expects them.
DBT_PARTS = ["dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "tests",
             "analyses", "docs", "target/manifest.json"]  # fmt: skip
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "dags")

# MWAA sources this (bash) on every container before it installs requirements.txt and starts
# Airflow, and keeps what it exports; it has five minutes.
STARTUP = """#!/bin/bash
# Everything environment-specific is chosen here; orchestration/settings.py derives the rest.
export SHOPLOGS_ENV="{env}"
export SPARK_RUNNER="${{SPARK_RUNNER:-emr}}"
export SHOPLOGS_WAREHOUSE="${{SHOPLOGS_WAREHOUSE:-{warehouse}}}"
# The web servers' log format (docs/data-contract.md, "Formats"), for lines whose shipper
# names none (a flow's logFormat in agent.json travels with its lines and wins).
[ -n "${{SHOPLOGS_WEB_FORMAT+set}}" ] || export SHOPLOGS_WEB_FORMAT={web_format}
account_id() {{ aws sts get-caller-identity --query Account --output text; }}
export AWS_ACCOUNT_ID="${{AWS_ACCOUNT_ID:-$(account_id)}}"
# No usage pings from Cosmos: MWAA's private subnets usually have no route out.
export AIRFLOW__COSMOS__ENABLE_TELEMETRY=False
export SCARF_NO_ANALYTICS=true

# dbt in a virtualenv of its own: dbt-core {dbt_version} needs pathspec<0.13, and MWAA's
# constraints pin pathspec 1.1.1. Made once per container (again only when the pins change).
DBT_VENV="${{AIRFLOW_HOME:-$HOME}}/dbt_venv"
DBT_PINS="$(cat <<'PINS'
{dbt_requirements}PINS
)"
if [ "$(cat "$DBT_VENV/.pins" 2>/dev/null)" != "$DBT_PINS" ]; then
  rm -rf "$DBT_VENV"
  python3 -m venv "$DBT_VENV" &&
    printf '%s\\n' "$DBT_PINS" > "$DBT_VENV/requirements.txt" &&
    "$DBT_VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps \\
      -r "$DBT_VENV/requirements.txt" &&
    printf '%s' "$DBT_PINS" > "$DBT_VENV/.pins" ||
    echo "shoplogs startup: could not make dbt's virtualenv in $DBT_VENV" >&2
fi
export SHOPLOGS_DBT_EXECUTABLE="$DBT_VENV/bin/dbt"
"""


def locked_versions(repo: Path = REPO_ROOT) -> dict[str, str]:
    """``{normalized name: version}`` of every package in uv.lock."""
    lock = tomllib.loads((repo / "uv.lock").read_text())
    return {canonicalize_name(p["name"]): p["version"] for p in lock["package"] if "version" in p}


def requirements(repo: Path = REPO_ROOT) -> str:
    """requirements.txt as MWAA expects it: the ``--constraint`` line for its Airflow and
    Python, then the ``mwaa`` dependency group's packages, top level only. What the
    constraints pin is left to them (naming another version would fail the install); the
    rest is pinned to uv.lock's version, so MWAA installs what the tests ran."""
    group = tomllib.loads((repo / "pyproject.toml").read_text())["dependency-groups"]["mwaa"]
    constrained = mwaa.pins(mwaa.CONSTRAINTS) | mwaa.pins(mwaa.ESSENTIAL_CONSTRAINTS)
    locked = locked_versions(repo)
    lines = [
        "# Written by `make mwaa-bundle`: MWAA's constraints for its Airflow and Python (shipped",
        "# in the DAGs folder), then what the DAGs import; dbt lives in startup.sh's virtualenv.",
        f'--constraint "{mwaa.DAGS_FOLDER}/{mwaa.CONSTRAINTS.name}"',
    ]
    for requirement in map(Requirement, group):
        name = canonicalize_name(requirement.name)
        lines.append(name if name in constrained else f"{name}=={locked[name]}")
    return "\n".join(lines) + "\n"


def dbt_requirements(repo: Path = REPO_ROOT) -> str:
    """The ``dbt`` dependency group with everything it pulls in, pinned from uv.lock."""
    uv = repo / ".tools" / "bin" / "uv"
    exported = subprocess.run(
        [str(uv if uv.exists() else "uv"), "export", "--only-group", "dbt", "--no-hashes",
         "--no-annotate", "--no-header", "--format", "requirements-txt", "--no-emit-project",
         "--locked"],
        cwd=repo, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return "".join(f"{line}\n" for line in exported.splitlines() if line.strip())


def startup_script(
    env: str, warehouse: str, web_format: str = "combined", repo: Path = REPO_ROOT
) -> str:
    """The startup script; ``web_format`` is checked as the Spark job will read it, so a
    bad one fails the bundle's build, not the first run on MWAA."""
    check_web_format(web_format, "web format of the MWAA bundle")
    return STARTUP.format(
        env=env, warehouse=warehouse, dbt_version=locked_versions(repo)["dbt-core"],
        dbt_requirements=dbt_requirements(repo), web_format=shlex.quote(web_format),
    )  # fmt: skip


def airflow_configuration(env: str, lake_bucket: str | None = None) -> dict[str, str]:
    """Connections and variables come from AWS Secrets Manager (see orchestration/README);
    the dbt task group's options and the UI's docs view come from
    ``orchestration.runners.dbt``. The docs view reads the site the pipeline publishes to
    the lake's ``docs/`` prefix; without ``lake_bucket`` the name is shown as the
    orchestration stack resolves it (its account id is known there)."""
    bucket = lake_bucket or resource_names(env, "${AWS::AccountId}")[0]
    docs_dir = layout.uri(bucket, layout.DOCS)
    return {
        "secrets.backend": (
            "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
        ),
        "secrets.backend_kwargs": json.dumps(
            {
                "connections_prefix": f"shoplogs/{env}/connections",
                "variables_prefix": f"shoplogs/{env}/variables",
            }
        ),
        "core.parallelism": "16",
        **AIRFLOW_CONFIGURATION,
        # MWAA's execution role reads the bucket (aws_default: no stored credentials).
        **docs_view_configuration(docs_dir, conn_id="aws_default"),
    }


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, ignore=IGNORE)
    else:
        shutil.copy2(source, target)


def build(
    out: Path,
    env: str,
    warehouse: str,
    lake_bucket: str | None = None,
    web_format: str = "combined",
) -> Path:
    check_web_format(web_format, "web format of the MWAA bundle")
    if not MANIFEST.exists():
        raise FileNotFoundError(f"{MANIFEST} is missing: run `make manifest` first")
    shutil.rmtree(out, ignore_errors=True)
    dags = out / "dags"
    dags.mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "orchestration" / "dags" / "shoplogs_pipeline.py", dags)
    parts = [*CODE, *SPARK, *(f"dbt_project/{part}" for part in DBT_PARTS)]
    for part in parts:
        _copy(REPO_ROOT / part, dags / part)
    folders = sorted({part.split("/", 1)[0] for part in parts})
    (dags / ".airflowignore").write_text("\n".join(f"{d}/" for d in folders) + "\n")
    shutil.copy2(mwaa.CONSTRAINTS, dags / mwaa.CONSTRAINTS.name)
    (out / "requirements.txt").write_text(requirements())
    startup = out / "startup.sh"
    startup.write_text(startup_script(env, warehouse, web_format))
    startup.chmod(0o755)
    (out / "airflow-configuration.json").write_text(
        json.dumps(airflow_configuration(env, lake_bucket), indent=2) + "\n"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "dist" / "mwaa")
    parser.add_argument("--env", choices=["dev", "prod"], default="prod")
    parser.add_argument("--warehouse", choices=["snowflake", "redshift"], default="snowflake")
    parser.add_argument(
        "--web-format",
        help="the web servers' log format (default: the environment's, infra/environments.py)",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    web_format = args.web_format or environments.get(args.env).web_format
    try:
        out = build(args.out, args.env, args.warehouse, web_format=web_format)
    except (FileNotFoundError, subprocess.CalledProcessError, ValueError) as exc:
        print(f"mwaa-bundle FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"MWAA bundle for {args.env} written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
