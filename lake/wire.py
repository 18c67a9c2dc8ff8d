"""How lines arrive in landing: the shipper's record format, as the lake reads it.

The shipper (``agent/shoplogs_agent/identity.py``, which imports nothing of the project and
so spells the same bytes itself) sends each Firehose record as one line:
``RECORD_MAGIC <host> <fingerprint> <offset> <lines> [<format>] SEPARATOR`` followed by
its lines joined by ``SEPARATOR``; ``<format>`` is the flow's log format (agent.json's
``logFormat``, percent-encoded), when it names one. Lines sent by other agents arrive bare.

Standard library only: the Spark job imports this module on EMR.
"""

from __future__ import annotations

RECORD_MAGIC = b"\x1eSL1 "
SEPARATOR = b"\x1d"
# The header as a Java regex over the decoded line: host, fingerprint, offset, line count,
# the format (empty when the record names none; the separator is no space, so the format's
# class excludes it, else a first line without a space would be read as part of the format).
HEADER_REGEX = "^\x1eSL1 (\\S+) (\\S+) (\\d+) (\\d+)(?: ([^\\s\x1d]+))?\x1d"
# The longest header: the shipper leaves 512 bytes for its fields, plus the format's own
# length, at most 4096 bytes (agent/shoplogs_agent/identity.py).
MAX_HEADER_BYTES = 512 + 1 + 4096


def lines_of(line: bytes) -> list[bytes]:
    """The log lines one delivered line holds: a record's lines, or the bare line itself."""
    if not line.startswith(RECORD_MAGIC):
        return [line]
    header, _, body = line.partition(SEPARATOR)
    return [body] if header.split(b" ")[4:5] == [b"1"] else body.split(SEPARATOR)
