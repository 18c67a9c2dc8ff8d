"""Read back what the shipper sent, as the Spark job does: the lines of each record, with
the place each came from."""

from __future__ import annotations

from shoplogs_agent.identity import RECORD_MAGIC, SEPARATOR

Place = tuple[str, str, int, int]  # host, fingerprint, record offset, index in the record


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
        found += [((host, fingerprint, int(offset), i), line) for i, line in enumerate(lines)]
    return found


def shipped_lines(data: bytes) -> list[bytes]:
    return [line for _, line in unwrap(data)]
