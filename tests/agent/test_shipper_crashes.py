"""Crash test: a writer appends and rotates while the shipper is killed with SIGKILL again
and again; in the end Firehose holds every written line and nothing else, and after the
Spark job every request is there exactly once: each line is written three times in a row
(a client polling), and those stay three requests while the resends are duplicates."""

from __future__ import annotations

import gzip
import json
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lake import zones
from local.aws import provision, provision_pseudonym_key
from local.run import default_run_date
from orchestration import stages
from orchestration.settings import aws_client, load_settings
from shoplogs_agent.shipper import lag_report, load_config
from tests.agent.records import shipped_lines
from tests.clock import ARRIVAL_DAY

pytestmark = pytest.mark.integration


def rotate(folder: Path, compress: bool) -> None:
    """As logrotate does: shift .N(.gz) to .N+1(.gz), highest number first, rename the log to
    .1 and, with ``compress`` (no delaycompress), gzip .1 at once and delete it."""
    rotated = sorted(folder.glob("access.log.*"), key=lambda p: -int(p.name.split(".")[2]))
    for older in rotated:
        rest = older.name.split(".")[3:]  # ["gz"] or []
        older.rename(folder / ".".join(["access", "log", str(int(older.name.split(".")[2]) + 1),
                                        *rest]))  # fmt: skip
    (folder / "access.log").rename(folder / "access.log.1")
    if compress:
        plain = folder / "access.log.1"
        with plain.open("rb") as source, gzip.open(f"{plain}.gz", "wb") as packed:
            shutil.copyfileobj(source, packed)
        plain.unlink()


def writer(folder: Path, count: int, stop: threading.Event, written: list[bytes]) -> None:
    """An application logging steadily, its log rotated every 250 lines, every other time
    with logrotate's ``compress`` (gzip and delete at once); every line three times in a
    row, as identical requests write it."""
    log = folder / "access.log"
    for number in range(count):
        line = f'10.0.0.1 - - [21/Nov/2026:10:00:00 +0000] "GET /p/{number // 3} HTTP/1.1" 200 1\n'
        with log.open("a") as handle:
            handle.write(line)
        written.append(line.rstrip("\n").encode())
        if number % 250 == 249:
            rotate(folder, compress=number % 500 == 499)
        time.sleep(0.002)
    stop.set()


def start_shipper(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "shoplogs_agent.shipper", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def test_twenty_sigkills_while_rotating_with_compress_lose_nothing(
    tmp_path: Path, s3: Any, firehose: Any, aws_endpoint: str
) -> None:
    provision(s3, firehose, "crash-lake", {"web": "crash-web"}, "arn:aws:iam::1:role/x")
    config = tmp_path / "agent.json"
    config.write_text(json.dumps({
        "checkpointFile": str(tmp_path / "state" / "checkpoints"),
        "firehose.endpoint": aws_endpoint,
        "pollSeconds": 0.05,
        "flows": [{"filePattern": str(tmp_path / "access.log*"), "deliveryStream": "crash-web"}],
    }))  # fmt: skip
    written: list[bytes] = []
    done = threading.Event()
    thread = threading.Thread(target=writer, args=(tmp_path, 3_000, done, written))
    thread.start()
    rng = random.Random(5)
    for _ in range(20):
        shipper = start_shipper(config)
        time.sleep(rng.uniform(0.4, 1.2))
        shipper.send_signal(signal.SIGKILL)
        shipper.wait()
    thread.join()

    status = load_config(config).status_file
    status.unlink(missing_ok=True)
    shipper = start_shipper(config)  # the last one runs until it has caught up
    deadline = time.monotonic() + 60
    while not status.exists():  # it has started and polled once
        assert time.monotonic() < deadline, "the shipper did not start within 60 s"
        time.sleep(0.1)
    while any(any(lag.values()) for lag in lag_report(load_config(config)).values()):
        assert time.monotonic() < deadline, "the shipper did not catch up within 60 s"
        time.sleep(0.2)
    shipper.send_signal(signal.SIGTERM)
    assert shipper.wait(timeout=30) == 0

    delivered = [
        line
        for key in zones.list_keys(s3, "crash-lake", "landing/")
        for line in shipped_lines(s3.get_object(Bucket="crash-lake", Key=key)["Body"].read())
    ]
    assert set(delivered) == set(written)  # every line arrived; nothing foreign did
    # A kill between send and checkpoint resends that turn's batches: extra copies are
    # exact duplicates, which the Spark job drops as counted duplicates.
    assert len(delivered) >= len(written) == 3_000

    # Through the pre-processing: every written event exactly once, resends counted.
    settings = replace(load_settings("local"), lake_bucket="crash-lake", work_dir=tmp_path)
    settings = settings.with_endpoint(aws_endpoint)
    run_date = default_run_date(zones.list_keys(s3, "crash-lake", "landing/"))
    assert run_date == ARRIVAL_DAY
    provision_pseudonym_key(aws_client(settings, "secretsmanager"), settings.pseudonym_secret)
    stages.claim_landing(settings, run_date)
    stages.preprocess_locally(settings, run_date)
    web = zones.read_stats(s3, "crash-lake", run_date).streams["web"]
    assert web.processed == 3_000
    assert web.duplicates == len(delivered) - 3_000
