"""The local runner's warm Spark session (orchestration/runners/spark_session.py): a job run
in it writes what a fresh spark-submit writes, it is reused while the code is the same, and
a failed job or an idle spell ends it."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest

from lake import layout
from local.aws import provision_pseudonym_key
from orchestration.runners.spark_local import run_spark, session_env
from orchestration.runners.spark_session import (
    ensure_session,
    fingerprint,
    run_in_session,
    session_pid,
    stop_sessions,
)
from orchestration.settings import REPO_ROOT, Settings, load_settings
from orchestration.tools import ToolFailed
from shoplogs_agent.firehose import ShipStats, pack_buffer
from shoplogs_agent.identity import Origin

pytestmark = pytest.mark.integration

RUN_DATE = date(2026, 11, 1)
LINES = {
    "customers": [
        "c-1,signup,2026-11-01T10:00:00Z,C1,a@example.com,Ann,Lee,US,Austin",
        "c-2,signup,2026-11-01T10:00:00Z,C2",  # wrong column count
    ],
    "orders": [
        '{"event_id": "o-1", "event_type": "placed", "event_at": "2026-11-01T11:00:00Z", '
        '"order_id": "O1", "customer_id": "C1", "currency": "USD", "lines": [{"line_number": 1, '
        '"product_id": "P001", "quantity": 1, "unit_price": 119.0}]}',
        '{"event_id": "o-2", "event_type": "pla',  # truncated
    ],
    "web": [
        '2001:db8::5 - - [01/Nov/2026:12:00:01 +0000] "GET /p/1 HTTP/1.1" 200 10 "-" "curl/8"',
        '10.0.0.9 - - [01/Nov/2026:12:00:09 +0000] "\\x16\\x03\\x01" 400 0 "-" "-"',
    ],
}


@pytest.fixture(scope="module")
def lake(aws_endpoint: str) -> tuple[Settings, Any]:
    """A lake bucket holding one run's raw objects, and the job's pseudonymization key."""
    settings = replace(load_settings("local"), lake_bucket="session-lake")
    settings = settings.with_endpoint(aws_endpoint)
    s3 = boto3.client("s3", endpoint_url=aws_endpoint, region_name=settings.region)
    s3.create_bucket(Bucket=settings.lake_bucket)
    secrets = boto3.client("secretsmanager", endpoint_url=aws_endpoint, region_name="us-east-1")
    provision_pseudonym_key(secrets, settings.pseudonym_secret)
    for stream, lines in LINES.items():
        data = "".join(f"{line}\n" for line in lines).encode()
        records = pack_buffer(data, ShipStats(), origin=Origin("host-1", "fp", 0, b""))
        key = f"{layout.raw_prefix(RUN_DATE)}{stream}/object-1"
        s3.put_object(Bucket=settings.lake_bucket, Key=key, Body=b"".join(r.data for r in records))
    return settings, s3


def written(output: Path) -> dict[str, list[str]]:
    """What a job wrote, folder by folder: the rows of its Parquet, the lines of its JSON."""
    found: dict[str, list[str]] = {}
    for folder in sorted({path.parent for path in output.rglob("part-*")}):
        name = folder.relative_to(output).as_posix()
        if any(folder.glob("*.parquet")):
            rows = duckdb.sql(f"select * from read_parquet('{folder}/*.parquet')").fetchall()
            found[name] = sorted(map(repr, rows))
        else:
            found[name] = sorted(
                line for p in folder.glob("part-*") for line in p.read_text().splitlines()
            )
    return found


def run(settings: Settings, s3: Any, work: Path, session: Path | None) -> dict[str, list[str]]:
    settings = replace(settings, work_dir=work, spark_session_dir=session)
    run_spark(settings, s3, RUN_DATE, work / "spark.log")
    return written(work / "spark" / layout.partition(RUN_DATE) / "output")


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """A folder of sessions of the test's own, none left running after it."""
    yield tmp_path / "sessions"
    stop_sessions(tmp_path / "sessions")


def test_a_job_in_the_warm_session_writes_what_a_fresh_spark_submit_writes(
    lake: tuple[Settings, Any], tmp_path: Path, warm_spark_session: Path | None, folder: Path
) -> None:
    settings, s3 = lake
    fresh = run(settings, s3, tmp_path / "fresh", None)
    # The tests' shared session where there is one (it is started once either way).
    warm = run(settings, s3, tmp_path / "warm", warm_spark_session or folder)
    assert warm == fresh
    stats = [json.loads(line) for name, lines in warm.items() if "_stats" in name for line in lines]
    assert {(s["stream"], s["read"], s["processed"]) for s in stats} == {
        ("customers", 2, 1), ("orders", 2, 1), ("web", 2, 1),
    }  # fmt: skip
    log = (tmp_path / "warm" / "spark.log").read_text()
    assert "in the warm local Spark session" in log and '"stream": "web"' in log


def test_two_runs_at_once_take_turns_in_one_session(
    lake: tuple[Settings, Any], tmp_path: Path, folder: Path
) -> None:
    """A run that finds the session busy with another's job waits for it, rather than take
    the busy session for a dead one and start a second."""
    settings, s3 = lake
    env = session_env(load_settings("local"), os.environ)
    pid = session_pid(ensure_session(folder, env))
    with ThreadPoolExecutor(2) as pool:
        outputs = list(pool.map(lambda name: run(settings, s3, tmp_path / name, folder), "ab"))
    assert outputs[0] == outputs[1] and outputs[0]
    assert [session_pid(path) for path in folder.glob("*.sock")] == [pid]


def test_the_session_is_reused_and_a_failed_job_or_an_idle_spell_ends_it(
    folder: Path, tmp_path: Path
) -> None:
    env = session_env(load_settings("local"), os.environ)
    path = ensure_session(folder, env)
    first = session_pid(path)
    assert first and ensure_session(folder, env) == path and session_pid(path) == first

    with pytest.raises(ToolFailed) as failed:
        run_in_session(folder, ["--output", "x"], what="a job", log_file=tmp_path / "job.log",
                       env=env)  # fmt: skip
    message = str(failed.value)
    assert "a job failed (exit 2)" in message and "--input" in message  # argparse's own words
    assert str(tmp_path / "job.log") in message
    # The next job gets a session of its own rather than trust the failed one's.
    path = ensure_session(folder, env, idle_seconds=1)
    assert session_pid(path) not in (None, first)
    deadline = time.monotonic() + 60
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert session_pid(path) is None and not path.exists()


def test_an_edit_to_the_jobs_code_names_a_new_session(tmp_path: Path) -> None:
    for folder in ("spark", "lake"):
        shutil.copytree(REPO_ROOT / folder, tmp_path / folder)
    before = fingerprint(tmp_path)
    assert fingerprint(tmp_path) == before == fingerprint(REPO_ROOT)
    job = tmp_path / "spark" / "preprocess" / "web.py"
    job.write_text(job.read_text() + "\n# an edit\n")
    assert fingerprint(tmp_path) != before
