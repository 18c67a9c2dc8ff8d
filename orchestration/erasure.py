"""Erase one customer's personal data from the lake and the warehouse (`make erase`, the
shoplogs_erase DAG). The rules are lake/erasure.py's; this module reads and rewrites.

Order of work: the register entry first, so a pipeline run started from then on already
leaves the customer out; then every zone of the lake; then the warehouse (dbt's
``erase_customer`` operation); then the audit record. Each S3 object is replaced by one PUT
of its new body (S3 readers see the old object or the new one, never a partial one) and
only when its content changed, so erasing twice rewrites nothing and says so.

    python -m orchestration.erasure --customer C00042 [--requested-by NAME]
"""

from __future__ import annotations

import argparse
import getpass
import gzip
import hashlib
import io
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from lake import layout, zones
from lake.erasure import (
    TOMBSTONE_CUSTOMER_ID,
    AuditRecord,
    Erased,
    Register,
    Row,
    Scrubbed,
    erase_customer_rows,
    erased_of,
    erased_sessions,
    identifier_hash,
    redact_text,
    register_of,
    scrub_firehose_errors,
    scrub_quarantine_object,
    scrub_raw_object,
    scrub_session_rows,
    tombstone_order_rows,
)
from orchestration.settings import Settings, aws_client, log_path

# A customer id as the shop writes it: what `--customer` must look like.
CUSTOMER_ID = re.compile(r"^[A-Za-z0-9._@+-]{1,128}$")
RESERVED_IDS = {TOMBSTONE_CUSTOMER_ID, "-1"}
# Prefixes that hold no customer data (the job's code, the docs site's model descriptions)
# or are the erasure's own (hashes only).
SKIPPED = (layout.ERASURE_REGISTER, layout.AUDIT_ERASURES, "artifacts/", layout.DOCS)
_PARQUET_DATASET = re.compile(
    r"(?:^|/)(processed|state)/(?P<dataset>[^/]+)/dt=[^/]+/[^/]+\.parquet$"
)
_RAW = re.compile(r"^(?:landing|processing/dt=[^/]+/raw)/(?P<stream>[^/]+)/")
# Firehose's error output: JSON documents holding the undelivered records, base64.
_FIREHOSE_ERRORS = re.compile(
    f"^(?:{re.escape(layout.LANDING_ERRORS)}|{re.escape(layout.FIREHOSE_ERRORS)})(?P<stream>[^/]+)/"
)
_QUARANTINE_LINES = re.compile(r"(?:^|/)quarantine/(?!objects/)(?P<stream>[^/]+)/")
_QUARANTINE_OBJECT = "quarantine/objects/"


def check_customer_id(customer_id: str) -> str:
    """The id to erase, or an error naming it and the fix."""
    value = customer_id.strip()
    if not CUSTOMER_ID.match(value) or value in RESERVED_IDS:
        raise ValueError(
            f"--customer {customer_id!r} is not a customer id: give the shop's customer id "
            f"(letters, digits, . _ @ + -; not the reserved members {sorted(RESERVED_IDS)}), "
            "e.g. make erase CUSTOMER=C00042"
        )
    return value


@dataclass
class Lake:
    """The bucket, through a boto3 S3 client."""

    s3: Any
    bucket: str
    keys: list[str] = field(default_factory=list)

    def get(self, key: str) -> tuple[bytes, str]:
        got = self.s3.get_object(Bucket=self.bucket, Key=key)
        return got["Body"].read(), got.get("ContentType") or "binary/octet-stream"

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)


# --- Parquet ------------------------------------------------------------------------------


def _read_rows(body: bytes) -> tuple[Any, list[Row]]:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(body))
    return table.schema, table.to_pylist()


def _write_rows(schema: Any, rows: list[Row]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), out)
    return out.getvalue()


def parquet_keys(lake: Lake, dataset: str) -> Iterator[str]:
    for key in lake.keys:
        match = _PARQUET_DATASET.search(key)
        if match and match["dataset"] == dataset and not key.startswith(SKIPPED):
            yield key


def discover(lake: Lake, customer_hash: str) -> tuple[set[str], set[str]]:
    """The customer's emails and order ids, as the processed zone still holds them."""
    person = frozenset({customer_hash})
    emails: set[str] = set()
    orders: set[str] = set()
    for dataset, column, found in (("customers", "email", emails), ("orders", "order_id", orders)):
        for key in parquet_keys(lake, dataset):
            _, rows = _read_rows(lake.get(key)[0])
            for row in rows:
                cid = row.get("customer_id")
                if isinstance(cid, str) and identifier_hash(cid) in person and row.get(column):
                    found.add(str(row[column]))
    return emails, orders


