"""The MWAA bundle: its DAGs import in an environment holding only Airflow (which MWAA
provides) and what the bundle's requirements.txt lists."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from infra import mwaa_bundle
from orchestration.runners import emr
from orchestration.runners.dbt import build_manifest
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


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("bundle")
    build_manifest(load_settings("local"), work / "dbt.log")
    return mwaa_bundle.build(work / "mwaa", env="prod", warehouse="snowflake")


def test_the_bundle_holds_only_what_runs_on_mwaa(bundle: Path) -> None:
    files = sorted(p.relative_to(bundle / "dags").as_posix()
                   for p in (bundle / "dags").rglob("*") if p.is_file())  # fmt: skip
    folders = {name.split("/", 1)[0] for name in files if "/" in name}
    assert folders == {"orchestration", "lake", "spark", "dbt_project"}
    # The local stack, the EC2 agent and the deploy tooling never ship to MWAA ...
    assert not [f for f in files if f.startswith(("local/", "agent/", "infra/", "tests/"))]
    # ... nor does anything bundled import them.
    imports = re.compile(r"^\s*(?:from|import) (local|infra|shoplogs_agent)\b", re.MULTILINE)
    assert {f: m for f in files if f.endswith(".py")
            if (m := imports.findall((bundle / "dags" / f).read_text()))} == {}  # fmt: skip
    # The Spark tasks can package the EMR job from what the bundle holds.
    version, job = emr.package_job(bundle / "dags" / "spark", bundle / "dags" / "lake")
    assert version == emr.package_job()[0] and set(job) == {"job.py", "modules.zip",
                                                             "bootstrap.sh"}  # fmt: skip


def test_bundle_dags_import_with_only_the_bundled_requirements(
    bundle: Path, tmp_path: Path
) -> None:
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
