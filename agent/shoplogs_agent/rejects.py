"""Lines Firehose cannot take (over its 1,000 KiB record limit), delivered to the lake.

The shipper appends each such line, whole and with its reason, to a local outbox readable
by its own user only (mode 0600 in a 0700 folder: it holds raw customer data), before the
checkpoint moves past it. Each poll then puts every pending line to the lake bucket as one
object at ``quarantine/<stream>/shipper/<file>-<digest>.json``, the key the data contract
gives shipper rejects (``lake.layout.shipper_rejects``; the agent cannot import ``lake``,
a test keeps the two equal). The key is derived from the line, so a resend overwrites the
same object. Only once every pending line is stored is the outbox emptied.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REASON = "record_too_large"
# A record Firehose kept refusing while the stream took the others (a poison record).
REFUSED = "firehose_refused"


@dataclass(frozen=True)
class Reject:
    stream: str  # the lake's stream name: web, orders, customers
    source: str  # the file the line was read from
    host: str
    reason: str
    bytes: int
    sha256: str
    raw_line: str


def reject_key(stream: str, source: str, sha256: str) -> str:
    """Where a reject lands in the lake: ``lake.layout.shipper_rejects`` spelled again."""
    return f"quarantine/{stream}/shipper/{Path(source).name}-{sha256[:16]}.json"


def make_reject(stream: str, source: str, line: bytes, reason: str = REASON) -> Reject:
    raw = line.rstrip(b"\n")
    return Reject(
        stream=stream,
        source=source,
        host=socket.gethostname(),
        reason=reason,
        bytes=len(raw),
        sha256=hashlib.sha256(raw).hexdigest(),
        raw_line=raw.decode("utf-8", "replace"),
    )


class Outbox:
    """The local file of rejects not yet in the lake."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, rejects: list[Reject]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)  # a file left by an older version may be wider
        with os.fdopen(fd, "a") as handle:
            handle.writelines(json.dumps(asdict(r)) + "\n" for r in rejects)
            handle.flush()
            os.fsync(handle.fileno())

    def pending(self) -> list[Reject]:
        if not self.path.exists():
            return []
        rows = self.path.read_text().splitlines()
        return [Reject(**json.loads(row)) for row in rows if row.strip()]

    def deliver(self, s3: Any, bucket: str) -> int:
        """Put every pending reject into the lake, then empty the outbox; returns how many.
        A failure leaves the outbox as it was: the next poll puts them again."""
        rejects = self.pending()
        for reject in rejects:
            s3.put_object(
                Bucket=bucket,
                Key=reject_key(reject.stream, reject.source, reject.sha256),
                Body=json.dumps(asdict(reject)).encode(),
                ContentType="application/json",
            )
        if rejects:
            os.truncate(self.path, 0)
        return len(rejects)
