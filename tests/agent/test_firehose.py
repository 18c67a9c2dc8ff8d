"""Batching to the PutRecordBatch limits, and retries that resend only what failed."""

from __future__ import annotations

from typing import Any

import pytest

from shoplogs_agent.firehose import (
    MAX_BATCH_BYTES,
    MAX_RECORD_BYTES,
    MAX_RECORDS_PER_BATCH,
    Record,
    RetryPolicy,
    ShippingError,
    ShipStats,
    batch_records,
    pack_records,
    ship_buffer,
)


class FlakyFirehose:
    """A Firehose stand-in that fails chosen entries or whole calls, then succeeds.

    It keeps what it accepted, so tests assert on delivered data, not on calls made.
    """

    def __init__(self, fail_entries: int = 0, throttle_calls: int = 0, fail_forever=False):
        self.fail_entries = fail_entries
        self.throttle_calls = throttle_calls
        self.fail_forever = fail_forever
        self.delivered: list[bytes] = []

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict]) -> dict[str, Any]:
        if self.throttle_calls:
            self.throttle_calls -= 1
            error = Exception("slow down")
            error.response = {"Error": {"Code": "ServiceUnavailableException"}}  # type: ignore[attr-defined]
            raise error
        responses = []
        for record in Records:
            if self.fail_forever or self.fail_entries:
                self.fail_entries = max(0, self.fail_entries - 1)
                responses.append({"ErrorCode": "ServiceUnavailableException"})
            else:
                self.delivered.append(record["Data"])
                responses.append({"RecordId": str(len(self.delivered))})
        failed = sum(1 for r in responses if "ErrorCode" in r)
        return {"FailedPutCount": failed, "RequestResponses": responses}


def delivered_lines(client: FlakyFirehose) -> list[bytes]:
    return b"".join(client.delivered).splitlines(keepends=True)


NO_WAIT = RetryPolicy(attempts=5, base_seconds=0)


def test_small_lines_are_packed_into_records_within_the_record_limit() -> None:
    lines = [b"x" * 99 + b"\n"] * 30_000  # 3 MB of 100-byte lines
    stats = ShipStats()
    records = list(pack_records(lines, stats))
    assert all(len(r.data) <= MAX_RECORD_BYTES for r in records)
    assert sum(r.lines for r in records) == 30_000
    assert b"".join(r.data for r in records) == b"".join(lines)
    assert len(records) == 3


def test_empty_lines_are_sent_and_counted_and_missing_newlines_are_added() -> None:
    stats = ShipStats()
    records = list(pack_records([b"a\n", b"\n", b"\r\n", b"   \n", b"b"], stats))
    # Empty lines and a line of spaces are lines: sent, counted, and quarantined downstream.
    assert b"".join(r.data for r in records) == b"a\n\n\r\n   \nb\n"
    assert stats.lines_read == sum(r.lines for r in records) == 5


def test_a_line_over_the_record_limit_is_set_aside_not_truncated() -> None:
    huge = b"y" * (MAX_RECORD_BYTES + 1) + b"\n"
    stats = ShipStats()
    records = list(pack_records([b"a\n", huge, b"b\n"], stats))
    assert stats.oversize_lines == [huge]
    assert b"".join(r.data for r in records) == b"a\nb\n"


def test_batches_respect_the_record_count_and_byte_limits() -> None:
    small = [Record(b"x\n", 1)] * 1_234
    assert [len(b) for b in batch_records(small)] == [MAX_RECORDS_PER_BATCH] * 2 + [234]
    big = [Record(b"z" * MAX_RECORD_BYTES, 1)] * 9
    batches = list(batch_records(big))
    assert all(sum(len(r.data) for r in b) <= MAX_BATCH_BYTES for b in batches)
    assert sum(len(b) for b in batches) == 9


def test_partial_failure_resends_only_the_failed_records() -> None:
    lines = [f"line {i}\n".encode() for i in range(2_000)]
    client = FlakyFirehose(fail_entries=1)
    stats = ship_buffer(client, "s", b"".join(lines), policy=NO_WAIT, sleep=lambda _: None)
    # Every line arrives exactly once, in spite of the failed entry.
    assert sorted(delivered_lines(client)) == sorted(lines)
    assert stats.lines_shipped == 2_000
    assert stats.retries == 1


def test_throttling_is_retried_with_backoff() -> None:
    client = FlakyFirehose(throttle_calls=3)
    waits: list[float] = []
    stats = ship_buffer(client, "s", b"a\nb\n", policy=RetryPolicy(5, 0.1, 5), sleep=waits.append)
    assert delivered_lines(client) == [b"a\n", b"b\n"]
    assert stats.retries == 3
    assert len(waits) == 3 and all(0 <= w <= 5 for w in waits)


def test_records_that_keep_failing_raise_a_clear_error() -> None:
    client = FlakyFirehose(fail_forever=True)
    with pytest.raises(ShippingError, match=r"still failed after 5 attempts.*re-run the shipper"):
        ship_buffer(client, "shop-web", b"a\n", policy=NO_WAIT, sleep=lambda _: None)


@pytest.mark.parametrize(
    "data",
    [
        b"a\nbb\nccc\n" * 50_000,
        b"a\n\nb\n   \nc",  # blank lines and a last line without newline
        b"x\n" + b"y" * (MAX_RECORD_BYTES + 5) + b"\nz\n",  # one line over the record limit
    ],
)
def test_buffer_packing_matches_line_by_line_packing(data: bytes) -> None:
    from shoplogs_agent.firehose import pack_buffer

    fast, slow = ShipStats(), ShipStats()
    fast_records = list(pack_buffer(data, fast))
    slow_records = list(pack_records(data.splitlines(keepends=True), slow))
    assert b"".join(r.data for r in fast_records) == b"".join(r.data for r in slow_records)
    assert sum(r.lines for r in fast_records) == sum(r.lines for r in slow_records)
    assert (fast.lines_read, fast.oversize_lines) == (slow.lines_read, slow.oversize_lines)
    assert all(len(r.data) <= MAX_RECORD_BYTES for r in fast_records)
