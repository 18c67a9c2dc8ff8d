"""Move data through the lake's zones in S3 (the keys come from ``lake.layout``).

Claiming takes the landing objects that arrived on or before a run's logical date into that
run's processing prefix; screening sets aside objects no line can be read from; promotion
publishes the Spark output to ``processed/`` and ``quarantine/``. A run owns everything under
its ``dt=<run>`` prefixes and replaces them whole, so running the same logical date again
gives the same processed partitions.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
import zlib
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from lake import layout, wire
from lake.stats import RunStats, parse_stream_stats_line

CLAIM_TTL = 6 * 60 * 60.0  # longer than any healthy run
RUN_LOCK_TTL = CLAIM_TTL
GZIP_MAGIC = b"\x1f\x8b"
# A line holding any of these bytes is binary: the same class as the Spark job's
# binary_content check (spark/preprocess/common.py), which quarantines such lines one by one.
BINARY_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1f]")
# S3 answers 409 ConditionalRequestConflict when two conditional writes of one key overlap;
# the write did not happen and may simply be sent again.
CONFLICT_ATTEMPTS = 6
CONFLICT_BACKOFF = 0.05  # seconds, doubled each attempt, with full jitter

T = TypeVar("T")


class RunLocked(RuntimeError):
    """Another run holds the run date's lock."""


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def retry_conflicts(
    write: Callable[[], T], sleep: Callable[[float], None] = time.sleep,
    attempts: int = CONFLICT_ATTEMPTS,
) -> T:  # fmt: skip
    """Run a conditional S3 write, sending it again (bounded, jittered backoff) while S3
    reports a conflicting concurrent write; any other outcome is the caller's to judge."""
    for attempt in range(attempts):
        try:
            return write()
        except Exception as exc:
            if _error_code(exc) != "ConditionalRequestConflict" or attempt == attempts - 1:
                raise
            sleep(random.uniform(0, CONFLICT_BACKOFF * 2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    paginator = s3.get_paginator("list_objects_v2")
    keys: list[str] = []
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return sorted(keys)


def claimable(keys: list[str], run_date: date) -> list[str]:
    """Landing objects that arrived on or before the run's logical date.

    Later arrivals belong to a later run and stay in landing for it.
    """
    return [
        k for k in keys if (arrived := layout.arrival_date(k)) is not None and arrived <= run_date
    ]


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] in {"404", "NoSuchKey", "NotFound"}:
            return False
        raise
    return True


def _take_claim(
    s3: Any, bucket: str, key: str, run_date: date, now: float, ttl: float
) -> tuple[bool, date | None]:
    """Write the object's claim marker, atomically (S3 conditional writes).

    Returns (taken, previous owner): a live claim of another run is respected; an expired
    one (a run that crashed) is taken over, and its owner returned so the caller can see
    whether that run had already copied the object.
    """
    marker = layout.claim_marker(key)
    body = json.dumps({"run_date": run_date.isoformat(), "claimed_at": now})
    try:
        retry_conflicts(lambda: s3.put_object(Bucket=bucket, Key=marker, Body=body,
                                              IfNoneMatch="*"))  # fmt: skip
        return True, None
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] != "PreconditionFailed":
            raise
    try:
        current = s3.get_object(Bucket=bucket, Key=marker)
    except s3.exceptions.NoSuchKey:
        return False, None  # its run just finished moving the object
    held = json.loads(current["Body"].read())
    owner = date.fromisoformat(held["run_date"])
    if owner == run_date:
        return True, None  # a retry of the same run
    if held["claimed_at"] + ttl > now:
        return False, owner  # another run is working on it
    try:
        retry_conflicts(lambda: s3.put_object(Bucket=bucket, Key=marker, Body=body,
                                              IfMatch=current["ETag"]))  # fmt: skip
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] != "PreconditionFailed":
            raise
        return False, owner  # another run took it over first
    return True, owner


