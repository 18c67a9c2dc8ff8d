"""``make run`` ships whole files with the agent's ``ship_file``: a final line without a
newline (a server that has not flushed one yet) is shipped at once, exactly once."""

from __future__ import annotations

from pathlib import Path

from shoplogs_agent.files import read_chunks, ship_file
from tests.agent.test_firehose import FlakyFirehose

LINE = b'10.0.0.1 - - [01/Nov/2026:12:00:01 +0000] "GET /%d HTTP/1.1" 200 5'
LINES = [LINE % n for n in range(3)]


def test_a_final_line_without_newline_is_shipped_once(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"\n".join(LINES))  # no newline after the last line
    firehose = FlakyFirehose()
    stats = ship_file(firehose, "shoplogs-local-web", log, host="host-1")
    delivered = b"".join(firehose.delivered)
    assert stats.lines_read == 3
    assert [delivered.count(line) for line in LINES] == [1, 1, 1]


def test_a_final_partial_line_is_cut_once_whatever_the_read_size(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"\n".join(LINES))
    for size in (7, 64, 1000):  # reads that end inside lines, and one read for all
        chunks = b"".join(chunk for _, chunk in read_chunks(log, size))
        assert chunks == log.read_bytes(), size
