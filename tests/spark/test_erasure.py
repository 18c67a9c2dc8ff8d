"""The erasure register in the Spark job (spark/preprocess/erasure.py) gives the answer
lake/erasure.py gives the same lines in Python: the two spellings of one rule."""

from __future__ import annotations

from typing import Any

import pytest

from lake.erasure import erased_of, register_of, scrub_line
from preprocess.erasure import erase_lines

pytestmark = pytest.mark.integration

REGISTER = register_of([erased_of("1042", ["Ana.Lopez+shop@example.com"], ["O-77"])])
LINES = {
    "customers": [
        "2026-11-21T10:00:00Z,1042,ana.lopez+shop@example.com,Ana,Lopez,ES",
        "2026-11-21T10:00:01Z,10420,ana@example.com,Ana,Other,ES",  # a longer id: not theirs
        '{"customer_id": "1042", "event": "profile_updated"}',
        "2026-11-21T10:00:02Z,7,seven@example.com,Sam,Seven,DE",
        "2026-11-21T10:00:03Z,8,ANA.LOPEZ+SHOP@EXAMPLE.COM,Ana,Lopez,ES",  # the email, upper
    ],
    "orders": [
        "2026-11-21T10:05:00Z,O-77,1042,59.90,EUR,paid",
        "2026-11-21T10:05:01Z,O-78,10421,12.00,EUR,paid",
        "2026-11-21T10:05:02Z,O-79,1042,1042.00,EUR,paid",  # an amount spelled like the id
    ],
    "web": [
        '203.0.113.9 - - [21/Nov/2026:10:00:00 +0000] "GET /account?email=ana.lopez+shop@'
        'example.com HTTP/1.1" 200 5 "-" "curl/8"',
        '203.0.113.9 - - [21/Nov/2026:10:00:01 +0000] "GET /p/1042x HTTP/1.1" 200 5 "-" "-"',
    ],
}


@pytest.mark.parametrize("stream", sorted(LINES))
def test_spark_erases_the_lines_python_erases(lines: Any, stream: str) -> None:
    expected = [scrub_line(line, stream, REGISTER) for line in LINES[stream]]
    frame, gone = erase_lines(lines(LINES[stream]), stream, REGISTER)
    assert [row.value for row in frame.collect()] == [line for line in expected if line]
    assert gone == expected.count(None)
    assert expected != LINES[stream]  # each stream has something to erase
