"""Where each shipped line comes from, so that a resend can be told from a real repeat.

Two real requests from the same client for the same URL in the same second write the same
line; a shipper that resends after a crash sends the same line again. Only the line's
place tells them apart: the host, the file (by a fingerprint of its first line, which a
rename, a copytruncate copy or gzip keep) and the byte offset.

Each Firehose record carries that place once, in a header, with its lines joined by a
separator on one line (``RECORD_MAGIC`` is the contract with the Spark job):

    \\x1e SL1 <host> <fingerprint> <offset of the record's first line> <parts> [<format>] \\x1d
    <line 1> \\x1d <line 2> ... \\n

(``<format>``, the flow's ``logFormat`` from agent.json percent-encoded, is there when the
flow names one: the Spark job parses the record's lines in it), so the Spark job reads one
record per line and gives each line its own byte offset (the record's offset plus the lines
before it: a record's lines are contiguous in the file). A line is known by (host, stream,
fingerprint, byte offset), which no checkpoint carries and no record cut changes: a re-read
after a lost checkpoint sends the same places again, and the pipeline drops those resends as
duplicates. Building the record costs one
``bytes.replace`` per record, not a step per line (a per-line prefix cost 4x the
shipper's own time, measured).
"""

from __future__ import annotations

import gzip
import hashlib
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

# The same bytes as lake/wire.py, which the pipeline reads them with (this package imports
# nothing of the project, so the format is spelled on both sides of the wire).
RECORD_MAGIC = b"\x1eSL1 "
SEPARATOR = b"\x1d"
# Room left in a Firehose record for the header (host names are at most 253 bytes).
HEADER_ROOM = 512
FINGERPRINT_BYTES = 4096
# The longest log format a record header carries, encoded (the Spark job reads headers of up
# to HEADER_ROOM + this many characters: spark/preprocess/common.py).
MAX_FORMAT_BYTES = 4096
# Characters a format keeps as they are in the header: it stays readable (``$remote_addr``,
# ``[$time_local]``); the rest (spaces, quotes, ``%``, control bytes, non-ASCII) is %XX.
FORMAT_SAFE = "$[]{}()<>:;,./=!*'@&^|~-_"


def host_id(configured: str | None = None) -> str:
    """The configured host id (the EC2 instance id, say), else the host name."""
    return re.sub(r"\s+", "_", configured or socket.gethostname()) or "unknown-host"


def format_token(log_format: str) -> bytes:
    """A flow's log format as one header field: percent-encoded, so it holds no space,
    separator or newline; ``b""`` for none. Raises ValueError when it is too long."""
    token = quote(log_format.strip(), safe=FORMAT_SAFE).encode()
    if len(token) > MAX_FORMAT_BYTES:
        raise ValueError(
            f"is {len(token)} bytes percent-encoded, over the {MAX_FORMAT_BYTES} a record "
            "header carries; name a shortcut or drop fields the pipeline does not use"
        )
    return token


def fingerprint(first_bytes: bytes) -> str:
    """A file's fingerprint: a hash of its first line (at most 4 KiB of it)."""
    cut = first_bytes.find(b"\n")
    head = first_bytes[: cut + 1] if cut >= 0 else first_bytes[:FINGERPRINT_BYTES]
    return hashlib.sha256(head).hexdigest()[:16]


def file_fingerprint(path: str | Path) -> str:
    """``fingerprint`` of a log file, read through gzip for a compressed rotation."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        return fingerprint(handle.read(FINGERPRINT_BYTES))


@dataclass(frozen=True)
class Origin:
    """Where a buffer of whole lines was read: which host and file, from which offset."""

    host: str
    fingerprint: str
    offset: int  # of the buffer's first byte in the file
    format_token: bytes = b""  # the flow's log format (``format_token``), or none

    @property
    def header_room(self) -> int:
        """Bytes of a record the header may take."""
        return HEADER_ROOM + len(self.format_token) + 1

    def record(self, sealed: memoryview, start: int, end: int, lines: int) -> bytes:
        """The ``lines`` lines at ``sealed[start:end]`` (``end`` after a newline) as one
        enveloped record; ``sealed`` is the buffer as ``seal`` returns it."""
        header = b"%s%s %s %d %d%s%s" % (RECORD_MAGIC, self.host.encode(),
                                         self.fingerprint.encode(), self.offset + start, lines,
                                         b" " + self.format_token if self.format_token else b"",
                                         SEPARATOR)  # fmt: skip
        return b"".join((header, sealed[start : end - 1], b"\n"))


def record_lines(record: bytes) -> list[bytes]:
    """The lines of an enveloped record (what ``Origin.record`` made), for quarantine."""
    body = record.rstrip(b"\n")
    if body.startswith(RECORD_MAGIC):
        header, body = body.split(SEPARATOR, 1)
        if header.split(b" ")[4:5] == [b"1"]:  # one line, which may hold the separator
            return [body]
    return body.split(SEPARATOR)


def seal(data: bytes) -> memoryview:
    """A buffer of lines with every newline turned into the separator: done once for the
    whole buffer, not once per record, which saves a copy of every byte shipped."""
    return memoryview(data.replace(b"\n", SEPARATOR))
