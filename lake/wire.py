"""How lines arrive in landing: the shipper's record format, as the lake reads it.

The shipper (``agent/shoplogs_agent/identity.py``, which imports nothing of the project and
so spells the same bytes itself) sends each Firehose record as one line:
``RECORD_MAGIC <host> <fingerprint> <offset> <lines> SEPARATOR`` followed by its lines
joined by ``SEPARATOR``. Lines sent by other agents arrive bare.

Standard library only: the Spark job imports this module on EMR.
"""

from __future__ import annotations

RECORD_MAGIC = b"\x1eSL1 "
SEPARATOR = b"\x1d"
# The header as a Java regex over the decoded line: host, fingerprint, offset, line count.
HEADER_REGEX = "^\x1eSL1 (\\S+) (\\S+) (\\d+) (\\d+)\x1d"


def lines_of(line: bytes) -> list[bytes]:
    """The log lines one delivered line holds: a record's lines, or the bare line itself."""
    if not line.startswith(RECORD_MAGIC):
        return [line]
    header, _, body = line.partition(SEPARATOR)
    return [body] if header.endswith(b" 1") else body.split(SEPARATOR)
