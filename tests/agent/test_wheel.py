"""The EC2 agent ships as its own wheel: built by the project, installed into a virtualenv
that holds nothing else on the hosts' Python (Amazon Linux 2023's python3 is 3.9), its
console script runs with boto3 as the only dependency and ships to a local Firehose."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from lake import zones
from local.aws import provision
from orchestration.settings import REPO_ROOT
from tests.agent.records import shipped_lines

pytestmark = pytest.mark.integration

UV = str(REPO_ROOT / ".tools" / "bin" / "uv")
HOST_PYTHON = "3.9"  # Amazon Linux 2023's /usr/bin/python3


def host_python() -> str:
    """The hosts' interpreter; its absence fails the test: the wheel must be proven on it."""
    found = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "find-python.sh"), HOST_PYTHON],
                           capture_output=True, text=True)  # fmt: skip
    if found.returncode != 0:
        pytest.fail(f"the agent is tested on the hosts' Python {HOST_PYTHON}: {found.stderr}")
    return found.stdout.strip()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, as `make agent-wheel` builds it, installed into a fresh virtualenv on the
    hosts' Python."""
    work = tmp_path_factory.mktemp("agent-wheel")
    subprocess.run([UV, "build", "-q", "--package", "shoplogs-agent", "--wheel",
                    "--out-dir", str(work / "dist")], cwd=REPO_ROOT, check=True)  # fmt: skip
    [wheel] = (work / "dist").glob("shoplogs_agent-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packages = {name.split("/", 1)[0] for name in archive.namelist()}
    assert {p for p in packages if not p.endswith(".dist-info")} == {"shoplogs_agent"}
    venv = work / "venv"
    subprocess.run([UV, "venv", "-q", "--python", host_python(), str(venv)], check=True)
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


def test_the_virtualenv_runs_the_hosts_python(installed: Path) -> None:
    version = subprocess.run([str(installed / "bin" / "python"), "-c",
                              "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True)  # fmt: skip
    assert version.stdout.strip() == HOST_PYTHON


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


def test_the_installed_shipper_ships_a_file_to_firehose(
    installed: Path, tmp_path: Path, s3: Any, firehose: Any, aws_endpoint: str
) -> None:
    """The agent's real work on the hosts' Python: tail a log, put its lines to a Firehose
    delivery stream (the local endpoint), checkpoint, exit on SIGTERM."""
    provision(s3, firehose, "wheel-lake", {"web": "wheel-web"}, "arn:aws:iam::1:role/x")
    written = [f"10.0.0.1 - - [21/Nov/2026:10:00:00 +0000] \"GET /p/{n} HTTP/1.1\" 200 1"
               for n in range(50)]  # fmt: skip
    (tmp_path / "access.log").write_text("".join(f"{line}\n" for line in written))
    config = tmp_path / "agent.json"
    status = tmp_path / "status.json"
    config.write_text(json.dumps({
        "checkpointFile": str(tmp_path / "state" / "checkpoints"),
        "statusFile": str(status),
        "firehose.endpoint": aws_endpoint,
        "pollSeconds": 0.05,
        "flows": [{"filePattern": str(tmp_path / "access.log*"), "deliveryStream": "wheel-web"}],
    }))  # fmt: skip
    shipper = subprocess.Popen([str(installed / "bin" / "shoplogs-shipper"), "run", "--config",
                                str(config)], stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        for _ in range(600):  # bounded: the first poll ships the whole file
            if zones.list_keys(s3, "wheel-lake", "landing/") or shipper.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        shipper.send_signal(signal.SIGTERM)
        _, errors = shipper.communicate(timeout=30)
    assert shipper.returncode == 0, errors
    delivered = [
        line
        for key in zones.list_keys(s3, "wheel-lake", "landing/")
        for line in shipped_lines(s3.get_object(Bucket="wheel-lake", Key=key)["Body"].read())
    ]
    assert delivered == [line.encode() for line in written]
    assert json.loads(status.read_text())["flows"]["wheel-web"]["lines_read"] == 50
