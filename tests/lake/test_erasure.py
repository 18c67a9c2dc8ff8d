"""The erasure rules on tiny inputs: which lines and rows are the customer's, and what each
becomes."""

from __future__ import annotations

import base64
import json

from lake import wire
from lake.erasure import (
    REDACTED,
    TOMBSTONE_CUSTOMER_ID,
    erase_customer_rows,
    erased_of,
    erased_sessions,
    identifier_hash,
    register_of,
    scrub_delivered,
    scrub_firehose_errors,
    scrub_quarantine_object,
    scrub_raw_object,
    scrub_session_rows,
    tombstone_order_rows,
)

REGISTER = register_of([erased_of("C0007", ["Ann@Example.com"], ["O0042"])])


def test_the_hash_ignores_case_and_surrounding_space() -> None:
    assert identifier_hash(" ann@example.com ") == identifier_hash("ANN@example.com")


def test_a_profile_line_goes_an_order_line_keeps_its_money_under_the_tombstone() -> None:
    text = (
        b"e1,signup,2026-11-01T10:00:00Z,C0007,ann@example.com,Ann,Lee,DE,Berlin\n"
        b"e2,signup,2026-11-01T10:00:00Z,C00071,bob@example.com,Bob,Ng,DE,Berlin\n"
    )
    scrubbed = scrub_raw_object(text, "customers", REGISTER)
    assert scrubbed.body == text.splitlines(keepends=True)[1]
    assert scrubbed.dropped == 1
    order = b'{"order_id": "O0042", "customer_id": "C0007", "total": "12.50"}'
    rewritten = scrub_raw_object(order, "orders", REGISTER)
    assert rewritten.body == order.replace(b"C0007", TOMBSTONE_CUSTOMER_ID.encode())
    assert rewritten.rewritten == 1 and rewritten.dropped == 0


def test_a_shipper_record_loses_only_the_customers_lines_and_says_how_many_remain() -> None:
    lines = [b"e1,signup,t,C0007,a,b,c,DE,x", b"e2,signup,t,C0008,a,b,c,DE,x"]
    record = wire.RECORD_MAGIC + b"host fp 0 2" + wire.SEPARATOR + wire.SEPARATOR.join(lines)
    kept = scrub_delivered(record, "customers", REGISTER)
    assert kept is not None and wire.lines_of(kept) == [lines[1]]
    assert kept.partition(wire.SEPARATOR)[0].endswith(b" 1")
    # Counted in log lines, the unit a run reconciles in, not in records.
    two = (
        wire.RECORD_MAGIC
        + b"host fp 0 3"
        + wire.SEPARATOR
        + wire.SEPARATOR.join([lines[0], lines[0].replace(b"e1", b"e9"), lines[1]])
    )
    scrubbed = scrub_raw_object(record + b"\n" + two + b"\n", "customers", REGISTER)
    assert (scrubbed.dropped, scrubbed.rewritten) == (3, 0)


def test_quarantine_lines_naming_the_customer_go_others_stay() -> None:
    text = b'{"raw_line": "x,C0007,broken"}\n{"raw_line": "y,C0008,broken"}\n'
    scrubbed = scrub_quarantine_object(text, REGISTER)
    assert scrubbed.body == b'{"raw_line": "y,C0008,broken"}\n' and scrubbed.dropped == 1


def test_rows_of_the_processed_zone() -> None:
    customers = [
        {"customer_id": "C0007", "email": "x"},
        {"customer_id": "C9", "email": "ann@example.com"},
        {"customer_id": "C8", "email": "c@d"},
    ]
    assert erase_customer_rows(customers, REGISTER) == [customers[2]]
    orders = [
        {"order_id": "O0042", "customer_id": "C0007"},
        {"order_id": "O1", "customer_id": "C8"},
    ]
    assert tombstone_order_rows(orders, REGISTER) == [
        {"order_id": "O0042", "customer_id": TOMBSTONE_CUSTOMER_ID}, orders[1]
    ]  # fmt: skip
    web = [
        {"session_id": "s1", "visitor_id": "v1", "client_ip": "1.2.3.4", "user_agent": "UA",
         "path": "/checkout/confirmation?order_id=O0042"},
        {"session_id": "s1", "visitor_id": "v1", "client_ip": "1.2.3.4", "user_agent": "UA",
         "path": "/"},
        {"session_id": "s2", "visitor_id": "v2", "client_ip": "5.6.7.8", "user_agent": "UA",
         "path": "/checkout/confirmation?order_id=O00421"},
    ]  # fmt: skip
    sessions = erased_sessions(web, REGISTER)
    assert sessions == {"s1"}
    scrubbed = scrub_session_rows(web, sessions)
    assert [(r["visitor_id"], r["client_ip"], r["path"]) for r in scrubbed] == [
        ("erased", None, web[0]["path"]), ("erased", None, "/"), ("v2", "5.6.7.8", web[2]["path"])
    ]  # fmt: skip


def test_other_text_has_the_identifiers_redacted() -> None:
    from lake.erasure import redact_text

    scrubbed = redact_text(b"<td>ann@example.com</td>", REGISTER)
    assert scrubbed.body == f"<td>{REDACTED}</td>".encode() and scrubbed.changed


def firehose_error(record: bytes) -> dict:
    """One document of Firehose's error output (AWS's schema, shortened)."""
    return {"attemptsMade": 1, "errorCode": "S3.AccessDenied", "errorMessage": "Access Denied",
            "rawData": base64.b64encode(record).decode()}  # fmt: skip


def test_firehose_errors_lose_the_customers_records_inside_their_base64() -> None:
    theirs = b"e1,signup,t,C0007,ann@example.com,Ann,Lee,DE,Berlin\n"
    other = b"e2,signup,t,C0008,bob@example.com,Bob,Ng,DE,Berlin\n"
    text = (json.dumps(firehose_error(theirs)) + json.dumps(firehose_error(other))).encode()
    scrubbed = scrub_firehose_errors(text, "customers", REGISTER)
    assert scrubbed.dropped == 1 and scrubbed.body is not None
    [kept] = [json.loads(line) for line in scrubbed.body.splitlines()]
    assert base64.b64decode(kept["rawData"]) == other
    order = b'{"order_id": "O0042", "customer_id": "C0007"}\n'
    scrubbed = scrub_firehose_errors(json.dumps(firehose_error(order)).encode(), "orders",
                                     REGISTER)  # fmt: skip
    assert scrubbed.rewritten == 1 and scrubbed.body is not None
    assert base64.b64decode(json.loads(scrubbed.body)["rawData"]) == order.replace(
        b"C0007", TOMBSTONE_CUSTOMER_ID.encode()
    )
    # An error message quoting them, and a bare line, are scrubbed too; nothing else changes.
    quoting = {**firehose_error(other), "errorMessage": "bad record from ann@example.com"}
    bare = b"e3,signup,t,C0007,x,y,z,DE,Berlin"
    text = json.dumps(quoting).encode() + b"\n" + bare + b"\n"
    scrubbed = scrub_firehose_errors(text, "customers", REGISTER)
    assert scrubbed.body is not None and b"ann@" not in scrubbed.body
    assert scrubbed.body.count(b"\n") == 1 and scrubbed.dropped == 1
    unchanged = scrub_firehose_errors(json.dumps(firehose_error(other)).encode(), "customers",
                                      REGISTER)  # fmt: skip
    assert not unchanged.changed
