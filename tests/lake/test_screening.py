"""Screening decides per line: an object is set aside whole only when no line of it can be
read, never because of a bad neighbour of good lines."""

from __future__ import annotations

import gzip
import json
from datetime import date
from typing import Any

import pytest

from lake import zones

pytestmark = pytest.mark.integration

RUN = date(2026, 11, 3)
RAW = "processing/dt=2026-11-03/raw/web/2026/11/03/10/"
SET_ASIDE = "quarantine/objects/dt=2026-11-03/web/2026/11/03/10/"
GOOD = [f'10.0.{h}.1 - - [03/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5\n'.encode()
        for h in range(40)]  # fmt: skip
# A host that wrote a core dump into its log: 80 KiB of control bytes, in lines.
BINARY = [bytes(range(1, 10)) * 100 + b"\x0e\x1f" + b"\n" for _ in range(90)]


def claim_one(s3: Any, lake: str, name: str, body: bytes) -> dict[str, str]:
    s3.put_object(Bucket=lake, Key=f"landing/web/2026/11/03/10/{name}", Body=body)
    zones.claim(s3, lake, RUN)
    return zones.screen(s3, lake, RUN)


def test_good_lines_after_a_run_of_control_bytes_are_kept(s3: Any, lake: str) -> None:
    body = b"".join(BINARY + GOOD)
    assert len(b"".join(BINARY)) > 64 * 1024
    assert claim_one(s3, lake, "mixed", body) == {}
    assert s3.get_object(Bucket=lake, Key=RAW + "mixed")["Body"].read() == body


def test_good_lines_in_a_compressed_object_after_control_bytes_are_kept(s3: Any, lake: str) -> None:
    assert claim_one(s3, lake, "mixed", gzip.compress(b"".join(BINARY + GOOD))) == {}
    assert zones.list_keys(s3, lake, RAW) == [RAW + "mixed.gz"]


def test_an_object_of_only_binary_lines_is_set_aside(s3: Any, lake: str) -> None:
    assert claim_one(s3, lake, "dump", b"".join(BINARY)) == {RAW + "dump": "binary_content"}


def test_a_cut_gzip_is_set_aside_with_the_lines_it_held_before_the_cut(s3: Any, lake: str) -> None:
    whole = gzip.compress(b"".join(GOOD * 50), compresslevel=0)  # stored: the cut is exact
    assert claim_one(s3, lake, "cut", whole[: len(whole) // 2]) == {RAW + "cut": "truncated_gzip"}
    body = s3.get_object(Bucket=lake, Key=SET_ASIDE + "cut.reason.json")["Body"].read()
    reason = json.loads(body)
    assert reason["reason"] == "truncated_gzip"
    assert 0 < reason["readable_lines_before_cut"] < len(GOOD) * 50


def test_object_problem_judges_every_line() -> None:
    assert zones.object_problem(b"".join(BINARY) + GOOD[0]) is None
    assert zones.object_problem(GOOD[0] + b"".join(BINARY)) is None
    assert zones.object_problem(b"".join(BINARY)) == "binary_content"
    assert zones.object_problem(b"") is None
    two_members = gzip.compress(GOOD[0]) + gzip.compress(GOOD[1])
    assert zones.object_problem(two_members) is None


def test_the_shippers_records_are_lines_not_binary() -> None:
    """Records carry their header and separators as control bytes: the lines inside them
    are what screening judges."""
    from shoplogs_agent.firehose import ShipStats, pack_buffer
    from shoplogs_agent.identity import Origin

    lines = b"".join(b"10.0.0.%d - - line\n" % n for n in range(50))
    body = b"".join(r.data for r in pack_buffer(lines, ShipStats(), origin=Origin("h", "f", 0)))
    assert body.count(b"\x1d") and zones.object_problem(body) is None
    assert zones.object_problem(body.replace(b"line", b"\x00\x01")) == "binary_content"
