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
import yaml

from infra import environments, mwaa, mwaa_bundle
from orchestration.runners import emr
from orchestration.runners.dbt import build_manifest
from orchestration.settings import REPO_ROOT, load_settings
from tests.infra import templates
from tests.read_only import read_only

pytestmark = pytest.mark.integration

CHECK = """
import json
from importlib.metadata import version
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
# As the DAG processor parses a bundle: the bundle's root is importable.
bag = BundleDagBag(dag_folder="dags", bundle_path=Path("dags").resolve())
from orchestration.runners.dbt import dbt_executable, run_dbt
from orchestration.settings import load_settings
settings = load_settings()
run_dbt(settings, ["parse"], settings.work_dir / "logs" / "dbt.log")
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "dags": sorted(bag.dag_ids), "dbt": dbt_executable(),
                  "cosmos": version("astronomer-cosmos")}))
"""
UV = REPO_ROOT / ".tools" / "bin" / "uv"


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
    # Every folder dbt reads is there: without tests/ the build ran no singular test while
    # the manifest the DAG renders from expected them.
    project = yaml.safe_load((REPO_ROOT / "dbt_project" / "dbt_project.yml").read_text())
    folders = [f for key, paths in project.items() if key.endswith("-paths") for f in paths]
    assert [f for f in folders if not (bundle / "dags" / "dbt_project" / f).is_dir()] == []
    # The Spark tasks can package the EMR job from what the bundle holds.
    version, job = emr.package_job(bundle / "dags" / "spark", bundle / "dags" / "lake")
    assert version == emr.package_job()[0] and set(job) == {"job.py", "modules.zip",
                                                             "bootstrap.sh"}  # fmt: skip


def test_requirements_are_what_mwaa_expects(bundle: Path) -> None:
    """Top-level packages under the --constraint line for MWAA's Airflow and Python; nothing
    that MWAA's constraints pin named at another version (pip would fail on MWAA)."""
    lines = [ln for ln in (bundle / "requirements.txt").read_text().splitlines()
             if ln and not ln.startswith("#")]  # fmt: skip
    assert lines[0] == f'--constraint "{mwaa.DAGS_FOLDER}/{mwaa.CONSTRAINTS.name}"'
    assert (bundle / "dags" / mwaa.CONSTRAINTS.name).read_text() == mwaa.CONSTRAINTS.read_text()
    constrained = mwaa.pins(mwaa.CONSTRAINTS) | mwaa.pins(mwaa.ESSENTIAL_CONSTRAINTS)
    packages = dict(line.partition("==")[::2] for line in lines[1:])
    assert "astronomer-cosmos" in packages and "apache-airflow" not in packages
    assert not {name for name in packages if name.startswith("dbt-")}  # in startup.sh's venv
    assert {name: v for name, v in packages.items() if name in constrained and v} == {}
    assert len(packages) < 15  # top level only: MWAA's constraints decide the rest


def test_the_versions_are_the_ones_mwaa_runs() -> None:
    """One Airflow and one Python everywhere: the template accepts only the version the
    bundle is built for, and the repo's own venv runs that Airflow and MWAA's providers."""
    stack = templates.load("orchestration")
    assert stack["Parameters"]["AirflowVersion"]["AllowedValues"] == [mwaa.AIRFLOW_VERSION]
    assert {environments.get(env).airflow_version for env in ("dev", "prod")} == {
        mwaa.AIRFLOW_VERSION
    }
    assert mwaa.pins(mwaa.ESSENTIAL_CONSTRAINTS)["apache-airflow"] == mwaa.AIRFLOW_VERSION
    assert f"constraints-{mwaa.AIRFLOW_VERSION}/constraints-{mwaa.PYTHON_VERSION}.txt" in (
        mwaa.CONSTRAINTS.read_text()
    )
    assert version("apache-airflow") == mwaa.AIRFLOW_VERSION
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == mwaa.PYTHON_VERSION
    pinned = mwaa.pins(mwaa.CONSTRAINTS)
    for provider in ("apache-airflow-providers-amazon", "apache-airflow-providers-snowflake"):
        assert version(provider) == pinned[provider], provider


APACHE_VHOST_D = r"%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\" %D %v"


