"""Ship whole log files to Firehose: the batch form, for a folder of logs (``make run``).

The long-running tailing shipper builds on the same ``firehose`` module, so a file shipped
either way travels in the same records.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from shoplogs_agent.firehose import (
    DEFAULT_RETRY,
    MAX_BATCH_BYTES,
    RetryPolicy,
    ShipStats,
    ship_buffer,
)
from shoplogs_agent.identity import Origin, file_fingerprint, format_token, host_id


def read_chunks(path: Path, size: int = MAX_BATCH_BYTES) -> Iterator[tuple[int, bytes]]:
    """(offset, whole lines) of the file, cut exactly where the tailer cuts a file it reads
    after rotation (``tailer.read_lines_from``), so a file shipped either way travels in
    the same records.

    Invalid UTF-8 travels untouched and is judged downstream. Rotated logs compressed by
    logrotate (``access.log.2.gz``) are read too; offsets count the uncompressed bytes.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    offset, pending = 0, b""
    with opener(path, "rb") as handle:

        def take(count: int) -> bytes:
            nonlocal pending
            if len(pending) < count:
                pending += handle.read(count - len(pending))
            taken, pending = pending[:count], pending[count:]
            return taken

        while data := take(size):
            while b"\n" not in data and len(data) % size == 0 and (more := take(size)):
                data += more
            newline = data.find(b"\n")
            if newline >= size:  # one line longer than a read: that line alone
                cut = newline + 1
            elif len(data) >= size and 0 <= (last := data.rfind(b"\n")) < len(data) - 1:
                cut = last + 1  # hold back the part of a line the read cut off
            else:
                cut = len(data)
            pending, data = data[cut:] + pending, data[:cut]
            yield offset, data
            offset += len(data)


def ship_file(
    client: Any,
    delivery_stream: str,
    path: Path,
    policy: RetryPolicy = DEFAULT_RETRY,
    host: str | None = None,
    progress: Callable[[ShipStats], None] | None = None,
    log_format: str = "",
) -> ShipStats:
    """Ship a whole log file, each line with its place in the file (``identity.py``) and,
    given one, the format it is written in (as a flow's ``logFormat``); ``progress`` gets
    the running totals after each chunk."""
    if not path.is_file():
        raise FileNotFoundError(
            f"log file {path} does not exist; point --logs at a folder holding it"
        )
    total = ShipStats()
    fingerprint = file_fingerprint(path)
    token = format_token(log_format) if log_format else b""
    for offset, chunk in read_chunks(path):
        origin = Origin(host_id(host), fingerprint, offset, token)
        total.add(ship_buffer(client, delivery_stream, chunk, policy, origin=origin))
        if progress:
            progress(total)
    return total
