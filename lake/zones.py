"""Move data through the lake's zones in S3 (the keys come from ``lake.layout``).

Claiming takes the landing objects that arrived on or before a run's logical date into that
run's processing prefix; screening sets aside objects no line can be read from; promotion
publishes the Spark output to ``processed/`` and ``quarantine/``. A run owns everything under
its ``dt=<run>`` prefixes and replaces them whole, so running the same logical date again
gives the same processed partitions.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import time
import zlib
from datetime import date
from typing import Any

from lake import layout
from lake.stats import RunStats, parse_stream_stats_line

CLAIM_TTL = 6 * 60 * 60.0  # longer than any healthy run
GZIP_MAGIC = b"\x1f\x8b"
SNIFF_BYTES = 64 * 1024


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
        s3.put_object(Bucket=bucket, Key=marker, Body=body, IfNoneMatch="*")
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
        s3.put_object(Bucket=bucket, Key=marker, Body=body, IfMatch=current["ETag"])
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] != "PreconditionFailed":
            raise
        return False, owner  # another run took it over first
    return True, owner


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


def object_problem(body: bytes) -> str | None:
    """Why no line of this object can be read, or None when it is fine.

    Whole-object faults are caught here, before Spark, so one bad object sends itself to
    quarantine instead of failing the run for everyone.
    """
    if body.startswith(GZIP_MAGIC):
        try:
            body = gzip.decompress(body)
        except (EOFError, OSError, zlib.error):
            return "truncated_gzip"
    sniff = body[:SNIFF_BYTES]
    # Objects hold many shipped lines: a few binary lines are judged line by line later;
    # an object that is mostly control bytes is not a log at all.
    control = sum(sniff.count(bytes([c])) for c in range(32) if c not in (9, 10, 13))
    if sniff and control / len(sniff) > 0.3:
        return "binary_content"
    return None


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
        reason = {"reason": problem, "claimed_as": key, "fix": "re-send the source file"}
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


def _replace_prefix(s3: Any, bucket: str, source: str, target: str) -> list[str]:
    """Make ``target`` hold exactly the data files under ``source``."""
    for stale in list_keys(s3, bucket, target):
        s3.delete_object(Bucket=bucket, Key=stale)
    written = []
    for key in list_keys(s3, bucket, source):
        name = key.rsplit("/", 1)[-1]
        if name.startswith(("_", ".")):  # _SUCCESS markers and .crc checksums
            continue
        dest = target + key.removeprefix(source)
        s3.copy_object(Bucket=bucket, Key=dest, CopySource={"Bucket": bucket, "Key": key})
        written.append(dest)
    return written


def promote(s3: Any, bucket: str, run_date: date) -> list[str]:
    """Publish the run's Spark output to processed/ and quarantine/, replacing its dt.

    Called only after the Spark job succeeded; until then processed/ still holds the last
    good output for this date.
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
