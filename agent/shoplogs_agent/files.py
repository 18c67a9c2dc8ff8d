"""Ship whole log files to Firehose: the batch form, for a folder of logs (``make run``).

The long-running tailing shipper builds on the same ``firehose`` module, so a file shipped
either way travels in the same records.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shoplogs_agent.firehose import DEFAULT_RETRY, RetryPolicy, ShipStats, ship_buffer


def read_blocks(path: Path, size: int = 8 * 1024 * 1024) -> Iterator[bytes]:
    """The file in blocks of whole lines; invalid UTF-8 travels untouched and is judged
    downstream. Rotated logs compressed by logrotate (``access.log.2.gz``) are read too."""
    opener = gzip.open if path.suffix == ".gz" else open
    rest = b""
    with opener(path, "rb") as handle:
        while block := handle.read(size):
            if rest:
                block = rest + block
            cut = block.rfind(b"\n") + 1
            rest = block[cut:]
            if cut:
                yield block[:cut]
    if rest:
        yield rest


def ship_file(
    client: Any, delivery_stream: str, path: Path, policy: RetryPolicy = DEFAULT_RETRY
) -> ShipStats:
    if not path.is_file():
        raise FileNotFoundError(
            f"log file {path} does not exist; point --logs at a folder holding it"
        )
    total = ShipStats()
    for block in read_blocks(path):
        total.add(ship_buffer(client, delivery_stream, block, policy))
    return total