def _lock_held(s3: Any, bucket: str, run_date: date) -> tuple[dict[str, Any], str] | None:
    """(lock body, ETag) of the run date's lock, or None when no run holds it."""
    try:
        current = s3.get_object(Bucket=bucket, Key=layout.run_lock(run_date))
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(current["Body"].read()), current["ETag"]


def _locked_error(bucket: str, run_date: date, held: dict[str, Any], ttl: float) -> RunLocked:
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(held["taken_at"]))
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(held["taken_at"] + ttl))
    where = layout.uri(bucket, layout.run_lock(run_date))
    return RunLocked(
        f"run date {run_date} is being processed by run {held['owner']!r} (since {since}); "
        "two runs of one date would overwrite each other's Spark output and promotion. "
        f"Wait for that run to finish; if it died, delete {where} or wait until {until}."
    )


def _put_lock(s3: Any, bucket: str, run_date: date, body: str, etag: str | None) -> bool:
    """Write the lock if nobody holds it (etag None) or it is still as read; False if not."""
    condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
    key = layout.run_lock(run_date)
    try:
        retry_conflicts(lambda: s3.put_object(Bucket=bucket, Key=key, Body=body, **condition))
    except s3.exceptions.ClientError as exc:
        if _error_code(exc) != "PreconditionFailed":
            raise
        return False
    return True


def lock_run(
    s3: Any, bucket: str, run_date: date, owner: str,
    now: float | None = None, ttl: float = RUN_LOCK_TTL,
) -> None:  # fmt: skip
    """Make ``owner`` the one run that processes ``run_date`` until it is promoted.

    Taken with S3 conditional writes, so of two runs started at once exactly one gets it;
    the other fails with RunLocked, naming the holder. The same owner taking it again (a
    retried task) keeps it; a lock older than ``ttl`` belongs to a run that died and is
    taken over.
    """
    now = time.time() if now is None else now
    body = json.dumps({"owner": owner, "taken_at": now})
    for _ in range(CONFLICT_ATTEMPTS):
        found = _lock_held(s3, bucket, run_date)
        if found is None:
            if _put_lock(s3, bucket, run_date, body, None):
                return
            continue  # another run took it between our read and write: read it again
        held, etag = found
        if held["owner"] != owner and held["taken_at"] + ttl > now:
            raise _locked_error(bucket, run_date, held, ttl)
        if _put_lock(s3, bucket, run_date, body, etag):
            return
    raise RunLocked(f"run date {run_date}: the lock kept changing hands; start the run again")


def check_run_lock(s3: Any, bucket: str, run_date: date, owner: str) -> None:
    """Fail unless ``owner`` still holds the run date's lock (before it publishes)."""
    found = _lock_held(s3, bucket, run_date)
    if found is None or found[0]["owner"] != owner:
        holder = found[0]["owner"] if found else "no run"
        raise RunLocked(
            f"run {owner!r} no longer holds the lock of run date {run_date} ({holder} does): "
            "it expired or was taken over, so its output may be overwritten; "
            "run the date again from the claim task"
        )


def release_run(s3: Any, bucket: str, run_date: date, owner: str) -> None:
    """Give up the run date's lock, if ``owner`` holds it."""
    found = _lock_held(s3, bucket, run_date)
    if found is not None and found[0]["owner"] == owner:
        s3.delete_object(Bucket=bucket, Key=layout.run_lock(run_date))