def tied_sessions(lake: Lake, register: Register) -> tuple[set[str], set[str]]:
    """Sessions (and their visitors) tied to an erased order, over every web file: a session
    that spans midnight has requests in two partitions."""
    sessions: set[str] = set()
    visitors: set[str] = set()
    for key in parquet_keys(lake, "web_requests"):
        _, rows = _read_rows(lake.get(key)[0])
        found = erased_sessions(rows, register)
        sessions |= found
        visitors |= {str(r["visitor_id"]) for r in rows if r.get("session_id") in found}
    return sessions, visitors


def rewrite_parquet(
    lake: Lake, audit: AuditRecord, dataset: str, rewrite: Callable[[list[Row]], list[Row]]
) -> None:
    for key in parquet_keys(lake, dataset):
        body, content_type = lake.get(key)
        schema, rows = _read_rows(body)
        new = rewrite(rows)
        changed = (
            len(rows) - len(new)
            if len(new) != len(rows)
            else sum(a != b for a, b in zip(rows, new, strict=True))
        )
        if changed:
            lake.put(key, _write_rows(schema, new), content_type)
            zone = "processed" if key.startswith(layout.PROCESSED) else key.split("/", 1)[0]
            audit.count(zone, f"{dataset} rows", changed)


# --- text zones ----------------------------------------------------------------------------


def _text(body: bytes) -> tuple[bytes, bool]:
    if body.startswith(b"\x1f\x8b"):
        text, _ = zones.gunzip(body)
        return text, True
    return body, False


def _store(lake: Lake, key: str, result: Scrubbed, was_gzip: bool, content_type: str) -> None:
    if result.body is None:
        lake.delete(key)
    else:
        lake.put(key, gzip.compress(result.body) if was_gzip else result.body, content_type)


def scrub_texts(lake: Lake, audit: AuditRecord, register: Register) -> None:
    """Landing, claimed raw objects, Firehose's undelivered records, quarantine, and any
    other text that quotes the customer (reports, manifests, dbt results, and the Spark and
    EMR logs under ``emr-logs/``, whose identifiers are redacted: the logs stay readable for
    whoever debugs a run, until their lifecycle rule expires them)."""
    for key in lake.keys:
        if key.startswith(SKIPPED) or key.endswith(".parquet") or key.endswith("/"):
            continue
        body, content_type = lake.get(key)
        text, was_gzip = _text(body)
        zone = key.split("/", 1)[0]
        if key.startswith(_QUARANTINE_OBJECT):
            # Set aside whole as unreadable: it cannot be rewritten line by line, so it goes.
            if redact_text(text, register).changed:
                lake.delete(key)
                audit.count("quarantine", "objects deleted", 1)
            continue
        if raw := _RAW.match(key):
            result = scrub_raw_object(text, raw["stream"], register)
            what = "lines"
        elif errors := _FIREHOSE_ERRORS.match(key):
            result = scrub_firehose_errors(text, errors["stream"], register)
            what = "lines"
        elif _QUARANTINE_LINES.search(key):
            result = scrub_quarantine_object(text, register)
            zone, what = "quarantine", "lines"
        else:
            result = redact_text(text, register)
            what = "mentions redacted"
        if result.changed:
            _store(lake, key, result, was_gzip, content_type)
            audit.count(zone, f"{what} dropped" if result.dropped else what, result.dropped)
            audit.count(zone, f"{what} rewritten" if what == "lines" else what, result.rewritten)


def read_register(lake: Lake) -> Register:
    """Every erased customer's hashes, from the register in the bucket."""
    keys = zones.list_keys(lake.s3, lake.bucket, layout.ERASURE_REGISTER)
    return register_of(Erased.from_json(lake.get(key)[0]) for key in keys)


def scrub_claimed(s3: Any, bucket: str, run_date: date) -> dict[str, int]:
    """The raw objects a run just claimed without erased customers' lines (a shipper that
    resent old logs brings them back to landing); log lines dropped per stream.

    Those lines leave the run before the Spark job reads anything, so the run's manifest
    counts them as its own outcome (``erased``, read back by ``claim_erasures``). Each
    rewrite's count is written before the object is replaced, under a key named by the object
    and the body it rewrote: a claim retried after a crash in between redoes the same rewrite
    and writes the same key, and a retry that finds the object done rewrites nothing."""
    lake = Lake(s3, bucket)
    register = read_register(lake)
    if not register:
        return {}
    dropped: dict[str, int] = {}
    for key in zones.list_keys(s3, bucket, layout.raw_prefix(run_date)):
        raw = _RAW.match(key)
        if raw is None or key.endswith("/"):
            continue
        body, content_type = lake.get(key)
        text, was_gzip = _text(body)
        result = scrub_raw_object(text, raw["stream"], register)
        if not result.changed:
            continue
        if result.dropped:
            digest = hashlib.sha256(key.encode() + b"\0" + body).hexdigest()
            count = {"stream": raw["stream"], "lines": result.dropped}
            lake.put(layout.claim_erasure(run_date, digest), json.dumps(count).encode(),
                     "application/json")  # fmt: skip
        _store(lake, key, result, was_gzip, content_type)
        dropped[raw["stream"]] = dropped.get(raw["stream"], 0) + result.dropped
    return {stream: n for stream, n in dropped.items() if n}


