"""The shipper follows files like the Kinesis Agent: resumes from checkpoints, follows both
kinds of rotation, and never skips a line."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from shoplogs_agent.firehose import RetryPolicy
from shoplogs_agent.shipper import (
    ConfigError,
    Shipper,
    ShipperConfig,
    load_config,
    render_agent_json,
)
from tests.agent.records import shipped_lines


class Collecting:
    """Firehose that accepts everything and keeps it."""

    def __init__(self) -> None:
        self.data = b""

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict]) -> dict[str, Any]:
        self.data += b"".join(r["Data"] for r in Records)
        return {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "x"}] * len(Records)}

    def lines(self) -> list[bytes]:
        return shipped_lines(self.data)


def config_for(tmp_path: Path, position: str = "START_OF_FILE") -> Path:
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({
        "checkpointFile": str(tmp_path / "state" / "checkpoints"),
        "pollSeconds": 0.1,
        "flows": [{"filePattern": str(tmp_path / "access.log*"), "deliveryStream": "web",
                   "initialPosition": position}],
    }))  # fmt: skip
    return path


def shipper(config: Path, client: Collecting) -> Shipper:
    return Shipper(load_config(config), client, RetryPolicy(attempts=2, base_seconds=0))


def append(path: Path, *lines: str, newline: bool = True) -> None:
    with path.open("a") as handle:
        handle.write("".join(f"{line}\n" for line in lines[:-1]))
        handle.write(lines[-1] + ("\n" if newline else ""))


def test_lines_ship_once_and_a_half_written_line_waits(tmp_path: Path) -> None:
    log, client = tmp_path / "access.log", Collecting()
    append(log, "a", "b")
    append(log, "c-partial", newline=False)
    ship = shipper(config_for(tmp_path), client)
    ship.poll_once()
    assert client.lines() == [b"a", b"b"]
    append(log, "-done")
    ship.poll_once()
    ship.poll_once()
    assert client.lines() == [b"a", b"b", b"c-partial-done"]


def test_a_restart_resumes_at_the_checkpoint(tmp_path: Path) -> None:
    log, client = tmp_path / "access.log", Collecting()
    append(log, "a", "b")
    shipper(config_for(tmp_path), client).poll_once()
    append(log, "c")
    shipper(config_for(tmp_path), client).poll_once()  # a new process, same checkpoints
    assert client.lines() == [b"a", b"b", b"c"]


def test_rename_rotation_reads_the_old_file_to_its_end_then_the_new(tmp_path: Path) -> None:
    log, client = tmp_path / "access.log", Collecting()
    ship = shipper(config_for(tmp_path), client)
    append(log, "a")
    ship.poll_once()
    append(log, "b")  # written just before the rotation, not yet shipped
    log.rename(tmp_path / "access.log.1")
    append(log, "c")
    ship.poll_once()
    assert client.lines() == [b"a", b"b", b"c"]


def test_rotation_while_the_shipper_is_down_loses_nothing(tmp_path: Path) -> None:
    log, client = tmp_path / "access.log", Collecting()
    append(log, "a")
    shipper(config_for(tmp_path), client).poll_once()
    append(log, "b")
    log.rename(tmp_path / "access.log.1")
    append(log, "c")
    os.utime(log, None)
    shipper(config_for(tmp_path), client).poll_once()
    assert client.lines() == [b"a", b"b", b"c"]


def test_copytruncate_rotation_ships_the_copied_tail(tmp_path: Path) -> None:
    log, client = tmp_path / "access.log", Collecting()
    ship = shipper(config_for(tmp_path), client)
    append(log, "a")
    ship.poll_once()
    append(log, "b")
    shutil.copyfile(log, tmp_path / "access.log.1")  # logrotate copytruncate: copy ...
    log.write_text("")  # ... then truncate in place (same inode)
    append(log, "c")
    ship.poll_once()
    assert sorted(client.lines()) == [b"a", b"b", b"c"]


def test_end_of_file_start_skips_history_only_on_the_first_run(tmp_path: Path) -> None:
    log, client = tmp_path / "access.log", Collecting()
    append(log, "old")
    ship = shipper(config_for(tmp_path, "END_OF_FILE"), client)
    ship.poll_once()
    append(log, "new")
    ship.poll_once()
    log.rename(tmp_path / "access.log.1")
    append(log, "after-rotation")
    ship.poll_once()
    assert client.lines() == [b"new", b"after-rotation"]


def test_status_reports_lag_per_file(tmp_path: Path) -> None:
    log, client = tmp_path / "access.log", Collecting()
    append(log, "a")
    ship = shipper(config_for(tmp_path), client)
    assert ship.status()["flows"]["web"]["lag_bytes"] == {str(log): 2}
    ship.poll_once()
    status = ship.status()["flows"]["web"]
    assert status["lag_bytes"] == {str(log): 0} and status["lines_read"] == 1


def test_config_errors_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({"flows": [{"filePattern": "/var/log/x"}]}))
    with pytest.raises(ConfigError, match="flow 1 needs deliveryStream"):
        load_config(path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load_config(path)


def test_the_config_renders_as_kinesis_agent_json(tmp_path: Path) -> None:
    config: ShipperConfig = load_config(config_for(tmp_path))
    rendered = render_agent_json(config)
    assert "pollSeconds" not in rendered
    assert rendered["flows"][0]["deliveryStream"] == "web"
    assert rendered["checkpointFile"] == config.raw["checkpointFile"]


def test_a_line_over_the_record_limit_is_set_aside_locally(tmp_path: Path) -> None:
    from shoplogs_agent.firehose import MAX_RECORD_BYTES

    log, client = tmp_path / "access.log", Collecting()
    append(log, "a", "y" * (MAX_RECORD_BYTES + 1), "b")
    ship = shipper(config_for(tmp_path), client)
    ship.poll_once()
    assert client.lines() == [b"a", b"b"]
    [row] = [json.loads(x) for x in ship.config.quarantine_file.read_text().splitlines()]
    assert row["reason"] == "record_too_large" and row["raw_line"] == "y" * (MAX_RECORD_BYTES + 1)
    assert ship.status()["rejected_lines"] == 1


def test_a_line_longer_than_a_read_does_not_stall_the_file(tmp_path: Path) -> None:
    from shoplogs_agent.tailer import read_complete_lines

    log = tmp_path / "access.log"
    append(log, "x" * 50, "next")
    append(log, "half", newline=False)
    got, offset = b"", 0
    while chunk := read_complete_lines(str(log), offset, max_bytes=16):
        got, offset = got + chunk, offset + len(chunk)
    # The long line and the line after it come through; the half-written one waits.
    assert got == b"x" * 50 + b"\nnext\n"


@pytest.mark.parametrize(
    ("endpoint", "env", "region"),
    [
        ("https://firehose.eu-west-1.amazonaws.com", "us-east-1", "eu-west-1"),
        ("http://127.0.0.1:5000", "ap-south-1", "ap-south-1"),
    ],
)
def test_the_region_follows_the_endpoint_unless_it_cannot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, endpoint: str, env: str, region: str
) -> None:
    from shoplogs_agent.shipper import firehose_client

    monkeypatch.setenv("AWS_REGION", env)
    path = tmp_path / "agent.json"
    flows = [{"filePattern": "x*", "deliveryStream": "s"}]
    path.write_text(json.dumps({"firehose.endpoint": endpoint, "flows": flows}))
    assert firehose_client(load_config(path)).meta.region_name == region


def test_each_flow_carries_its_own_log_format_to_the_pipeline(tmp_path: Path) -> None:
    """Two flows into one delivery stream, each in its server's format (agent.json's
    logFormat): every record names its flow's format, which the Spark job parses it in,
    and each flow keeps checkpoints of its own."""
    apache = r"%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\" %D %v"
    nginx = '$remote_addr - $remote_user [$time_local] "$request" $status $request_time'
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({
        "checkpointFile": str(tmp_path / "state" / "checkpoints"),
        "flows": [
            {"filePattern": str(tmp_path / "apache.log*"), "deliveryStream": "web",
             "logFormat": apache},
            {"filePattern": str(tmp_path / "nginx.log*"), "deliveryStream": "web",
             "logFormat": nginx},
            {"filePattern": str(tmp_path / "orders.log*"), "deliveryStream": "orders"},
        ],
    }))  # fmt: skip
    append(tmp_path / "apache.log", "apache line")
    append(tmp_path / "nginx.log", "nginx line")
    append(tmp_path / "orders.log", "{}")
    client = Collecting()
    shipper(path, client).poll_once()
    formats = {}
    for record in client.data.splitlines():
        header, line = record.split(b"\x1d", 1)
        fields = header.decode().split(" ")
        formats[line] = unquote(fields[5]) if len(fields) > 5 else None
    assert formats == {b"apache line": apache, b"nginx line": nginx, b"{}": None}
    config = load_config(path)
    assert len({config.checkpoint_path(flow) for flow in config.flows}) == 3
    assert "logFormat" not in json.dumps(render_agent_json(config))  # the Kinesis Agent's


def test_a_log_format_that_cannot_travel_is_refused_naming_the_flow(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    for log_format, message in ((42, "flow 1 logFormat must be"),
                                ("$request " * 600, "flow 1 logFormat is .* bytes")):  # fmt: skip
        path.write_text(json.dumps({"flows": [
            {"filePattern": "/var/log/x", "deliveryStream": "web", "logFormat": log_format}
        ]}))  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            load_config(path)