def claim(
    s3: Any, bucket: str, run_date: date, now: float | None = None, ttl: float = CLAIM_TTL
) -> list[str]:
    """Move claimable landing objects into this run's processing prefix.

    Each object is claimed with a conditional write first, so two runs started at once
    never take the same object; a claim older than ``ttl`` seconds belongs to a run that
    died and is taken again. Copy before delete: a crash in between leaves the object in
    both places, and the next attempt finds it. Returns every raw object the run owns,
    including ones claimed by an earlier attempt.
    """
    now = time.time() if now is None else now
    for marker in list_keys(s3, bucket, layout.CLAIMS):
        # A run killed after moving its object leaves the marker behind: the object is
        # gone from landing, so the claim has nothing left to guard.
        if not _exists(s3, bucket, layout.claimed_object(marker)):
            s3.delete_object(Bucket=bucket, Key=marker)
    for key in claimable(list_keys(s3, bucket, layout.LANDING), run_date):
        taken, previous = _take_claim(s3, bucket, key, run_date, now, ttl)
        if not taken:
            continue
        if not _exists(s3, bucket, key):  # another run moved it between our list and claim
            s3.delete_object(Bucket=bucket, Key=layout.claim_marker(key))
            continue
        already = previous and _exists(s3, bucket, layout.raw_key(previous, key))
        if not already:  # else the crashed run copied it: it is that run's to process
            target = layout.raw_key(run_date, key)
            s3.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": key})
        s3.delete_object(Bucket=bucket, Key=key)
        s3.delete_object(Bucket=bucket, Key=layout.claim_marker(key))
    return list_keys(s3, bucket, layout.raw_prefix(run_date))


def gunzip(body: bytes) -> tuple[bytes, bool]:
    """The text of a gzip object (every member) and whether it was complete; a cut or
    corrupt object yields what could be read before the fault."""
    parts: list[bytes] = []
    rest = body
    while rest:
        unzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            parts.append(unzip.decompress(rest))
        except zlib.error:
            return b"".join(parts), False
        if not unzip.eof:
            return b"".join(parts), False
        rest = unzip.unused_data.lstrip(b"\x00")  # some writers pad members with zeros
    return b"".join(parts), True


def readable_lines(text: bytes) -> int:
    """Complete lines without control bytes, the ones the Spark job can judge on content."""
    return sum(
        1
        for delivered in text.split(b"\n")
        for line in wire.lines_of(delivered)
        if line.strip() and not BINARY_BYTES.search(line)
    )


def object_problem(body: bytes) -> str | None:
    """Why no line of this object can be read, or None when any line can.

    Judged per line over the whole object: a Firehose object carries lines of many hosts,
    and binary lines among good ones are quarantined one by one by the Spark job. Only an
    object that cannot be decompressed to its end, or holds no line without control bytes,
    is set aside whole, before Spark, so it cannot fail the run for everyone.
    """
    if body.startswith(GZIP_MAGIC):
        body, complete = gunzip(body)
        if not complete:
            return "truncated_gzip"
    if body.strip() and readable_lines(body) == 0:
        return "binary_content"
    return None


def _set_aside_reason(problem: str, key: str, body: bytes) -> dict[str, Any]:
    fix = "re-send the source file"
    reason: dict[str, Any] = {"reason": problem, "claimed_as": key, "fix": fix}
    if problem == "truncated_gzip":
        # Not salvaged into the run: the fix re-sends the whole file, and lines taken from
        # the cut object as well would then arrive twice. The count tells what it held.
        text, _ = gunzip(body)
        complete = text[: text.rfind(b"\n") + 1]
        reason["readable_lines_before_cut"] = readable_lines(complete)
    return reason


def screen(s3: Any, bucket: str, run_date: date) -> dict[str, str]:
    """Move the run's unreadable raw objects to quarantine; return {original key: reason}."""
    moved: dict[str, str] = {}
    for key in list_keys(s3, bucket, layout.raw_prefix(run_date)):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        problem = object_problem(body)
        if problem is None:
            if body.startswith(GZIP_MAGIC) and not key.endswith(".gz"):
                # Spark picks the codec by extension: name compressed objects for it.
                s3.copy_object(Bucket=bucket, Key=key + ".gz",
                               CopySource={"Bucket": bucket, "Key": key})  # fmt: skip
                s3.delete_object(Bucket=bucket, Key=key)
            continue
        target = layout.quarantined_object(run_date, key)
        s3.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": key})
        reason = _set_aside_reason(problem, key, body)
        s3.put_object(Bucket=bucket, Key=target + ".reason.json", Body=json.dumps(reason))
        s3.delete_object(Bucket=bucket, Key=key)
        moved[key] = problem
    return moved


