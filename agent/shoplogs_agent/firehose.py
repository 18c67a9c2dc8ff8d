"""Ship log lines to Kinesis Data Firehose within the API's limits, retrying what failed.

Limits of ``PutRecordBatch`` (AWS docs): at most 500 records and 4 MiB per call, and at
most 1,000 KiB per record. Small lines are packed into larger newline-delimited records
(the logs are line-oriented, so concatenating whole lines keeps every line intact), which
cuts the number of calls by orders of magnitude.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore import exceptions as botocore_exceptions

from shoplogs_agent.identity import SEPARATOR, Origin, seal

MAX_RECORDS_PER_BATCH = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1000 * 1024
# Worth waiting out: throttling, and a network that is down or slow for a while.
TRANSIENT_EXCEPTIONS: tuple[type[Exception], ...] = (
    TimeoutError,
    botocore_exceptions.EndpointConnectionError,
    botocore_exceptions.ConnectionClosedError,
    botocore_exceptions.ConnectTimeoutError,
    botocore_exceptions.ReadTimeoutError,
)
THROTTLING_ERRORS = {
    "ServiceUnavailableException",
    "ThrottlingException",
    "LimitExceededException",
}


class ShippingError(RuntimeError):
    """Raised when records still fail after every retry; nothing was silently dropped.

    ``permanent``: the stream refused the call itself (access denied, stream missing), so
    waiting will not help until someone fixes the stream or the role.

    ``failed``: the records still failing; ``refused``: Firehose answered the call and
    refused them with an error other than throttling, so these records are the problem (a
    poison record), not the stream.
    """

    def __init__(
        self,
        message: str,
        permanent: bool = False,
        failed: tuple[Record, ...] = (),
        refused: bool = False,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.failed = failed
        self.refused = refused


@dataclass(frozen=True)
class Record:
    data: bytes
    lines: int


@dataclass
class ShipStats:
    lines_read: int = 0
    lines_shipped: int = 0
    records_sent: int = 0
    bytes_sent: int = 0
    batches: int = 0
    retries: int = 0
    oversize_lines: list[bytes] = field(default_factory=list)

    def add(self, other: ShipStats) -> None:
        self.lines_read += other.lines_read
        self.lines_shipped += other.lines_shipped
        self.records_sent += other.records_sent
        self.bytes_sent += other.bytes_sent
        self.batches += other.batches
        self.retries += other.retries
        self.oversize_lines += other.oversize_lines


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    base_seconds: float = 0.1
    cap_seconds: float = 5.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        # "Full jitter" exponential backoff: spreads retries of many shippers apart.
        return rng.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt))


DEFAULT_RETRY = RetryPolicy()


def pack_records(
    lines: Iterable[bytes], stats: ShipStats, max_record: int = MAX_RECORD_BYTES
) -> Iterator[Record]:
    """Pack lines (a missing last newline is added) into records; see ``pack_buffer``."""
    data = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines)
    yield from pack_buffer(data, stats, max_record)


MakeRecord = Callable[[int, int, int], Record]


def _record_maker(data: bytes, origin: Origin | None) -> MakeRecord:
    """Makes the record of ``lines`` lines at ``data[start:end]``."""
    if origin is None:
        return lambda start, end, lines: Record(data[start:end], lines)
    sealed = seal(data)
    return lambda start, end, lines: Record(origin.record(sealed, start, end, lines), lines)


def _set_aside(data: bytes, start: int, end: int, stats: ShipStats) -> None:
    """A line longer than a record can hold, kept for quarantine: never truncated."""
    stats.lines_read += 1
    stats.oversize_lines.append(data[start:end])


def pack_buffer(
    data: bytes,
    stats: ShipStats,
    max_record: int = MAX_RECORD_BYTES,
    origin: Origin | None = None,
) -> Iterator[Record]:
    """Pack a buffer of whole lines into records of at most ``max_record`` bytes, without a
    Python step per line.

    Records are cut at the last newline that fits, so every line stays whole; only ``\\n``
    ends a line (a lone ``\\r`` is part of it, as the Spark job reads it). With an
    ``origin``, each record carries where its lines come from (``identity.py``). An empty
    line is a line like any other: sent and counted, and the Spark job quarantines it
    (``empty_line``). Looking for empty lines to leave out cost a full pass over every
    buffer, a fifth of the shipper's own time, to save bytes that real logs rarely hold.
    """
    if not data.endswith(b"\n"):
        data += b"\n"
    limit = max_record - (origin.header_room if origin else 0)
    record = _record_maker(data, origin)
    if origin and SEPARATOR in data:
        yield from _pack_lines(data, stats, limit, record)
        return
    start, size = 0, len(data)
    while start < size:
        end = min(start + limit, size)
        if end < size:
            cut = data.rfind(b"\n", start, end)
            if cut < 0:  # one line longer than a record: set aside for quarantine
                line_end = data.index(b"\n", start) + 1
                _set_aside(data, start, line_end, stats)
                start = line_end
                continue
            end = cut + 1
        lines = data.count(b"\n", start, end)
        stats.lines_read += lines
        yield record(start, end, lines)
        start = end


def _pack_lines(data: bytes, stats: ShipStats, limit: int, record: MakeRecord) -> Iterator[Record]:
    """The line-by-line path, for a buffer with a line holding the separator byte: that line
    travels alone, so the Spark job never splits it."""
    first, lines = 0, 0  # the record being filled: data[first:start], `lines` lines
    start = 0
    while start < len(data):
        end = data.index(b"\n", start) + 1
        alone = SEPARATOR in data[start:end]
        if lines and (alone or end - first > limit):
            yield record(first, start, lines)
            lines = 0
        if not lines:
            first = start
        if end - start > limit:
            _set_aside(data, start, end, stats)
            first = end
        else:
            stats.lines_read += 1
            lines += 1
            if alone:
                yield record(first, end, lines)
                lines = 0
        start = end
    if lines:
        yield record(first, len(data), lines)


def batch_records(
    records: Iterable[Record],
    max_records: int = MAX_RECORDS_PER_BATCH,
    max_bytes: int = MAX_BATCH_BYTES,
) -> Iterator[list[Record]]:
    """Group records into ``PutRecordBatch`` calls that respect both call limits."""
    batch: list[Record] = []
    size = 0
    for record in records:
        if batch and (len(batch) == max_records or size + len(record.data) > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += len(record.data)
    if batch:
        yield batch


def _error_code(exc: Exception) -> str:
    response: Any = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def is_transient(exc: Exception) -> bool:
    """Throttling, the network, or a 5xx (the service's own fault): worth waiting out."""
    response: Any = getattr(exc, "response", None) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return (
        _error_code(exc) in THROTTLING_ERRORS
        or isinstance(exc, TRANSIENT_EXCEPTIONS)
        or int(status) >= 500
    )


def put_batch(
    client: Any,
    stream: str,
    batch: list[Record],
    stats: ShipStats,
    policy: RetryPolicy = DEFAULT_RETRY,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> None:
    """Send one batch; on a partial failure resend only the failed records. ``stopping``
    (SIGTERM) ends the retries early: the unsent records stay behind the checkpoint."""
    rng = rng or random.Random()
    pending = batch
    codes: set[str] = set()
    for attempt in range(policy.attempts):
        if attempt and stopping():
            raise ShippingError(f"stopping: {len(pending)} record(s) for {stream!r} not sent")
        if attempt:
            stats.retries += 1
            sleep(policy.delay(attempt, rng))
        try:
            response = client.put_record_batch(
                DeliveryStreamName=stream, Records=[{"Data": r.data} for r in pending]
            )
        except Exception as exc:
            if is_transient(exc):
                continue
            raise ShippingError(
                f"Firehose stream {stream!r} rejected a batch: {exc}. Check that the "
                "delivery stream exists and the credentials may write to it.",
                permanent=True,
            ) from exc
        failed, codes = [], set()
        results = response["RequestResponses"]
        if len(results) != len(pending):  # zip(strict=True) needs Python 3.10
            raise ShippingError(
                f"Firehose answered {len(results)} results for {len(pending)} records"
            )
        for record, result in zip(pending, results):
            if result.get("ErrorCode"):
                failed.append(record)
                codes.add(str(result["ErrorCode"]))
            else:
                stats.records_sent += 1
                stats.lines_shipped += record.lines
                stats.bytes_sent += len(record.data)
        stats.batches += 1
        if not failed:
            return
        pending = failed
    raise ShippingError(
        f"{len(pending)} record(s) for Firehose stream {stream!r} still failed after "
        f"{policy.attempts} attempts; nothing was dropped: re-run the shipper to resend them.",
        failed=tuple(pending),
        refused=bool(codes - THROTTLING_ERRORS),
    )


def ship_buffer(
    client: Any,
    stream: str,
    data: bytes,
    policy: RetryPolicy = DEFAULT_RETRY,
    sleep: Callable[[float], None] = time.sleep,
    origin: Origin | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> ShipStats:
    """Pack, batch and send a buffer of whole lines to delivery stream ``stream``; with an
    ``origin``, every line travels with its place in its file."""
    stats = ShipStats()
    for batch in batch_records(pack_buffer(data, stats, origin=origin)):
        put_batch(client, stream, batch, stats, policy, sleep, stopping=stopping)
    return stats
