"""Crash test for the zone moves: claim and promote are killed with SIGKILL at random
moments, then run to the end; every object is in its zone exactly once."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from datetime import date
from typing import Any

import pytest

from lake import zones

pytestmark = pytest.mark.integration

RUN = date(2026, 11, 3)
STEP = """
import sys, boto3
from datetime import date
from lake import zones
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
getattr(zones, sys.argv[2])(s3, "zone-crash", date(2026, 11, 3))
"""


def run_step(endpoint: str, step: str, kill_after: float | None) -> None:
    process = subprocess.Popen([sys.executable, "-c", STEP, endpoint, step])
    if kill_after is None:
        assert process.wait(timeout=120) == 0
        return
    time.sleep(kill_after)
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_killed_claims_and_promotions_neither_lose_nor_double(s3: Any, aws_endpoint: str) -> None:
    s3.create_bucket(Bucket="zone-crash")
    landing = [f"landing/web/2026/11/03/10/obj-{n:03d}" for n in range(150)]
    output = [f"processing/dt=2026-11-03/output/processed/web_requests/dt=2026-11-03/"
              f"part-{n:03d}.parquet" for n in range(150)]  # fmt: skip
    for key in landing + output:
        s3.put_object(Bucket="zone-crash", Key=key, Body=key.encode())
    rng = random.Random(3)
    for step in ("claim", "promote"):
        for _ in range(8):
            run_step(aws_endpoint, step, kill_after=rng.uniform(0.5, 2.0))
        run_step(aws_endpoint, step, kill_after=None)

    raw = zones.list_keys(s3, "zone-crash", "processing/dt=2026-11-03/raw/")
    assert raw == [k.replace("landing/", "processing/dt=2026-11-03/raw/") for k in landing]
    for key in raw:  # each holds its own original object
        body = s3.get_object(Bucket="zone-crash", Key=key)["Body"].read()
        assert body == key.replace("processing/dt=2026-11-03/raw/", "landing/").encode()
    assert zones.list_keys(s3, "zone-crash", "landing/") == []
    assert zones.list_keys(s3, "zone-crash", "processing/_claims/") == []
    processed = zones.list_keys(s3, "zone-crash", "processed/")
    assert processed == [k.split("output/", 1)[1] for k in output]
