"""Erasure of one customer's personal data: which lines and rows are theirs, and how each
is rewritten. Pure functions; the S3 and warehouse edges are in ``orchestration/erasure.py``.

An erased customer is known only by hashes: SHA-256 (hex, unkeyed) of the trimmed,
lower-cased customer id, of each email address they used and of each of their order ids.
The erasure register (``layout.ERASURE_REGISTER``) keeps one object per customer holding
those hashes, and the Spark job consults it, so a re-run of any past date, or a resend of
the shop's logs, cannot bring the customer back. A line or value matches when one of its
tokens (a run of the characters ids and emails are made of, ``TOKEN``) hashes to a
registered hash: matching never needs the identifier in clear.

Unkeyed on purpose: the warehouses and Spark compute the same hash with built-in SQL
(``sha2``/``sha256``), and a keyed one would need the key in every engine. The price is that
a guessable id (the shop's ids are sequential) can be confirmed by hashing guesses; the
register and audit records therefore sit under a prefix only the pipeline's roles read.

Standard library only: the Spark job imports this module on EMR.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lake import wire

# What an order keeps in place of the erased customer's id: one shared member, so no
# erased customer stays singled out by a key of their own. dbt's `erased_customer_key` var
# (dbt_project/dbt_project.yml) names the same member of dim_customers.
TOMBSTONE_CUSTOMER_ID = "-2"
# visitor_id of a web session tied to an erased customer's order.
TOMBSTONE_VISITOR_ID = "erased"
# What a free-text field (a report, a dbt result) shows where an identifier was.
REDACTED = "[erased]"

# Ids and emails are made of these characters; anything else separates tokens. The same
# class is used as a Java regex by the Spark job (spark/preprocess/erasure.py).
TOKEN_CHARS = "A-Za-z0-9@._+-"
TOKEN = re.compile(f"[{TOKEN_CHARS}]+")
# Web request columns that identify a visitor (blanked in sessions tied to erased orders).
WEB_IDENTIFYING_COLUMNS = ("client_ip", "user_agent", "remote_user", "forwarded_for")

KINDS = ("customer_id", "email", "order_id")


def identifier_hash(value: str) -> str:
    """The register's hash of an identifier: SHA-256 hex of it trimmed and lower-cased."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()


@dataclass(frozen=True)
class Erased:
    """The hashes of one erased customer's identifiers, by kind."""

    customer: str  # identifier_hash of the customer id
    emails: frozenset[str] = frozenset()
    orders: frozenset[str] = frozenset()

    @property
    def person(self) -> frozenset[str]:
        """Hashes that identify the person: a line carrying one is theirs."""
        return frozenset({self.customer}) | self.emails

    def merged(self, other: Erased) -> Erased:
        return Erased(self.customer, self.emails | other.emails, self.orders | other.orders)

    def to_json(self) -> str:
        return json.dumps(
            {"customer_id": self.customer, "email": sorted(self.emails),
             "order_id": sorted(self.orders)},
            sort_keys=True,
        )  # fmt: skip

    @classmethod
    def from_json(cls, text: str | bytes) -> Erased:
        raw = json.loads(text)
        return cls(raw["customer_id"], frozenset(raw["email"]), frozenset(raw["order_id"]))


def erased_of(customer_id: str, emails: Iterable[str] = (), orders: Iterable[str] = ()) -> Erased:
    return Erased(
        identifier_hash(customer_id),
        frozenset(identifier_hash(e) for e in emails if e),
        frozenset(identifier_hash(o) for o in orders if o),
    )


@dataclass(frozen=True)
class Register:
    """Every erased customer's hashes, merged: what a run checks its lines against."""

    person: frozenset[str] = frozenset()
    orders: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.person or self.orders)


def register_of(entries: Iterable[Erased]) -> Register:
    person: set[str] = set()
    orders: set[str] = set()
    for entry in entries:
        person |= entry.person
        orders |= entry.orders
    return Register(frozenset(person), frozenset(orders))


def matched_tokens(text: str, hashes: frozenset[str]) -> set[str]:
    """The tokens of ``text`` whose hash is among ``hashes`` (as written in the text)."""
    if not hashes:
        return set()
    return {t for t in set(TOKEN.findall(text)) if identifier_hash(t) in hashes}


def replace_tokens(text: str, tokens: Iterable[str], replacement: str) -> str:
    """``text`` with each whole token in ``tokens`` replaced (never part of a longer one)."""
    for token in sorted(tokens, key=len, reverse=True):
        pattern = f"(?<![{TOKEN_CHARS}]){re.escape(token)}(?![{TOKEN_CHARS}])"
        text = re.sub(pattern, replacement.replace("\\", r"\\"), text)
    return text


