"""Read back what the shipper sent, as the Spark job does: the lines of each record, with
the place each came from (its byte offset: the record's offset plus the lines before it)."""

from __future__ import annotations

from shoplogs_agent.identity import RECORD_MAGIC, SEPARATOR

Place = tuple[str, str, int]  # host, fingerprint, the line's byte offset in its file


def unwrap(data: bytes) -> list[tuple[Place | None, bytes]]:
    """(place, line) of every line in delivered data; place is None for a bare line."""
    found: list[tuple[Place | None, bytes]] = []
    for record in data.splitlines():
        if not record.startswith(RECORD_MAGIC):
            found.append((None, record))
            continue
        header, body = record[len(RECORD_MAGIC) :].split(SEPARATOR, 1)
        host, fingerprint, offset, parts, *_format = header.decode().split(" ")
        lines = [body] if parts == "1" else body.split(SEPARATOR)
        assert len(lines) == int(parts), record[:200]
        start = int(offset)  # a record's lines are contiguous in the file
        for line in lines:
            found.append(((host, fingerprint, start), line))
            start += len(line) + 1
    return found


def shipped_lines(data: bytes) -> list[bytes]:
    return [line for _, line in unwrap(data)]
