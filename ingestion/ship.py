"""Ship whole log files to Firehose: the batch form the pipeline uses to load a log folder.

The long-running tailing shipper for EC2 hosts builds on the same ``firehose`` module.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingestion.firehose import DEFAULT_RETRY, RetryPolicy, ShipStats, ship_lines


def read_lines(path: Path) -> Iterator[bytes]:
    """Lines as bytes: invalid UTF-8 travels untouched and is judged downstream.

    Rotated logs compressed by logrotate (``access.log.2.gz``) are read transparently.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        yield from handle


def ship_file(
    client: Any, delivery_stream: str, path: Path, policy: RetryPolicy = DEFAULT_RETRY
) -> ShipStats:
    if not path.is_file():
        raise FileNotFoundError(
            f"log file {path} does not exist; point --logs at a folder holding it"
        )
    return ship_lines(client, delivery_stream, read_lines(path), policy)
