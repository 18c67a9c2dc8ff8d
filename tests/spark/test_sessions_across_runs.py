"""A visit that spans two runs' data is one session: the open session the first run leaves
in the lake's state zone goes on in the next run, with the same id."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from job import run_context, write

from preprocess import web
from tests.spark.keys import KEY, KEYED

pytestmark = pytest.mark.integration

DAY1, DAY2 = date(2026, 11, 1), date(2026, 11, 2)


def hit(ip: str, stamp: str, page: str) -> str:
    return f'{ip} - - [{stamp} +0000] "GET {page} HTTP/1.1" 200 1 "-" "Mozilla/5.0"'


def run(spark: Any, lines: Any, lake: Path, day: date) -> dict[str, str]:
    """One run's web transform, its state published into the lake as promote does."""
    result = web.transform(lines, run_context(spark, str(lake), day, KEY))
    write(result, str(lake), day)  # the job writes zone-shaped; the lake root is the zone
    return {r["path"]: r["session_id"] for r in result.datasets["web_requests"].collect()}


def test_a_visit_across_midnight_between_two_runs_is_one_session(
    spark: Any, lines: Any, tmp_path: Path
) -> None:
    first = run(spark, lines([
        hit("1.1.1.1", "01/Nov/2026:23:50:00", "/a1"),
        hit("1.1.1.1", "01/Nov/2026:23:55:00", "/a2"),
        hit("2.2.2.2", "01/Nov/2026:12:00:00", "/b1"),
    ]), tmp_path, DAY1)  # fmt: skip
    second_lines = lines([
        hit("1.1.1.1", "02/Nov/2026:00:10:00", "/a3"),  # 15 minutes after /a2: same visit
        hit("2.2.2.2", "02/Nov/2026:12:00:00", "/b2"),  # a day later: a new visit
    ])  # fmt: skip
    second = run(spark, second_lines, tmp_path, DAY2)
    assert first["/a1"] == first["/a2"] == second["/a3"]
    assert first["/b1"] != second["/b2"]
    # Re-running the second day reads the same state and gives the same ids.
    assert run(spark, second_lines, tmp_path, DAY2) == second
    # Without the first run's state the visit would have been cut in two.
    alone = web.transform(second_lines, KEYED).datasets["web_requests"].collect()
    assert {r["path"]: r["session_id"] for r in alone}["/a3"] != first["/a1"]


def test_a_late_request_joins_the_session_it_falls_in(
    spark: Any, lines: Any, tmp_path: Path
) -> None:
    """A request of 06:57 that reaches a later run belongs to the visitor's 06:54-06:58
    session, even when that visitor's latest session is another one: it never starts a
    session of its own inside an existing one."""
    first = run(spark, lines([
        hit("1.1.1.1", "01/Nov/2026:06:54:00", "/a1"),
        hit("1.1.1.1", "01/Nov/2026:06:58:00", "/a2"),
        hit("1.1.1.1", "01/Nov/2026:09:00:00", "/later-visit"),
    ]), tmp_path, DAY1)  # fmt: skip
    second = run(spark, lines([
        hit("1.1.1.1", "01/Nov/2026:06:57:00", "/late"),  # arrived a run late
        hit("1.1.1.1", "02/Nov/2026:06:00:00", "/next-day"),
    ]), tmp_path, DAY2)  # fmt: skip
    assert second["/late"] == first["/a1"] == first["/a2"]
    assert first["/later-visit"] != first["/a1"]
    assert second["/next-day"] not in {first["/a1"], first["/later-visit"]}
