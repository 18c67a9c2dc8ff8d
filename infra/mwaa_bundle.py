"""``make mwaa-bundle``: everything an AWS MWAA environment needs, in ``dist/mwaa/``.

dist/mwaa/dags/              -> s3://<mwaa bucket>/dags/ (the DAGs folder)
    shoplogs_pipeline.py         the DAG
    orchestration/ lake/         the code its tasks import
    spark/                       job code, shipped to S3 as a versioned artifact at run time
    dbt_project/                 the dbt project with target/manifest.json (Cosmos renders
                                 from it, so parsing never runs dbt)
    .airflowignore               keeps the scheduler out of the code folders

Only what runs on MWAA goes in, by an explicit list (``CODE``, ``SPARK``, ``DBT_PARTS``):
never the local stack (``local/``), the EC2 agent or this deploy tooling.
dist/mwaa/requirements.txt   -> pinned from uv.lock (Airflow itself comes with MWAA)
dist/mwaa/startup.sh         -> the environment's startup script: picks the environment
dist/mwaa/airflow-configuration.json  the AirflowConfigurationOptions to set (secrets)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from lake import layout
from orchestration.runners.dbt import AIRFLOW_CONFIGURATION, MANIFEST, docs_view_configuration
from orchestration.settings import REPO_ROOT, resource_names

PROVIDED_BY_MWAA = ("apache-airflow==", "apache-airflow-core==", "apache-airflow-task-sdk==")
# The packages the DAG's tasks import (the DAG file itself goes to the folder's root).
CODE = ["orchestration", "lake"]
# What the Spark tasks upload to S3 for EMR (orchestration.runners.emr.package_job).
SPARK = ["spark/job.py", "spark/preprocess", "spark/emr/bootstrap.sh"]
DBT_PARTS = ["dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "docs",
             "target/manifest.json"]  # fmt: skip
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "dags")

STARTUP = """#!/bin/sh
# MWAA runs this on every scheduler, worker and web server before Airflow starts.
# Everything environment-specific is chosen here; orchestration/settings.py derives the rest.
export SHOPLOGS_ENV="{env}"
export SPARK_RUNNER="${{SPARK_RUNNER:-emr}}"
export SHOPLOGS_WAREHOUSE="${{SHOPLOGS_WAREHOUSE:-{warehouse}}}"
export AWS_ACCOUNT_ID="$(aws sts get-caller-identity --query Account --output text)"
# No usage pings from Cosmos: MWAA's private subnets usually have no route out.
export AIRFLOW__COSMOS__ENABLE_TELEMETRY=False
export SCARF_NO_ANALYTICS=true
"""


def requirements(repo: Path = REPO_ROOT) -> str:
    """The ``mwaa`` dependency group, pinned with everything it pulls in from uv.lock."""
    uv = repo / ".tools" / "bin" / "uv"
    exported = subprocess.run(
        [str(uv if uv.exists() else "uv"), "export", "--only-group", "mwaa", "--no-hashes",
         "--format", "requirements-txt", "--no-emit-project", "--locked"],
        cwd=repo, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    kept = [
        line for line in exported.splitlines()
        if line and not line.startswith(PROVIDED_BY_MWAA)
    ]  # fmt: skip
    header = "# Pinned from uv.lock by `make mwaa-bundle`; Airflow itself is provided by MWAA.\n"
    return header + "\n".join(kept) + "\n"


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


def build(out: Path, env: str, warehouse: str, lake_bucket: str | None = None) -> Path:
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
    (out / "requirements.txt").write_text(requirements())
    startup = out / "startup.sh"
    startup.write_text(STARTUP.format(env=env, warehouse=warehouse))
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
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        out = build(args.out, args.env, args.warehouse)
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        print(f"mwaa-bundle FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"MWAA bundle for {args.env} written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
