"""The Spark job tells a resend from a real repeat: lines the shipper sent carry their place
in their file; an id the line carries itself wins; the same id with another payload is a
conflict, quarantined, never a silent drop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from preprocess import orders, web
from preprocess.common import read_lines
from shoplogs_agent.firehose import ShipStats, pack_buffer
from shoplogs_agent.identity import Origin
from tests.spark.keys import KEYED

pytestmark = pytest.mark.integration

POLL = '10.0.0.7 - - [01/Nov/2015:10:00:00 +0000] "GET /api/poll HTTP/1.1" 200 5 "-" "curl/8"'
OTHER = '10.0.0.8 - - [01/Nov/2015:10:00:01 +0000] "GET / HTTP/1.1" 200 9 "-" "Mozilla/5.0"'


def shipped(lines: list[str], host: str = "web-1", offset: int = 0) -> bytes:
    """What the shipper delivers for these lines of one file: enveloped records."""
    data = "".join(f"{line}\n" for line in lines).encode()
    origin = Origin(host, "fp01", offset)
    return b"".join(r.data for r in pack_buffer(data, ShipStats(), origin=origin))


def landed(folder: Path, *objects: bytes) -> str:
    """Firehose objects as the run claimed them, one file each."""
    for number, body in enumerate(objects):
        (folder / f"object-{number}").write_bytes(body)
    return str(folder)


def test_identical_requests_are_kept_and_a_resend_is_a_duplicate(spark: Any, tmp_path: Path):
    log = [POLL, POLL, POLL, OTHER]
    path = landed(tmp_path, shipped(log), shipped(log))  # sent twice: a shipper's resend
    result = web.transform(read_lines(spark, path, "web"), KEYED)
    assert (result.stats.read, result.stats.processed, result.stats.duplicates) == (8, 4, 4)
    requests = result.datasets["web_requests"].where("path = '/api/poll'").count()
    assert requests == 3


def test_a_resend_cut_into_other_records_is_still_a_duplicate(spark: Any, tmp_path: Path):
    # Sent in two records as the file grew, then all again in one record after the shipper
    # lost its checkpoint: each line keeps its place (its byte offset), whatever the cut.
    log = [POLL, POLL, POLL, OTHER]
    second = len(POLL) * 2 + 2
    path = landed(tmp_path, shipped(log[:2]) + shipped(log[2:], offset=second), shipped(log))
    result = web.transform(read_lines(spark, path, "web"), KEYED)
    assert (result.stats.read, result.stats.processed, result.stats.duplicates) == (8, 4, 4)
    assert result.datasets["web_requests"].where("path = '/api/poll'").count() == 3


def test_the_same_line_from_two_hosts_is_two_requests(spark: Any, tmp_path: Path) -> None:
    path = landed(tmp_path, shipped([POLL], host="web-1"), shipped([POLL], host="web-2"))
    assert web.transform(read_lines(spark, path, "web"), KEYED).stats.processed == 2


def test_lines_sent_without_an_envelope_fall_back_to_their_content(spark, tmp_path) -> None:
    path = landed(tmp_path, f"{POLL}\n{POLL}\n".encode())  # the AWS Kinesis Agent's way
    stats = web.transform(read_lines(spark, path, "web"), KEYED).stats
    assert (stats.processed, stats.duplicates) == (1, 1)


def test_an_id_in_the_line_wins(spark: Any, tmp_path: Path) -> None:
    rid = " request_id=" + "ab" * 16
    path = landed(tmp_path, shipped([POLL + rid, OTHER]), shipped([POLL + rid], offset=999))
    stats = web.transform(read_lines(spark, path, "web"), KEYED).stats
    assert (stats.processed, stats.duplicates) == (2, 1)


def test_an_event_id_with_another_payload_is_a_conflict_not_a_duplicate(spark, tmp_path):
    event = {"event_id": "e-1", "event_type": "paid", "event_at": "2026-11-01T10:00:00Z",
             "order_id": "O1", "customer_id": "C1", "currency": "EUR", "lines": []}  # fmt: skip
    changed = {**event, "currency": "USD"}
    path = landed(tmp_path, shipped([json.dumps(event), json.dumps(event), json.dumps(changed)]))
    result = orders.transform(read_lines(spark, path, "orders"))
    assert (result.stats.processed, result.stats.duplicates) == (1, 1)
    assert result.stats.quarantined == {"id_conflict": 1}
    [row] = result.quarantine.collect()
    assert row["raw_line"] == json.dumps(changed) and "event_id e-1" in row["detail"]


def test_a_lone_carriage_return_does_not_split_a_line(spark: Any, tmp_path: Path) -> None:
    odd = POLL.replace("/api/poll", "/a\rb")
    path = landed(tmp_path, shipped([odd, OTHER]), f"{OTHER}\r\n".encode())
    result = web.transform(read_lines(spark, path, "web"), KEYED)
    # Three lines, as the shipper counted: the odd one whole (and bad), CRLF's \r dropped.
    assert result.stats.read == 3
    assert [(r["raw_line"], r["reason"]) for r in result.quarantine.collect()] == [
        (odd, "malformed_request")
    ]


def test_every_line_the_shipper_counted_is_read_an_empty_one_too(spark, tmp_path) -> None:
    # Empty lines (CRLF's too) travel as lines and are quarantined; the lines after them keep
    # their byte offsets: OTHER resent alone, from its offset, is a duplicate.
    head = f"\n{POLL}\n\n\r\n".encode()
    stats = ShipStats()
    origin = Origin("web-1", "fp01", 0)
    body = b"".join(r.data for r in pack_buffer(head + f"{OTHER}\n\n".encode(), stats,
                                                origin=origin))  # fmt: skip
    path = landed(tmp_path, body, shipped([OTHER], offset=len(head)))
    result = web.transform(read_lines(spark, path, "web"), KEYED)
    assert result.stats.read == stats.lines_read + 1 == 7
    assert (result.stats.processed, result.stats.duplicates) == (2, 1)
    assert result.stats.quarantined == {"empty_line": 4}
