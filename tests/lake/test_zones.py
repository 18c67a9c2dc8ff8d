"""Firehose delivery into landing and the zone moves, against a real moto server."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pytest

from lake import zones
from local.aws import provision
from shoplogs_agent.firehose import ship_buffer

pytestmark = pytest.mark.integration

RUN = date(2026, 11, 3)


@pytest.fixture
def bucket(s3: Any, firehose: Any, request: pytest.FixtureRequest) -> str:
    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50]
    provision(s3, firehose, name, {"web": f"{name}-web"}, "arn:aws:iam::123456789012:role/x")
    return name


def put(s3: Any, bucket: str, key: str, body: bytes = b"x\n") -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def test_firehose_delivers_shipped_lines_under_the_landing_prefix(
    s3: Any, firehose: Any, bucket: str
) -> None:
    lines = [f"10.0.0.{i} - - line\n".encode() for i in range(1_200)]
    stats = ship_buffer(firehose, f"{bucket}-web", b"".join(lines))
    keys = zones.list_keys(s3, bucket, "landing/")
    assert keys and all(re.match(r"landing/web/\d{4}/\d\d/\d\d/\d\d/", k) for k in keys)
    body = b"".join(s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys)
    assert sorted(body.splitlines(keepends=True)) == sorted(lines)
    assert stats.lines_shipped == 1_200


def test_claim_takes_arrivals_up_to_the_run_date_and_is_repeatable(s3: Any, bucket: str) -> None:
    put(s3, bucket, "landing/web/2026/11/02/23/a")
    put(s3, bucket, "landing/web/2026/11/03/10/b")
    put(s3, bucket, "landing/web/2026/11/04/00/c")  # arrived after the run's date
    first = zones.claim(s3, bucket, RUN)
    assert first == [
        "processing/dt=2026-11-03/raw/web/2026/11/02/23/a",
        "processing/dt=2026-11-03/raw/web/2026/11/03/10/b",
    ]
    assert zones.list_keys(s3, bucket, "landing/") == ["landing/web/2026/11/04/00/c"]
    # A retry of the same run owns the same objects, plus anything that arrived for it since.
    put(s3, bucket, "landing/web/2026/11/03/23/d")
    again = zones.claim(s3, bucket, RUN)
    assert again == [*first, "processing/dt=2026-11-03/raw/web/2026/11/03/23/d"]


def test_claim_after_a_crash_between_copy_and_delete_neither_loses_nor_doubles(
    s3: Any, bucket: str
) -> None:
    put(s3, bucket, "landing/web/2026/11/03/10/b", b"payload\n")
    # The earlier attempt copied the object but died before deleting it from landing.
    put(s3, bucket, "processing/dt=2026-11-03/raw/web/2026/11/03/10/b", b"payload\n")
    claimed = zones.claim(s3, bucket, RUN)
    assert claimed == ["processing/dt=2026-11-03/raw/web/2026/11/03/10/b"]
    assert zones.list_keys(s3, bucket, "landing/") == []


def test_promote_replaces_the_run_partition_and_leaves_others(s3: Any, bucket: str) -> None:
    out = "processing/dt=2026-11-03/output/"
    put(s3, bucket, "processed/web_requests/dt=2026-11-02/old.parquet")
    put(s3, bucket, "processed/web_requests/dt=2026-11-03/stale.parquet")
    put(s3, bucket, out + "processed/web_requests/dt=2026-11-03/part-0.parquet")
    put(s3, bucket, out + "processed/web_requests/dt=2026-11-03/_SUCCESS")
    put(s3, bucket, out + "quarantine/web/dt=2026-11-03/part-0.json")
    published = zones.promote(s3, bucket, RUN)
    assert published == [
        "processed/web_requests/dt=2026-11-03/part-0.parquet",
        "quarantine/web/dt=2026-11-03/part-0.json",
    ]
    assert zones.list_keys(s3, bucket, "processed/") == [
        "processed/web_requests/dt=2026-11-02/old.parquet",
        "processed/web_requests/dt=2026-11-03/part-0.parquet",
    ]
    assert zones.promote(s3, bucket, RUN) == published  # a second promote changes nothing


def test_unreadable_objects_go_to_quarantine_and_the_rest_stays(s3: Any, bucket: str) -> None:
    import gzip

    whole = gzip.compress(b"a\nb\n")
    put(s3, bucket, "landing/web/2026/11/03/10/good", b"a\nb\n")
    put(s3, bucket, "landing/web/2026/11/03/10/good-gz", whole)
    put(s3, bucket, "landing/web/2026/11/03/10/cut-gz", whole[: len(whole) // 2])
    put(s3, bucket, "landing/web/2026/11/03/10/binary", bytes(range(32)) * 100)
    put(s3, bucket, "landing/web/2026/11/03/10/empty", b"")
    zones.claim(s3, bucket, RUN)
    moved = zones.screen(s3, bucket, RUN)
    raw = "processing/dt=2026-11-03/raw/web/2026/11/03/10/"
    assert moved == {raw + "cut-gz": "truncated_gzip", raw + "binary": "binary_content"}
    # A compressed object gets the extension Spark needs to decompress it.
    assert zones.list_keys(s3, bucket, raw) == [raw + "empty", raw + "good", raw + "good-gz.gz"]
    reason = s3.get_object(
        Bucket=bucket, Key="quarantine/objects/dt=2026-11-03/web/2026/11/03/10/cut-gz.reason.json"
    )["Body"].read()
    assert b"truncated_gzip" in reason
    assert zones.set_aside_objects(s3, bucket, RUN) == {
        "quarantine/objects/dt=2026-11-03/web/2026/11/03/10/binary": "binary_content",
        "quarantine/objects/dt=2026-11-03/web/2026/11/03/10/cut-gz": "truncated_gzip",
    }


def test_two_runs_claiming_at_once_never_take_the_same_object(s3: Any, bucket: str) -> None:
    import threading

    for number in range(60):
        put(s3, bucket, f"landing/web/2026/11/03/10/obj-{number:02d}")
    results: dict[str, list[str]] = {}

    def run(day: date) -> None:
        claimed = zones.claim(s3, bucket, day)
        results[day.isoformat()] = [k.rsplit("/", 1)[-1] for k in claimed]

    threads = [threading.Thread(target=run, args=(d,)) for d in (RUN, date(2026, 11, 4))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first, second = results.values()
    assert not set(first) & set(second)
    assert sorted(first + second) == [f"obj-{n:02d}" for n in range(60)]


def claim_marker(s3: Any, bucket: str, key: str, run: date, at: float) -> None:
    body = json.dumps({"run_date": run.isoformat(), "claimed_at": at})
    put(s3, bucket, f"processing/_claims/{key}.json", body.encode())


def test_a_live_claim_is_respected_and_an_expired_one_is_taken_again(s3: Any, bucket: str) -> None:
    crashed, now = date(2026, 11, 2), 1_000_000.0
    put(s3, bucket, "landing/web/2026/11/02/10/live")
    put(s3, bucket, "landing/web/2026/11/02/10/stale")
    claim_marker(s3, bucket, "landing/web/2026/11/02/10/live", crashed, now - 60)
    claim_marker(s3, bucket, "landing/web/2026/11/02/10/stale", crashed, now - 7 * 3600)
    claimed = zones.claim(s3, bucket, RUN, now=now)
    assert claimed == ["processing/dt=2026-11-03/raw/web/2026/11/02/10/stale"]
    assert zones.list_keys(s3, bucket, "landing/") == ["landing/web/2026/11/02/10/live"]


def test_an_object_a_crashed_run_already_copied_stays_that_runs(s3: Any, bucket: str) -> None:
    crashed, now = date(2026, 11, 2), 1_000_000.0
    put(s3, bucket, "landing/web/2026/11/02/10/obj")
    put(s3, bucket, "processing/dt=2026-11-02/raw/web/2026/11/02/10/obj")  # copied, then died
    claim_marker(s3, bucket, "landing/web/2026/11/02/10/obj", crashed, now - 7 * 3600)
    assert zones.claim(s3, bucket, RUN, now=now) == []
    assert zones.list_keys(s3, bucket, "landing/") == []
    assert zones.list_keys(s3, bucket, "processing/dt=2026-11-02/raw/") == [
        "processing/dt=2026-11-02/raw/web/2026/11/02/10/obj"
    ]


def test_rejected_lines_of_same_named_files_are_all_kept(s3: Any, bucket: str) -> None:
    first = zones.quarantine_lines(s3, bucket, "web", "access.log", "record_too_large", [b"a\n"])
    second = zones.quarantine_lines(s3, bucket, "web", "access.log", "record_too_large", [b"b\n"])
    again = zones.quarantine_lines(s3, bucket, "web", "access.log", "record_too_large", [b"a\n"])
    assert first != second and again == first
    kept = [
        json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["raw_line"]
        for key in zones.list_keys(s3, bucket, "quarantine/web/shipper/")
    ]
    assert sorted(kept) == ["a", "b"]


def test_a_stream_delivering_elsewhere_is_a_clear_error(s3: Any, firehose: Any) -> None:
    provision(s3, firehose, "first-lake", {"web": "shared-web"}, "arn:aws:iam::1:role/x")
    with pytest.raises(ValueError, match="shared-web already exists and delivers to"):
        provision(s3, firehose, "second-lake", {"web": "shared-web"}, "arn:aws:iam::1:role/x")
