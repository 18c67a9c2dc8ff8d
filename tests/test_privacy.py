"""No client address of the demo's access log survives past the raw zones: every string
column of every processed table, the carried state and every warehouse table is searched
for each address the input held. The quarantine (raw lines, short retention) still holds
them, which shows the search finds what is there. The run's manifest names the key version
the Spark job read from the local Secrets Manager."""

from __future__ import annotations

import io
import ipaddress
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pyarrow.parquet as pq
import pytest

from lake import layout, zones

pytestmark = pytest.mark.integration

IPV4 = r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])"
IPV6 = r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![0-9A-Fa-f:])"
LITERAL = re.compile(f"{IPV4}|{IPV6}")


def address_literals(text: str) -> set[str]:
    """Every IPv4 or IPv6 address written out in ``text``, in its canonical form."""
    found = set()
    for match in LITERAL.finditer(text):
        try:
            found.add(str(ipaddress.ip_address(match[0])))
        except ValueError:
            continue  # digits and colons that are no address (a time of day)
    return found


def input_addresses(files: dict[str, list[Path]]) -> set[str]:
    """The client addresses of the access log (its lines' first field). Not every literal of
    a line: a user agent's version (Chrome/131.0.0.0) reads as an IPv4 address too."""
    return {a for path in files["web"] for line in path.read_text(errors="replace").splitlines()
            for a in address_literals(line.split(" ", 1)[0])}  # fmt: skip


def parquet_strings(s3: Any, bucket: str, prefix: str) -> Iterator[tuple[str, str, str]]:
    """(object key, column, value) of every string value in the Parquet under ``prefix``."""
    for key in zones.list_keys(s3, bucket, prefix):
        if not key.endswith(".parquet"):
            continue
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        for column in table.schema.names:
            if str(table.schema.field(column).type) in ("string", "large_string"):
                for value in table.column(column).to_pylist():
                    if value:
                        yield key, column, value


def warehouse_strings(duckdb_path: Path) -> Iterator[tuple[str, str, str]]:
    """(table, column, value) of every text value of every table the build wrote."""
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        columns = con.execute(
            "select c.table_schema, c.table_name, c.column_name from information_schema.columns c "
            "join information_schema.tables t using (table_catalog, table_schema, table_name) "
            "where t.table_type = 'BASE TABLE' and c.data_type = 'VARCHAR'"
        ).fetchall()
        for schema, table, column in columns:
            name = f'"{schema}"."{table}"'
            for (value,) in con.execute(
                f'select distinct "{column}" from {name} where "{column}" is not null'
            ).fetchall():
                yield name, column, value


def leaks(strings: Iterator[tuple[str, str, str]], addresses: set[str]) -> list[tuple]:
    return [(where, column, sorted(found)) for where, column, value in strings
            if (found := address_literals(value) & addresses)]  # fmt: skip


@pytest.fixture(scope="module")
def lake(demo_run: dict[str, Any]) -> tuple[Any, str]:
    settings = demo_run["settings"]
    s3 = boto3.client("s3", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    return s3, settings.lake_bucket


def test_no_input_address_is_in_the_processed_zone_the_state_or_the_warehouse(
    demo_run: dict[str, Any], lake: tuple[Any, str]
) -> None:
    s3, bucket = lake
    addresses = input_addresses(demo_run["files"])
    assert len(addresses) > 50  # the demo's clients
    processed = list(parquet_strings(s3, bucket, layout.PROCESSED))
    assert {column for key, column, _ in processed if "web_requests" in key} >= {
        "client_ip", "visitor_id", "session_id", "user_agent", "path"
    }  # fmt: skip
    assert leaks(iter(processed), addresses) == []
    assert leaks(parquet_strings(s3, bucket, layout.STATE), addresses) == []
    assert leaks(warehouse_strings(demo_run["settings"].duckdb_path), addresses) == []
    # The raw lines the quarantine keeps carry their addresses: the search sees them.
    quarantined = [
        ("quarantine", "raw_line", json.loads(line)["raw_line"])
        for key in zones.list_keys(s3, bucket, f"{layout.QUARANTINE}web/")
        for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()
    ]
    assert leaks(iter(quarantined), addresses)


def test_the_manifest_names_the_key_version_the_job_read(demo_run: dict[str, Any]) -> None:
    settings = demo_run["settings"]
    secrets = boto3.client(
        "secretsmanager", endpoint_url=settings.aws_endpoint_url, region_name=settings.region
    )
    current = secrets.describe_secret(SecretId=settings.pseudonym_secret)
    [version] = [v for v, stages in current["VersionIdsToStages"].items() if "AWSCURRENT" in stages]
    s3 = boto3.client("s3", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    body = s3.get_object(Bucket=settings.lake_bucket, Key=layout.manifest_key(demo_run["run_date"]))
    web = json.loads(body["Body"].read())["stats"]["streams"]["web"]
    assert web["pseudonym_key"] == {"secret": current["ARN"], "version": version}
