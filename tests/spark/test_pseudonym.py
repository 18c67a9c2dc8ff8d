"""Client addresses leave the Spark job only as keyed hashes: the HMAC Spark computes is
the standard one, no raw address reaches a dataset or the carried state, visitor ids hold
within a key and change with a rotated one, and the key never shows in a printed plan."""

from __future__ import annotations

import contextlib
import io
from datetime import date
from typing import Any

import pytest
from pyspark.sql import functions as F

from preprocess import formats, web
from preprocess.common import RunContext
from preprocess.pseudonym import (
    PLAN_REDACTION,
    PseudonymKey,
    UnusableKey,
    _pads,
    key_from_secret_value,
    keyed_hash,
)
from tests.spark.keys import KEY, KEYED, pseudonym

pytestmark = pytest.mark.integration

ROTATED = PseudonymKey("tests/pseudonym-key", "v2", b"the next version of the test key, rotated")
LONG_KEY = PseudonymKey("tests/long", "v1", b"k" * 100)  # longer than SHA-256's block
ADDRESSES = ["93.184.216.34", "2001:db8::1", "10.0.0.2", "203.0.113.9", "198.51.100.7"]


def hit(client: str, second: int, agent: str = "Mozilla/5.0", forwarded: str = "-") -> str:
    return (
        f'{client} - - [21/Nov/2026:10:00:{second:02d} +0000] "GET /p{second} HTTP/1.1" 200 5 '
        f'"http://shop.example.com/" "{agent}" "{forwarded}"'
    )


def test_spark_computes_the_standard_hmac(spark: Any) -> None:
    texts = ["93.184.216.34", "2001:db8::1", "héllo wörld", "", "a|b"]
    frame = spark.createDataFrame([(t,) for t in texts] + [(None,)], "text string")
    for key in (KEY, LONG_KEY):
        got = {r["text"]: r["h"] for r in frame.select("text", keyed_hash(key, F.col("text"))
                                                        .alias("h")).collect()}  # fmt: skip
        assert got == {**{t: pseudonym(t, key) for t in texts}, None: None}


def test_no_raw_address_reaches_the_requests_or_the_state(lines: Any) -> None:
    raw = [
        hit("93.184.216.34", 1),
        hit("2001:db8::1", 2, agent="curl/8.5.0"),
        hit("10.0.0.2", 3, forwarded="203.0.113.9, 198.51.100.7"),
    ]
    run = RunContext(date(2026, 11, 21), pseudonym_key=KEY)
    result = web.transform(lines(raw), run, formats.compile_format("nginx"))
    frames = [*result.datasets.values(), *result.state.values()]
    for frame in frames:
        strings = [n for n, kind in frame.dtypes if kind == "string"]
        for row in frame.select(*strings).collect():
            leaked = [(n, row[n]) for n in strings for a in ADDRESSES if a in (row[n] or "")]
            assert not leaked
    rows = {r["path"]: r for r in result.datasets["web_requests"].collect()}
    assert rows["/p1"]["client_ip"] == pseudonym("93.184.216.34")
    # Each hop of X-Forwarded-For has its own pseudonym: still countable, still joinable.
    hops = [pseudonym("203.0.113.9"), pseudonym("198.51.100.7")]
    assert rows["/p3"]["forwarded_for"] == ", ".join(hops)
    assert rows["/p1"]["forwarded_for"] is None
    assert rows["/p1"]["visitor_id"] == pseudonym("93.184.216.34|Mozilla/5.0")
    # The bot rule still judged the request before the address was hashed.
    assert rows["/p2"]["is_bot"] and not rows["/p1"]["is_bot"]


def visitors(result: Any) -> dict[str, tuple[str, str]]:
    return {r["path"]: (r["visitor_id"], r["session_id"])
            for r in result.datasets["web_requests"].collect()}  # fmt: skip


def test_visitor_ids_hold_within_a_key_and_change_with_a_rotated_one(lines: Any) -> None:
    raw = [hit("93.184.216.34", 1), hit("93.184.216.34", 2), hit("10.0.0.2", 3)]
    first = visitors(web.transform(lines(raw), KEYED))
    again = visitors(web.transform(lines(raw), KEYED))
    rotated = visitors(web.transform(lines(raw), RunContext(pseudonym_key=ROTATED)))
    assert first == again  # a re-run with the same key: the same visitors and sessions
    assert first["/p1"] == first["/p2"] and first["/p1"][0] != first["/p3"][0]
    assert all(rotated[path][0] != first[path][0] for path in first)
    assert all(rotated[path][1] != first[path][1] for path in first)
    assert rotated["/p1"] == rotated["/p2"]  # still one visitor, one session, under the new key


def test_the_web_stream_refuses_to_run_without_a_key(lines: Any) -> None:
    with pytest.raises(ValueError, match="needs a pseudonymization key"):
        web.transform(lines([hit("10.0.0.2", 1)]), RunContext(date(2026, 11, 21)))


def test_the_key_never_shows_in_a_printed_plan(spark: Any, lines: Any) -> None:
    requests = web.transform(lines([hit("10.0.0.2", 1)]), KEYED).datasets["web_requests"]
    previous = spark.conf.get("spark.sql.redaction.string.regex", None)
    spark.conf.set("spark.sql.redaction.string.regex", PLAN_REDACTION)  # as job.py sets it
    try:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            requests.explain("extended")
    finally:
        if previous is None:
            spark.conf.unset("spark.sql.redaction.string.regex")
        else:
            spark.conf.set("spark.sql.redaction.string.regex", previous)
    plan = printed.getvalue().upper()
    assert "SHA2" in plan and "REDACTED" in plan
    assert all(pad.hex().upper() not in plan for pad in _pads(KEY.key))
    assert KEY.key.hex().upper() not in plan and "A KEY FOR THE SPARK TESTS" not in plan


def test_a_secret_value_becomes_a_key_or_an_error_naming_the_fix() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:k-AbCdEf"
    plain = key_from_secret_value({"ARN": arn, "VersionId": "v9", "SecretString": "x" * 40})
    assert (plain.secret, plain.version, plain.key) == (arn, "v9", b"x" * 40)
    assert "x" * 40 not in repr(plain)
    as_json = key_from_secret_value({"ARN": arn, "VersionId": "v9",
                                     "SecretString": '{"key": "' + "y" * 40 + '"}'})  # fmt: skip
    assert as_json.key == b"y" * 40
    with pytest.raises(UnusableKey, match="at least 32"):
        short = {"ARN": arn, "VersionId": "v1", "SecretString": "short"}  # pragma: allowlist secret
        key_from_secret_value(short)
    with pytest.raises(UnusableKey, match="'key' member"):
        key_from_secret_value({"ARN": arn, "VersionId": "v1", "SecretString": '{"k": 1}'})