def claim_erasures(s3: Any, bucket: str, run_date: date) -> dict[str, int]:
    """Log lines of erased customers the run's claims (every attempt) took out, per stream."""
    erased: dict[str, int] = {}
    for key in zones.list_keys(s3, bucket, layout.claim_erasures_prefix(run_date)):
        count = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        erased[str(count["stream"])] = erased.get(str(count["stream"]), 0) + int(count["lines"])
    return erased


# --- the warehouse -----------------------------------------------------------------------

COUNTS_MARKER = "erasure_counts:"


def erase_in_warehouse(
    settings: Settings, erased: Erased, connection_env: dict[str, str] | None = None
) -> dict[str, int]:
    """dbt's ``erase_customer`` operation; rows changed per table. Only hashes go in its
    arguments, so dbt's logs never hold the identifiers."""
    from orchestration.runners.dbt import run_dbt

    log_file = log_path(settings, "dbt-erase.log")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text("")
    args = {
        "customer_hash": erased.customer,
        "email_hashes": sorted(erased.emails),
        "order_hashes": sorted(erased.orders),
    }
    run_dbt(settings, ["run-operation", "erase_customer", "--args", json.dumps(args)],
            log_file, connection_env)  # fmt: skip
    return warehouse_counts(log_file.read_text())


def warehouse_counts(log: str) -> dict[str, int]:
    """The counts the operation printed (its last ``erasure_counts:`` line)."""
    lines = [ln for ln in log.splitlines() if COUNTS_MARKER in ln]
    if not lines:
        raise RuntimeError("dbt's erase_customer printed no counts; see logs/dbt-erase.log")
    return {str(k): int(v) for k, v in json.loads(lines[-1].split(COUNTS_MARKER, 1)[1]).items()}


# --- the whole erasure ---------------------------------------------------------------------


def erase_customer(
    settings: Settings,
    customer_id: str,
    requested_by: str,
    erased_at: datetime,
    connection_env: dict[str, str] | None = None,
    s3: Any = None,
) -> AuditRecord:
    """Erase ``customer_id`` everywhere; returns (and writes) the audit record."""
    customer_id = check_customer_id(customer_id)
    lake = Lake(s3 or aws_client(settings, "s3"), settings.lake_bucket)
    lake.keys = zones.list_keys(lake.s3, lake.bucket, "")
    customer_hash = identifier_hash(customer_id)
    entry_key = layout.register_entry(customer_hash)
    known = Erased(customer_hash)
    if entry_key in lake.keys:
        known = Erased.from_json(lake.get(entry_key)[0])
    emails, orders = discover(lake, customer_hash)
    erased = known.merged(erased_of(customer_id, emails, orders))
    stamp = erased_at.astimezone(UTC).isoformat(timespec="seconds")
    audit = AuditRecord(customer_hash, requested_by, stamp, already_erased=entry_key in lake.keys)
    lake.put(entry_key, erased.to_json().encode(), "application/json")

    register = register_of([erased])
    sessions, visitors = tied_sessions(lake, register)
    rewrite_parquet(lake, audit, "customers", lambda rows: erase_customer_rows(rows, register))
    rewrite_parquet(lake, audit, "orders", lambda rows: tombstone_order_rows(rows, register))
    rewrite_parquet(lake, audit, "web_requests", lambda rows: scrub_session_rows(rows, sessions))
    rewrite_parquet(
        lake, audit, "web_sessions",
        lambda rows: [r for r in rows if r.get("visitor_id") not in visitors],
    )  # fmt: skip
    scrub_texts(lake, audit, register)
    for table, n in erase_in_warehouse(settings, erased, connection_env).items():
        audit.count("warehouse", table, n)
    key = layout.erasure_audit(customer_hash, stamp)
    lake.put(key, json.dumps(audit.to_dict(), indent=2).encode(), "application/json")
    return audit


def main(argv: list[str] | None = None) -> int:
    from orchestration.settings import load_settings

    parser = argparse.ArgumentParser(description="Erase one customer's personal data.")
    parser.add_argument("--customer", required=True, help="the shop's customer id")
    parser.add_argument("--requested-by", default=getpass.getuser(), help="who asked (audit)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        check_customer_id(args.customer)
    except ValueError as exc:
        parser.error(str(exc))
    audit = erase_customer(load_settings(), args.customer, args.requested_by, datetime.now(UTC))
    print(json.dumps(audit.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
