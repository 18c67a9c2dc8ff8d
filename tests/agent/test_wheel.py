"""The EC2 agent ships as its own wheel: built by the project, installed into a virtualenv
that holds nothing else, its console script runs with boto3 as the only dependency."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from orchestration.settings import REPO_ROOT

pytestmark = pytest.mark.integration

UV = str(REPO_ROOT / ".tools" / "bin" / "uv")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, as `make agent-wheel` builds it, installed into a fresh virtualenv."""
    work = tmp_path_factory.mktemp("agent-wheel")
    subprocess.run([UV, "build", "-q", "--package", "shoplogs-agent", "--wheel",
                    "--out-dir", str(work / "dist")], cwd=REPO_ROOT, check=True)  # fmt: skip
    [wheel] = (work / "dist").glob("shoplogs_agent-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packages = {name.split("/", 1)[0] for name in archive.namelist()}
    assert {p for p in packages if not p.endswith(".dist-info")} == {"shoplogs_agent"}
    venv = work / "venv"
    subprocess.run([UV, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run([UV, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
                    str(wheel)], check=True)  # fmt: skip
    return venv


def test_the_wheel_brings_boto3_and_nothing_of_the_project(installed: Path) -> None:
    listed = subprocess.run(
        [UV, "pip", "list", "--format", "json", "--python", str(installed / "bin" / "python")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    names = {package["name"] for package in json.loads(listed.stdout)}
    assert "shoplogs-agent" in names and "boto3" in names
    # boto3 and what it pulls in; no Airflow, Spark, dbt, moto, or the project's packages.
    assert names <= {"shoplogs-agent", "boto3", "botocore", "jmespath", "python-dateutil",
                     "s3transfer", "six", "urllib3"}  # fmt: skip


def test_the_console_script_runs(installed: Path, tmp_path: Path) -> None:
    script = str(installed / "bin" / "shoplogs-shipper")
    usage = subprocess.run([script, "--help"], capture_output=True, text=True, check=True)
    assert "run,status,render-agent-json" in usage.stdout
    # A host that has never shipped: an empty state folder, a log not written yet.
    config = tmp_path / "agent.json"
    config.write_text(json.dumps({
        "checkpointFile": str(tmp_path / "state" / "checkpoints"),
        "flows": [{"filePattern": str(tmp_path / "logs" / "access.log*"),
                   "deliveryStream": "shoplogs-dev-web"}],
    }))  # fmt: skip
    status = subprocess.run([script, "status", "--config", str(config)],
                            capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout) == {"lag_bytes": {"shoplogs-dev-web": {}}, "last_run": {}}
    missing = subprocess.run([script, "status", "--config", str(tmp_path / "nope.json")],
                             capture_output=True, text=True)  # fmt: skip
    assert missing.returncode == 2 and "nope.json does not exist" in missing.stderr
