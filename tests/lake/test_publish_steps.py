"""Promote stopped after each of its S3 writes, in turn: at that moment a reader of the
partition finds the old files or the new ones (never neither), and a re-run finishes it."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from lake import zones

pytestmark = pytest.mark.integration

RUN = date(2026, 11, 3)
PARTITION = "processed/web_requests/dt=2026-11-03/"
OUTPUT = "processing/dt=2026-11-03/output/"
OLD = [PARTITION + f"part-{n}-old.parquet" for n in range(2)]
NEW = [PARTITION + f"part-{n}-new.parquet" for n in range(3)]
WRITES = ("CopyObject", "DeleteObject", "PutObject")


class Stopped(Exception):
    """Stands for the task dying right after an S3 write."""


class StopAfter:
    """Raises after the ``n``-th S3 write the client makes (the write itself happened)."""

    def __init__(self, client: Any, n: int) -> None:
        self.client, self.left = client, n
        for op in WRITES:
            client.meta.events.register(f"after-call.s3.{op}", self.count)

    def count(self, **_: Any) -> None:
        self.left -= 1
        if self.left == 0:
            raise Stopped

    def remove(self) -> None:
        for op in WRITES:
            self.client.meta.events.unregister(f"after-call.s3.{op}", self.count)


def seed(s3: Any, lake: str) -> None:
    for key in OLD:
        s3.put_object(Bucket=lake, Key=key, Body=b"old")
    for key in NEW:
        s3.put_object(Bucket=lake, Key=OUTPUT + key, Body=b"new")
    s3.put_object(Bucket=lake, Key=OUTPUT + PARTITION + "_SUCCESS", Body=b"")


def test_promote_stopped_after_any_write_leaves_a_whole_partition(s3: Any, lake: str) -> None:
    seed(s3, lake)
    stopped_at = 0
    for n in range(1, 50):
        stop = StopAfter(s3, n)
        try:
            zones.promote(s3, lake, RUN)
        except Stopped:
            stopped_at = n
        finally:
            stop.remove()
        if stopped_at != n:
            break  # promote finished before its n-th write: every step has been tried
        seen = set(zones.list_keys(s3, lake, PARTITION))
        assert set(OLD) <= seen or set(NEW) <= seen, f"after write {n}: {sorted(seen)}"
        assert zones.promote(s3, lake, RUN) == NEW  # the re-run completes
        assert zones.list_keys(s3, lake, PARTITION) == NEW
        for key in OLD:  # the next round starts from the old partition again
            s3.put_object(Bucket=lake, Key=key, Body=b"old")
        for key in NEW:
            s3.delete_object(Bucket=lake, Key=key)
    assert stopped_at >= len(OLD) + len(NEW)  # every copy and every delete was a stop