# --- lines of the raw zones (landing, processing/raw) --------------------------------------

# How a stream's line that names an erased person is rewritten: a profile line goes, an order
# line keeps its money under the tombstone id, any other line has the identifier replaced.
DROP_LINE = {"customers": True, "orders": False, "web": False}


def scrub_line(line: str, stream: str, register: Register) -> str | None:
    """A raw log line without the erased: None to drop it, else the line (rewritten)."""
    found = matched_tokens(line, register.person)
    if not found:
        return line
    if DROP_LINE.get(stream, True):
        return None
    replacement = TOMBSTONE_CUSTOMER_ID if stream == "orders" else REDACTED
    return replace_tokens(line, found, replacement)


def scrub_delivered(delivered: bytes, stream: str, register: Register) -> bytes | None:
    """One delivered line (a shipper record of lines, or a bare line) without the erased;
    None when none of its lines is left."""
    return scrub_record(delivered, stream, register).body


@dataclass
class Scrubbed:
    """A text object (or one delivered record) after scrubbing: its new body (None: delete
    it) and the log lines touched. A shipper record holds many log lines: the counts are of
    those lines, the unit every run's counts reconcile in."""

    body: bytes | None
    dropped: int = 0
    rewritten: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.dropped or self.rewritten)


def scrub_record(delivered: bytes, stream: str, register: Register) -> Scrubbed:
    """``scrub_delivered`` with the log lines it dropped and rewrote."""
    lines = wire.lines_of(delivered)
    kept: list[bytes] = []
    rewritten = 0
    for line in lines:
        scrubbed = scrub_line(line.decode("utf-8", "surrogateescape"), stream, register)
        if scrubbed is not None:
            kept.append(scrubbed.encode("utf-8", "surrogateescape"))
            rewritten += kept[-1] != line
    dropped = len(lines) - len(kept)
    if not dropped and not rewritten:
        return Scrubbed(delivered)
    if not kept:
        return Scrubbed(None, dropped=dropped)
    if not delivered.startswith(wire.RECORD_MAGIC):
        return Scrubbed(kept[0], dropped, rewritten)
    header = delivered.partition(wire.SEPARATOR)[0].rsplit(b" ", 1)[0]
    body = header + b" %d" % len(kept) + wire.SEPARATOR + wire.SEPARATOR.join(kept)
    return Scrubbed(body, dropped, rewritten)


def scrub_raw_object(text: bytes, stream: str, register: Register) -> Scrubbed:
    """A landing or claimed raw object's text (newline-separated delivered lines)."""
    out: list[bytes] = []
    result = Scrubbed(None)
    for delivered in text.split(b"\n"):
        scrubbed = scrub_record(delivered, stream, register)
        result.dropped += scrubbed.dropped
        result.rewritten += scrubbed.rewritten
        if scrubbed.body is not None:
            out.append(scrubbed.body)
    result.body = b"\n".join(out) if any(out) else None
    return result


def scrub_quarantine_object(text: bytes, register: Register) -> Scrubbed:
    """A quarantine JSON-lines object: a bad line naming the erased person goes whole (it
    holds no revenue to keep, and its reason and detail may quote it)."""
    out: list[bytes] = []
    result = Scrubbed(None)
    for line in text.splitlines():
        if matched_tokens(line.decode("utf-8", "replace"), register.person):
            result.dropped += 1
        else:
            out.append(line)
    result.body = b"".join(line + b"\n" for line in out) if out else None
    return result


_SPACE = re.compile(r"\s*")