def set_aside_objects(s3: Any, bucket: str, run_date: date) -> dict[str, str]:
    """{quarantined object: reason} for the run, as ``screen`` left them (any attempt)."""
    prefix = layout.quarantined_objects_prefix(run_date)
    return {
        key.removesuffix(".reason.json"): json.loads(
            s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        )["reason"]
        for key in list_keys(s3, bucket, prefix)
        if key.endswith(".reason.json")
    }


def _data_files(keys: list[str]) -> list[str]:
    """Drop Spark's _SUCCESS markers and .crc checksums."""
    return [k for k in keys if not k.rsplit("/", 1)[-1].startswith(("_", "."))]


def _replace_prefix(s3: Any, bucket: str, source: str, target: str) -> list[str]:
    """Make ``target`` hold exactly the data files under ``source``.

    S3 has no rename, so the new files are copied in first, under their final names, and
    only then are the stale ones deleted: a reader (or a crash) in between finds the old
    files and the new ones, never an empty partition, and a re-run finishes the job. Spark
    names its files uniquely per write, so a new file never overwrites an old one in place.
    """
    stale = set(list_keys(s3, bucket, target))
    written = []
    for key in _data_files(list_keys(s3, bucket, source)):
        dest = target + key.removeprefix(source)
        s3.copy_object(Bucket=bucket, Key=dest, CopySource={"Bucket": bucket, "Key": key})
        written.append(dest)
    for key in sorted(stale - set(written)):
        s3.delete_object(Bucket=bucket, Key=key)
    return written


def promote(s3: Any, bucket: str, run_date: date) -> list[str]:
    """Publish the run's Spark output to processed/ and quarantine/, replacing its dt.

    Called only after the Spark job succeeded; until then processed/ still holds the last
    good output for this date, and while it runs each partition holds the old files, then
    old and new, then the new ones.
    """
    output = layout.output_prefix(run_date)
    written = list_keys(s3, bucket, output)
    published: list[str] = []
    for target in layout.run_partitions(run_date):
        source = output + target
        if any(key.startswith(source) for key in written):
            published += _replace_prefix(s3, bucket, source, target)
    return published


def read_stats(s3: Any, bucket: str, run_date: date) -> RunStats:
    """The counts the Spark job wrote next to its output, one file per stream."""
    prefix = layout.output_prefix(run_date) + layout.stats_prefix(run_date)
    streams = dict(
        parse_stream_stats_line(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
        for key in list_keys(s3, bucket, prefix)
        if key.rsplit("/", 1)[-1].startswith("part-")
    )
    if not streams:
        raise FileNotFoundError(
            f"no Spark stats under {layout.uri(bucket, prefix)}; did the Spark step finish?"
        )
    return RunStats(run_date.isoformat(), streams)


def quarantine_lines(
    s3: Any, bucket: str, stream: str, name: str, reason: str, lines: list[bytes]
) -> str | None:
    """Put lines the shipper could not send (e.g. over the record limit) in quarantine.

    The key carries a hash of the lines: two files of the same name never overwrite each
    other's rejects, and sending the same lines again rewrites the same object.
    """
    if not lines:
        return None
    digest = hashlib.sha256(b"".join(lines)).hexdigest()[:16]
    key = layout.shipper_rejects(stream, name, digest)
    rows = [
        json.dumps(
            {
                "stream": stream,
                "reason": reason,
                "detail": f"{len(line)} bytes",
                "raw_line": line.decode("utf-8", "replace").rstrip("\n"),
            }
        )
        for line in lines
    ]
    s3.put_object(Bucket=bucket, Key=key, Body=("\n".join(rows) + "\n").encode())
    return key
