"""Real traffic in the default (combined) format: lines the old parser refused or judged
wrongly. No format setting is involved, so these hold for every site on the default."""

from __future__ import annotations

from typing import Any

import pytest

from preprocess import web
from tests.spark.keys import KEYED, pseudonym

pytestmark = pytest.mark.integration


def line(client: str = "10.0.0.1", request: str = "GET / HTTP/1.1", status: str = "200") -> str:
    return f'{client} - - [01/Nov/2026:10:00:00 +0000] "{request}" {status} 5 "-" "Mozilla/5.0"'


def test_a_target_with_spaces_and_a_hostname_client_parse(lines: Any) -> None:
    raw = [line(request="GET /a.js type= HTTP/1.1"), line(client="dsl-84-1.example.net")]
    rows = web.transform(lines(raw), KEYED).datasets["web_requests"].collect()
    assert sorted((r["client_ip"], r["method"], r["path"], r["protocol"]) for r in rows) == sorted(
        [
            (pseudonym("10.0.0.1"), "GET", "/a.js type=", "HTTP/1.1"),
            (pseudonym("dsl-84-1.example.net"), "GET", "/", "HTTP/1.1"),
        ]
    )


def test_a_common_format_line_is_no_bot_for_lack_of_a_user_agent(lines: Any) -> None:
    common = '10.0.0.2 - - [01/Nov/2026:10:00:00 +0000] "GET /c HTTP/1.1" 200 5'
    [row] = web.transform(lines([common]), KEYED).datasets["web_requests"].collect()
    assert row["is_bot"] is None  # unknown, not a bot


def test_a_broken_status_is_quarantined_naming_the_field(lines: Any) -> None:
    result = web.transform(lines([line(status="2x0"), line(request="-", status="400")]), KEYED)
    reasons = sorted((r["reason"], r["detail"]) for r in result.quarantine.collect())
    assert reasons == [
        ("invalid_value", "status is not an HTTP status (100-599): 2x0"),
        ("malformed_request", 'request is not "METHOD target HTTP/x": -'),
    ]
