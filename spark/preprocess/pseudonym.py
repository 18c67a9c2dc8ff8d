"""Pseudonymization: client addresses replaced by a keyed hash before anything is written.

A keyed hash (HMAC-SHA256) with a secret key, unlike the plain SHA-256 of an address, cannot
be reversed by hashing the whole IPv4 space: without the key no candidate can be checked.
The key comes from AWS Secrets Manager (``read_key``; the local stack's moto server holds a
stand-in); each version of the secret is one key, and the run records which one it used.

The hash runs in Spark's own expressions (``sha2`` over the standard HMAC construction,
RFC 2104), not in a Python UDF: no row leaves the JVM, so it costs what ``sha2`` costs.
The two padded keys are plan literals; ``PLAN_REDACTION`` keeps them out of printed plans.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

# SHA-256's block: HMAC pads (or first hashes) the key to this many bytes.
BLOCK_BYTES = 64
# A key shorter than this is a mistake (a placeholder, a truncated value), not a secret.
MIN_KEY_BYTES = 32
# Spark prints binary literals as 0x and their hex digits: the padded keys are 64 bytes.
# Set as spark.sql.redaction.string.regex, explain output and the plans in the event log
# (Spark UI, History Server) show "*********(redacted)" in their place.
PLAN_REDACTION = f"0x[0-9A-Fa-f]{{{2 * BLOCK_BYTES}}}"
# Every web_requests column that holds an address as the server logged it.
ADDRESS_COLUMNS = ("client_ip", "forwarded_for")


class UnusableKey(ValueError):
    """The secret cannot serve as a pseudonymization key; the message names the fix."""


@dataclass(frozen=True)
class PseudonymKey:
    """One version of the pseudonymization secret. ``secret`` and ``version`` name it (and go
    into the run's statistics, so a rotation is traceable); the key bytes never do."""

    secret: str
    version: str
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_BYTES:
            raise UnusableKey(
                f"pseudonymization secret {self.secret} (version {self.version}) holds "
                f"{len(self.key)} bytes; it needs at least {MIN_KEY_BYTES}: store a random "
                "value (aws secretsmanager get-random-password --password-length 64)"
            )

    def record(self) -> dict[str, str]:
        """What the run statistics keep of the key: which secret, which version."""
        return {"secret": self.secret, "version": self.version}


def key_from_secret_value(response: dict[str, Any]) -> PseudonymKey:
    """The key of a ``GetSecretValue`` response: the secret string's UTF-8 bytes, or, when it
    is a JSON object, its ``key`` member (what a rotation function may write)."""
    text = response.get("SecretString")
    name = str(response.get("ARN") or response.get("Name"))
    if not text:
        raise UnusableKey(
            f"pseudonymization secret {name} has no SecretString; store the key as text"
        )
    if text.lstrip().startswith("{"):
        try:
            text = str(json.loads(text)["key"])
        except (ValueError, KeyError) as exc:
            raise UnusableKey(
                f"pseudonymization secret {name} is JSON without a 'key' member; store "
                '{"key": "<random text>"} or the random text alone'
            ) from exc
    return PseudonymKey(name, str(response["VersionId"]), text.encode())


def read_key(secretsmanager: Any, secret_id: str, version: str | None = None) -> PseudonymKey:
    """The secret's current version (``AWSCURRENT``), or the ``version`` asked for (a version
    id, or a staging label such as ``AWSPREVIOUS``)."""
    if version is None:
        response = secretsmanager.get_secret_value(SecretId=secret_id)
    elif version.startswith("AWS"):
        response = secretsmanager.get_secret_value(SecretId=secret_id, VersionStage=version)
    else:
        response = secretsmanager.get_secret_value(SecretId=secret_id, VersionId=version)
    return key_from_secret_value(response)


def _pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys (RFC 2104)."""
    if len(key) > BLOCK_BYTES:
        key = hashlib.sha256(key).digest()
    block = key.ljust(BLOCK_BYTES, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


def keyed_hash(key: PseudonymKey, text: Column) -> Column:
    """HMAC-SHA256 of ``text`` (its UTF-8 bytes) under ``key``, as 64 lowercase hex digits,
    equal to Python's ``hmac.new(key, text.encode(), "sha256").hexdigest()``; null stays null."""
    inner_pad, outer_pad = _pads(key.key)
    inner = F.unhex(F.sha2(F.concat(F.lit(inner_pad), text.cast("binary")), 256))
    return F.sha2(F.concat(F.lit(outer_pad), inner), 256)


def _address_list(key: PseudonymKey, header: Column) -> Column:
    """X-Forwarded-For is a list (``client, proxy1, proxy2``): each address is replaced by
    its own pseudonym, so the hops stay countable and the first one can be matched with a
    ``client_ip`` pseudonym."""
    addresses = F.split(F.trim(header), r"\s*,\s*")
    return F.array_join(F.transform(addresses, lambda address: keyed_hash(key, address)), ", ")


def visitor_id(key: PseudonymKey) -> Column:
    """A visitor: the client address and user agent, keyed-hashed together."""
    identity = F.concat_ws("|", F.col("client_ip"), F.coalesce(F.col("user_agent"), F.lit("")))
    return keyed_hash(key, identity)


def pseudonymize_requests(requests: DataFrame, key: PseudonymKey) -> DataFrame:
    """``requests`` with ``visitor_id`` added and every address column replaced by its
    pseudonym: the one place raw addresses end. Whatever needs the address itself (the
    visitor, bot rules) reads it before this."""
    return requests.withColumns(
        {
            "visitor_id": visitor_id(key),
            "client_ip": keyed_hash(key, F.col("client_ip")),
            "forwarded_for": _address_list(key, F.col("forwarded_for")),
        }
    )
