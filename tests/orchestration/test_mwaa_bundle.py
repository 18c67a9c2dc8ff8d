"""The MWAA bundle: its DAGs import in an environment holding only Airflow (which MWAA
provides) and what the bundle's requirements.txt lists."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from orchestration import mwaa_bundle
from orchestration.local_airflow import build_manifest
from orchestration.settings import REPO_ROOT, load_settings

pytestmark = pytest.mark.integration

CHECK = """
import json
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
# As the DAG processor parses a bundle: the bundle's root is importable.
bag = BundleDagBag(dag_folder="dags", bundle_path=Path("dags").resolve())
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "dags": sorted(bag.dag_ids)}))
"""


def test_bundle_dags_import_with_only_the_bundled_requirements(tmp_path: Path) -> None:
    build_manifest(load_settings("local"), tmp_path / "dbt.log")
    bundle = mwaa_bundle.build(tmp_path / "mwaa", env="prod", warehouse="snowflake")
    assert (bundle / "dags" / "dbt_project" / "target" / "manifest.json").is_file()
    requirements = (bundle / "requirements.txt").read_text()
    assert "astronomer-cosmos==" in requirements and "apache-airflow==" not in requirements
    assert "moto" not in requirements and "pyspark" not in requirements  # local-only tools

    uv = str(REPO_ROOT / ".tools" / "bin" / "uv")
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
         f"apache-airflow=={version('apache-airflow')}", "-r", str(bundle / "requirements.txt")],
        check=True,
    )  # fmt: skip
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(bundle / "dags"),
        "SHOPLOGS_ENV": "prod",
        "SPARK_RUNNER": "emr",
        "SHOPLOGS_WAREHOUSE": "snowflake",
        "AWS_ACCOUNT_ID": "111122223333",
        "SCARF_NO_ANALYTICS": "true",
    }
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", CHECK],
        cwd=bundle, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert parsed == {"errors": {}, "dags": ["shoplogs_pipeline"]}