def _firehose_documents(text: str) -> list[Any]:
    """The JSON documents of a Firehose error object, in order (one per failed record,
    newline-separated or not); a stretch that is no JSON document stays text, line by line."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    at = 0
    while (at := _SPACE.match(text, at).end()) < len(text):  # type: ignore[union-attr]
        try:
            document, at = decoder.raw_decode(text, at)
        except ValueError:
            end = text.find("\n", at)
            end = len(text) if end < 0 else end
            found.append(text[at:end])
            at = end
            continue
        found.append(document)
    return found


def scrub_firehose_error(document: Any, stream: str, register: Register) -> Scrubbed:
    """One document of Firehose's error output: a JSON object whose ``rawData`` is the
    record it could not deliver, base64 (AWS: "Handling errors for data format
    conversion"), or a bare line. The record is scrubbed as a landing one (``scrub_record``
    rules: a profile line goes, an order line is tombstoned); a document left with no line
    goes whole; its other fields (an error message may quote the data) are redacted."""
    if not (isinstance(document, dict) and isinstance(document.get("rawData"), str)):
        line = document if isinstance(document, str) else json.dumps(document)
        return scrub_raw_object(line.encode("utf-8", "surrogateescape"), stream, register)
    try:
        record = base64.b64decode(document["rawData"], validate=True)
    except ValueError:
        record = b""
    result = scrub_raw_object(record, stream, register)
    if record and result.body is None:
        return result
    kept = {**document, "rawData": base64.b64encode(result.body or b"").decode()}
    if not result.changed:
        kept = document
    rest = redact_text(json.dumps(kept).encode(), register)
    return Scrubbed(rest.body, result.dropped, result.rewritten + rest.rewritten)


def scrub_firehose_errors(text: bytes, stream: str, register: Register) -> Scrubbed:
    """A Firehose error output object of ``stream``, document by document."""
    out: list[bytes] = []
    result = Scrubbed(None)
    for document in _firehose_documents(text.decode("utf-8", "surrogateescape")):
        scrubbed = scrub_firehose_error(document, stream, register)
        result.dropped += scrubbed.dropped
        result.rewritten += scrubbed.rewritten
        if scrubbed.body is not None:
            out.append(scrubbed.body)
    result.body = b"".join(body + b"\n" for body in out) if out else None
    return result


def redact_text(text: bytes, register: Register) -> Scrubbed:
    """Any other text object (a run report, dbt results): identifiers become REDACTED."""
    decoded = text.decode("utf-8", "surrogateescape")
    found = matched_tokens(decoded, register.person)
    if not found:
        return Scrubbed(text)
    body = replace_tokens(decoded, found, REDACTED).encode("utf-8", "surrogateescape")
    return Scrubbed(body, rewritten=len(found))


# --- rows of the processed and state zones ----------------------------------------------

Row = dict[str, Any]


def _matches(value: Any, hashes: frozenset[str]) -> bool:
    return isinstance(value, str) and bool(value) and identifier_hash(value) in hashes


def erase_customer_rows(rows: list[Row], register: Register) -> list[Row]:
    """processed/customers: the erased person's profile rows go."""
    return [
        row for row in rows
        if not (_matches(row.get("customer_id"), register.person)
                or _matches(row.get("email"), register.person))
    ]  # fmt: skip


def tombstone_order_rows(rows: list[Row], register: Register) -> list[Row]:
    """processed/orders: the erased customer's orders stay, under the tombstone id."""
    return [
        {**row, "customer_id": TOMBSTONE_CUSTOMER_ID}
        if _matches(row.get("customer_id"), register.person) else row
        for row in rows
    ]  # fmt: skip


def erased_sessions(rows: list[Row], register: Register) -> set[str]:
    """The web sessions tied to an erased customer's order: a request whose path names one
    of their order ids (the confirmation page, docs/data-contract.md)."""
    return {
        str(row["session_id"]) for row in rows
        if row.get("session_id") and matched_tokens(str(row.get("path") or ""), register.orders)
    }  # fmt: skip


def scrub_session_rows(rows: list[Row], sessions: set[str]) -> list[Row]:
    """processed/web_requests: the requests of those sessions keep their counts and pages,
    without what identifies the visitor."""
    blank: Row = {column: None for column in WEB_IDENTIFYING_COLUMNS}
    return [
        {**row, **{k: v for k, v in blank.items() if k in row},
         "visitor_id": TOMBSTONE_VISITOR_ID}
        if row.get("session_id") in sessions else row
        for row in rows
    ]  # fmt: skip


@dataclass
class AuditRecord:
    """What one erasure did, for the lake's ``audit/erasures/``: who asked, when, and how
    many lines, rows and objects each zone and table lost, never the identifiers in clear."""

    customer_hash: str
    requested_by: str
    erased_at: str  # ISO-8601, UTC
    hash_algorithm: str = "sha256(lower(trim(id))), unkeyed"
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # zone -> what -> n
    already_erased: bool = False

    @property
    def nothing_left(self) -> bool:
        """True when the erasure found nothing to remove: a repeat of one already done."""
        return not any(n for by in self.counts.values() for n in by.values())

    def count(self, zone: str, what: str, n: int) -> None:
        if n:
            by = self.counts.setdefault(zone, {})
            by[what] = by.get(what, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_hash": self.customer_hash,
            "hash_algorithm": self.hash_algorithm,
            "requested_by": self.requested_by,
            "erased_at": self.erased_at,
            "already_erased": self.already_erased,
            "nothing_left_to_remove": self.nothing_left,
            "counts": {zone: dict(sorted(by.items())) for zone, by in sorted(self.counts.items())},
        }
