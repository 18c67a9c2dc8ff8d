"""Concurrent writers: S3's 409 on overlapping conditional writes, and two runs of one date."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import date
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from lake import zones
from orchestration import stages
from orchestration.settings import load_settings

pytestmark = pytest.mark.integration

RUN = date(2026, 11, 3)
CONFLICT = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>ConditionalRequestConflict</Code>'
    b"<Message>A conflicting conditional operation is currently in progress against this "
    b"resource.</Message></Error>"
)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


class Conflicts:
    """Answers the first ``count`` conditional PutObject calls with S3's 409."""

    def __init__(self, client: Any, count: int) -> None:
        self.left = count
        self.sent = 0
        client.meta.events.register("before-send.s3.PutObject", self.conflict)

    def conflict(self, request: Any, **_: Any) -> AWSResponse | None:
        conditional = "If-None-Match" in request.headers or "If-Match" in request.headers
        if not conditional or self.left == 0:
            return None
        self.left -= 1
        self.sent += 1
        return AWSResponse(request.url, 409, {}, _Raw(CONFLICT))


def test_a_conflicting_conditional_write_is_retried(s3: Any, lake: str) -> None:
    conflicts = Conflicts(s3, 3)
    s3.put_object(Bucket=lake, Key="landing/web/2026/11/03/10/a", Body=b"x\n")
    assert zones.claim(s3, lake, RUN) == ["processing/dt=2026-11-03/raw/web/2026/11/03/10/a"]
    assert conflicts.sent == 3
    zones.lock_run(s3, lake, RUN, "run-a")  # the lock's conditional writes too
    assert conflicts.left == 0


def test_conflicts_are_retried_a_bounded_number_of_times_with_growing_jittered_waits() -> None:
    waits: list[float] = []
    calls = 0

    def write() -> None:
        nonlocal calls
        calls += 1
        error = boto3.client("s3", region_name="us-east-1").exceptions.ClientError
        raise error({"Error": {"Code": "ConditionalRequestConflict"}}, "PutObject")

    with pytest.raises(Exception, match="ConditionalRequestConflict"):
        zones.retry_conflicts(write, sleep=waits.append)
    assert calls == zones.CONFLICT_ATTEMPTS
    assert len(waits) == zones.CONFLICT_ATTEMPTS - 1
    assert all(0 <= w <= zones.CONFLICT_BACKOFF * 2**n for n, w in enumerate(waits))


def test_two_runs_of_one_date_at_once_one_wins_the_other_fails_clearly(
    s3: Any, lake: str, aws_endpoint: str
) -> None:
    settings = replace(load_settings("local"), lake_bucket=lake).with_endpoint(aws_endpoint)
    for n in range(20):
        s3.put_object(Bucket=lake, Key=f"landing/web/2026/11/03/10/obj-{n:02d}", Body=b"x\n")
    start = threading.Barrier(2)
    outcome: dict[str, Any] = {}

    def run(run_id: str) -> None:
        start.wait()
        try:
            outcome[run_id] = stages.claim_landing(settings, RUN, run_id)
        except zones.RunLocked as exc:
            outcome[run_id] = exc

    threads = [threading.Thread(target=run, args=(r,)) for r in ("run-a", "run-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = {r: o for r, o in outcome.items() if isinstance(o, zones.RunLocked)}
    won = {r: o for r, o in outcome.items() if not isinstance(o, zones.RunLocked)}
    assert len(failed) == 1 and len(won) == 1
    (winner, claimed), (message,) = won.popitem(), [str(e) for e in failed.values()]
    assert len(claimed) == 20
    assert f"run {winner!r}" in message and "processing/_locks/dt=2026-11-03.json" in message
    # The loser's promote cannot publish over the winner's either.
    loser = next(iter(failed))
    with pytest.raises(zones.RunLocked, match=f"{loser!r} no longer holds the lock"):
        stages.promote_zones(settings, RUN, loser)


def test_the_lock_is_kept_by_its_run_taken_over_when_expired_and_released(
    s3: Any, lake: str
) -> None:
    now = 1_000_000.0
    zones.lock_run(s3, lake, RUN, "run-a", now=now)
    zones.lock_run(s3, lake, RUN, "run-a", now=now + 60)  # a retried task of the same run
    with pytest.raises(zones.RunLocked, match="wait until"):
        zones.lock_run(s3, lake, RUN, "run-b", now=now + 120)
    zones.lock_run(s3, lake, date(2026, 11, 4), "run-b", now=now)  # other dates are free
    zones.lock_run(s3, lake, RUN, "run-b", now=now + zones.RUN_LOCK_TTL + 61)  # run-a died
    zones.release_run(s3, lake, RUN, "run-a")  # not its lock any more: kept
    zones.check_run_lock(s3, lake, RUN, "run-b")
    zones.release_run(s3, lake, RUN, "run-b")
    zones.lock_run(s3, lake, RUN, "run-c", now=now)