@pytest.mark.parametrize(
    "web_format",
    [
        APACHE_VHOST_D,
        '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
        "'$http_referer' \"$http_user_agent\" $request_time",  # a quote of each kind
    ],
)
def test_the_startup_script_sets_the_environments_web_format(
    web_format: str, tmp_path: Path
) -> None:
    """The deployed environment's web format reaches the DAG's settings exactly, $, %,
    quotes and backslashes included."""
    script = tmp_path / "startup.sh"
    script.write_text(mwaa_bundle.startup_script("prod", "snowflake", web_format))
    # dbt's virtualenv as an earlier start left it: the script keeps it.
    venv = tmp_path / "airflow" / "dbt_venv"
    venv.mkdir(parents=True)
    (venv / ".pins").write_text(mwaa_bundle.dbt_requirements().rstrip("\n"))
    env = {k: v for k, v in os.environ.items() if k != "SHOPLOGS_WEB_FORMAT"}
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow"), AWS_ACCOUNT_ID="111122223333")
    read = "from orchestration.settings import load_settings as s; "
    read += "print(s().stream('web').log_format, end='')"
    started = subprocess.run(
        ["bash", "-c", 'set -e; source "$1"; exec python -c "$2"', "startup", str(script), read],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert started.stdout == web_format


def test_a_web_format_the_job_cannot_read_fails_the_bundles_build(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"web format of the MWAA bundle: .*%Q is no Apache"):
        mwaa_bundle.build(tmp_path / "mwaa", "prod", "snowflake", web_format='%h %t "%r" %Q')
    assert mwaa_bundle.main(["--out", str(tmp_path / "m"), "--web-format", "$host$status"]) == 1


def python_312() -> str:
    found = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "find-python.sh"),
                            mwaa.PYTHON_VERSION], capture_output=True, text=True)  # fmt: skip
    assert found.returncode == 0, found.stderr
    return found.stdout.strip()


def test_dbt_cannot_live_in_mwaas_environment() -> None:
    """Why dbt gets a virtualenv of its own (startup.sh): under MWAA's constraints dbt-core
    1.11 does not resolve. When a new constraints file lets it, this test says to reconsider."""
    result = subprocess.run(
        [str(UV), "pip", "compile", "-q", "--python", python_312(), "-",
         "-c", str(mwaa.CONSTRAINTS), "-c", str(mwaa.ESSENTIAL_CONSTRAINTS)],
        input=f"dbt-core=={version('dbt-core')}\n", capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode != 0, "dbt now installs under MWAA's constraints: drop the venv?"
    assert "pathspec" in result.stderr, result.stderr


def mwaa_environment(bundle: Path, root: Path) -> dict[str, str]:
    """A venv laid out as an MWAA worker's: Python 3.12, Airflow installed under the
    essential constraints, then ``pip install -r requirements.txt`` as MWAA runs it (its
    --constraint line pointing at the DAGs folder, here the bundle's)."""
    venv = root / "mwaa-python"
    subprocess.run([str(UV), "venv", "-q", "--seed", "--python", python_312(), str(venv)],
                   check=True)  # fmt: skip
    requirements = root / "requirements.txt"
    requirements.write_text(
        (bundle / "requirements.txt").read_text().replace(mwaa.DAGS_FOLDER, str(bundle / "dags"))
    )
    subprocess.run(
        [str(UV), "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
         f"apache-airflow=={mwaa.AIRFLOW_VERSION}", "-r", str(requirements),
         "-c", str(mwaa.ESSENTIAL_CONSTRAINTS)],
        check=True,
    )  # fmt: skip
    return {
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",  # MWAA's python3 is 3.12
        "HOME": os.environ.get("HOME", str(root)),  # pip's cache
        "AIRFLOW_HOME": str(root / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(bundle / "dags"),
        "SHOPLOGS_WORK_DIR": str(root / "work"),
        "AWS_ACCOUNT_ID": "111122223333",
        **{k: v for k, v in os.environ.items() if k.startswith(("SSL_", "PIP_", "REQUESTS_"))},
    }


def test_the_bundle_installs_on_mwaa_and_its_dags_import_and_run_dbt(
    bundle: Path, tmp_path: Path
) -> None:
    """What MWAA does with the bundle, on its Python: install requirements.txt under its
    constraints, source startup.sh (which makes dbt's venv), import the DAGs from the
    read-only DAGs folder, and run dbt there, writing only under the work dir."""
    env = mwaa_environment(bundle, tmp_path)
    started = subprocess.run(
        ["bash", "-c", 'set -e; source "$1"; env -0', "startup", str(bundle / "startup.sh")],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    env = dict(item.split("=", 1) for item in started.stdout.split("\0") if "=" in item)
    assert env["SHOPLOGS_DBT_EXECUTABLE"] == str(tmp_path / "airflow" / "dbt_venv" / "bin" / "dbt")
    assert env["SHOPLOGS_WEB_FORMAT"] == environments.get("prod").web_format
    assert "could not make" not in started.stderr, started.stderr
    # dbt parse renders the profile but never connects: any value does.
    placeholder = "unused by dbt parse"
    env.update(SNOWFLAKE_ACCOUNT="xy12345", SNOWFLAKE_USER="shoplogs_pipeline",
               DBT_ENV_SECRET_SNOWFLAKE_PRIVATE_KEY=placeholder)  # fmt: skip

    with read_only(bundle / "dags"):
        result = subprocess.run(
            ["python", "-c", CHECK], cwd=bundle, env=env, capture_output=True, text=True,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == {} and parsed["dags"] == ["shoplogs_pipeline"]
    assert parsed["dbt"].startswith(str(tmp_path / "airflow" / "dbt_venv"))
    assert parsed["cosmos"] == version("astronomer-cosmos")
    # dbt ran from its venv and wrote its manifest under the work dir, not the DAGs folder.
    assert (tmp_path / "work" / "dbt" / "target" / "manifest.json").is_file()
