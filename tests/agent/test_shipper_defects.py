"""The shipper on real hosts: rotation races, compressed rotations, torn checkpoints, a
stream that refuses, files that cannot be read. Each case once lost or corrupted lines."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shoplogs_agent.shipper import Shipper, load_config, render_agent_json
from shoplogs_agent.tailer import Tailer
from tests.agent.test_shipper import Collecting, append, config_for, shipper


def long_line(tag: str) -> str:
    """A line with a full 64-byte fingerprint of its own, like a real access-log line."""
    return f"{tag} " + "10.0.0.1 - - [21/Nov/2026:10:00:00 +0000] GET /p HTTP/1.1 200 " + tag * 8


def rotate_by_rename(folder: Path) -> None:
    (folder / "access.log").rename(folder / "access.log.1")
    (folder / "access.log").touch()


def compress(path: Path) -> None:
    """logrotate's ``compress`` without ``delaycompress``: gzip the rotation, delete it."""
    with path.open("rb") as plain, gzip.open(f"{path}.gz", "wb") as packed:
        shutil.copyfileobj(plain, packed)
    path.unlink()


def frozen(ship: Shipper) -> Shipper:
    """No grace period can pass: only the writer moving on finishes a renamed file."""
    for _, tailer in ship.tailers:
        tailer.clock = lambda: 0.0
    return ship


def test_a_line_half_written_at_rename_rotation_ships_whole(tmp_path: Path) -> None:
    log, client = tmp_path / "access.log", Collecting()
    ship = frozen(shipper(config_for(tmp_path), client))
    append(log, "a")
    append(log, "half", newline=False)
    rotate_by_rename(tmp_path)  # the application still holds the old file open
    ship.poll_once()
    assert client.lines() == [b"a"]
    append(tmp_path / "access.log.1", "-done")  # its last write to the old file
    append(log, "c")  # it reopened its log: the old file is finished
    ship.poll_once()
    assert client.lines() == [b"a", b"half-done", b"c"]


def test_a_renamed_file_is_finished_after_the_grace_period(tmp_path: Path) -> None:
    log, client = tmp_path / "access.log", Collecting()
    ship = frozen(shipper(config_for(tmp_path), client))
    append(log, "a")
    append(log, "last", newline=False)
    rotate_by_rename(tmp_path)
    ship.poll_once()
    assert client.lines() == [b"a"]
    mtime = (tmp_path / "access.log.1").stat().st_mtime
    ship.tailers[0][1].clock = lambda: mtime + ship.config.rotation_grace_seconds
    ship.poll_once()
    assert client.lines() == [b"a", b"last"]


def test_the_unsent_tail_of_a_compressed_and_deleted_rotation_is_read(tmp_path: Path) -> None:
    log, client = tmp_path / "access.log", Collecting()
    ship = shipper(config_for(tmp_path), client)
    append(log, "a")
    ship.poll_once()
    append(log, "b")  # not sent yet when logrotate runs
    rotate_by_rename(tmp_path)
    compress(tmp_path / "access.log.1")
    append(log, "c")
    ship.poll_once()
    assert client.lines() == [b"a", b"b", b"c"]
    assert ship.status()["flows"]["web"]["reading_compressed"] == []
    # The next rotation: the fully sent .gz moves on, a new one appears; nothing is resent.
    (tmp_path / "access.log.1.gz").rename(tmp_path / "access.log.2.gz")
    rotate_by_rename(tmp_path)
    compress(tmp_path / "access.log.1")
    append(log, "d")
    ship.poll_once()
    assert client.lines() == [b"a", b"b", b"c", b"d"]


def test_compressed_rotations_already_sent_are_not_read_again(tmp_path: Path) -> None:
    log, client = tmp_path / "access.log", Collecting()
    append(log, "a", "b")
    shipper(config_for(tmp_path), client).poll_once()
    rotate_by_rename(tmp_path)
    compress(tmp_path / "access.log.1")  # while the shipper was down
    append(log, "c")
    shipper(config_for(tmp_path), client).poll_once()
    assert client.lines() == [b"a", b"b", b"c"]


def copytruncate(folder: Path) -> None:
    shutil.copyfile(folder / "access.log", folder / "access.log.1")
    (folder / "access.log").write_text("")


def test_copytruncate_twice_while_the_shipper_was_down(tmp_path: Path) -> None:
    log, client = tmp_path / "access.log", Collecting()
    lines = [long_line(tag) for tag in "ABCD"]
    append(log, lines[0])
    shipper(config_for(tmp_path), client).poll_once()
    append(log, lines[1])  # unsent; then the shipper is down for two rotations
    copytruncate(tmp_path)
    append(log, lines[2])
    (tmp_path / "access.log.1").rename(tmp_path / "access.log.2")
    copytruncate(tmp_path)
    append(log, lines[3])
    shipper(config_for(tmp_path), client).poll_once()
    assert sorted(client.lines()) == [line.encode() for line in lines]


def test_a_poll_between_copy_and_truncate_does_not_resend_the_copy(tmp_path: Path) -> None:
    log, client = tmp_path / "access.log", Collecting()
    lines = [long_line(tag) for tag in "ABC"]
    ship = shipper(config_for(tmp_path), client)
    append(log, lines[0])
    ship.poll_once()
    append(log, lines[1])
    shutil.copyfile(log, tmp_path / "access.log.1")  # copied ...
    ship.poll_once()
    log.write_text("")  # ... then truncated
    append(log, lines[2])
    ship.poll_once()
    assert sorted(client.lines()) == [line.encode() for line in lines]


def test_a_rotation_between_listing_and_reading_keeps_each_file_s_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, client = tmp_path / "access.log", Collecting()
    ship = shipper(config_for(tmp_path), client)
    append(log, "a")
    ship.poll_once()
    append(log, "b")
    listing = Tailer.files
    rotated = []

    def files_then_rotate(self: Tailer) -> list[tuple[str, os.stat_result]]:
        found = listing(self)
        if not rotated:  # the rotation lands right after the listing
            rotated.append(True)
            log.rename(tmp_path / "access.log.1")
            append(log, "XX", "yy")
        return found

    monkeypatch.setattr(Tailer, "files", files_then_rotate)
    ship.poll_once()
    ship.poll_once()
    assert sorted(client.lines()) == [b"XX", b"a", b"b", b"yy"]


@pytest.mark.parametrize("torn", [b"", b'{"1:2": {"path": "/var/log/acc', b"\x00\x00\x00"])
def test_a_torn_checkpoint_falls_back_to_the_previous_generation(
    tmp_path: Path, torn: bytes
) -> None:
    log, client = tmp_path / "access.log", Collecting()
    config = config_for(tmp_path)
    append(log, "a", "b")
    shipper(config, client).poll_once()
    append(log, "c")
    shipper(config, client).poll_once()
    checkpoint = load_config(config).checkpoint_path(load_config(config).flows[0])
    checkpoint.write_bytes(torn)  # power lost while the file was being written
    append(log, "d")
    ship = shipper(config, client)
    ship.poll_once()
    # Back to the generation before the last batch: only that batch ("c") is sent again.
    assert client.lines() == [b"a", b"b", b"c", b"c", b"d"]
    assert "previous generation" in ship.status()["flows"]["web"]["checkpoint_recovered"]


class Refusing(Collecting):
    """Firehose where one delivery stream refuses every call (its role lost access), after
    accepting the first ``after``."""

    def __init__(self, blocked: str, after: int = 0) -> None:
        super().__init__()
        self.blocked = blocked
        self.after = after

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict]) -> dict[str, Any]:
        if DeliveryStreamName == self.blocked:
            if not self.after:
                error = {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}
                raise ClientError(error, "PutRecordBatch")  # type: ignore[arg-type]
            self.after -= 1
        return super().put_record_batch(DeliveryStreamName, Records)


def test_what_was_acknowledged_before_a_failure_is_not_sent_again(tmp_path: Path) -> None:
    # The checkpoint is saved once per turn of a flow, so a turn that ends in a failure
    # must still save the chunks acknowledged before it.
    log, lines = tmp_path / "access.log", [f"line-{n:03}" for n in range(30)]
    append(log, *lines)
    first = Refusing(blocked="web", after=1)
    shipper(config_for(tmp_path), first).poll_once(max_bytes=100)  # 11 lines a chunk
    assert first.lines() == [line.encode() for line in lines[:11]]
    again = Collecting()
    shipper(config_for(tmp_path), again).poll_once(max_bytes=100)  # a new process
    assert first.lines() + again.lines() == [line.encode() for line in lines]


def two_flows(tmp_path: Path) -> Path:
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({
        "checkpointFile": str(tmp_path / "state" / "checkpoints"),
        "failExitMinutes": 10,
        "flows": [
            {"filePattern": str(tmp_path / "orders.log*"), "deliveryStream": "orders"},
            {"filePattern": str(tmp_path / "access.log*"), "deliveryStream": "web"},
        ],
    }))  # fmt: skip
    return path


def test_a_stream_that_refuses_does_not_hold_up_the_others(tmp_path: Path) -> None:
    append(tmp_path / "orders.log", "o1")
    append(tmp_path / "access.log", "w1")
    client = Refusing(blocked="orders")
    now = [1000.0]
    ship = Shipper(load_config(two_flows(tmp_path)), client, clock=lambda: now[0])
    ship.poll_once()
    assert client.lines() == [b"w1"]
    orders = ship.status()["flows"]["orders"]
    assert "AccessDeniedException" in orders["last_error"] and orders["error_permanent"]
    assert ship.status()["flows"]["web"]["last_error"] is None
    now[0] += 9 * 60
    append(tmp_path / "access.log", "w2")
    ship.poll_once()
    assert client.lines() == [b"w1", b"w2"]
    assert ship.failing_too_long() == []
    now[0] += 60
    ship.poll_once()
    assert ship.failing_too_long() == ["orders"]  # run() exits 3: systemd sees it
    client.blocked = ""  # access restored: the flow resumes where it stopped
    now[0] += 60
    ship.poll_once()
    assert sorted(client.lines()) == [b"o1", b"w1", b"w2"]
    assert ship.status()["flows"]["orders"]["last_error"] is None


def test_the_daemon_exits_non_zero_when_a_flow_fails_for_too_long(tmp_path: Path) -> None:
    append(tmp_path / "orders.log", "o1")
    config = json.loads(two_flows(tmp_path).read_text())
    config.update(failExitMinutes=0, pollSeconds=0)
    (tmp_path / "agent.json").write_text(json.dumps(config))
    ship = Shipper(load_config(tmp_path / "agent.json"), Refusing(blocked="orders"))
    assert ship.run() == 3
    status = json.loads(ship.config.status_file.read_text())
    assert "AccessDeniedException" in status["flows"]["orders"]["last_error"]


def test_a_file_that_cannot_be_read_is_reported_and_the_rest_ships(tmp_path: Path) -> None:
    log, client = tmp_path / "access.log", Collecting()
    (tmp_path / "access.log.2").mkdir()  # matches the pattern, cannot be read as a file
    append(tmp_path / "access.log.1", "a")
    append(log, "b")
    ship = shipper(config_for(tmp_path), client)
    ship.poll_once()
    assert client.lines() == [b"a", b"b"]
    errors = ship.status()["flows"]["web"]["file_errors"]
    assert list(errors) == [str(tmp_path / "access.log.2")]


def bytes_read_by_this_process() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_a_long_unterminated_line_is_not_read_again_on_every_poll(tmp_path: Path) -> None:
    log, client = tmp_path / "access.log", Collecting()
    append(log, "x" * 900_000, newline=False)
    ship = shipper(config_for(tmp_path), client)
    ship.poll_once()
    before = bytes_read_by_this_process()
    for _ in range(20):
        append(log, "x", newline=False)
        ship.poll_once()
    # Each poll looks only at the new byte: far less than one more read of the line.
    assert bytes_read_by_this_process() - before < 500_000
    append(log, "")
    ship.poll_once()
    assert client.lines() == [b"x" * 900_020]


def test_set_aside_lines_are_readable_by_the_shipper_only(tmp_path: Path) -> None:
    from shoplogs_agent.firehose import MAX_RECORD_BYTES

    log, client = tmp_path / "access.log", Collecting()
    append(log, "y" * (MAX_RECORD_BYTES + 1))
    ship = shipper(config_for(tmp_path), client)
    ship.poll_once()
    target = ship.config.quarantine_file
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700


class Bucket:
    """S3 that keeps what is put, or refuses while ``down``."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.down = False

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        if self.down:
            raise ConnectionError("S3 unreachable")
        self.objects[f"{Bucket}/{Key}"] = Body
        return {}


def test_set_aside_lines_are_delivered_to_the_lake_quarantine(tmp_path: Path) -> None:
    import hashlib

    from lake import layout
    from shoplogs_agent.firehose import MAX_RECORD_BYTES

    config = json.loads(config_for(tmp_path).read_text())
    config["quarantine.bucket"] = "lake"
    config["flows"][0]["deliveryStream"] = "shoplogs-prod-web"
    (tmp_path / "agent.json").write_text(json.dumps(config))
    huge = "y" * (MAX_RECORD_BYTES + 1)
    append(tmp_path / "access.log", "a", huge)
    bucket, client = Bucket(), Collecting()
    bucket.down = True
    ship = Shipper(load_config(tmp_path / "agent.json"), client, s3=bucket)
    ship.poll_once()
    assert (
        ship.status()["rejects_pending"] == 1 and "S3 unreachable" in ship.status()["rejects_error"]
    )
    bucket.down = False
    ship.poll_once()
    digest = hashlib.sha256(huge.encode()).hexdigest()
    key = layout.shipper_rejects("web", "access.log", digest[:16])
    row = json.loads(bucket.objects[f"lake/{key}"])
    assert row["raw_line"] == huge and row["reason"] == "record_too_large"
    assert row["sha256"] == digest and row["source"] == str(tmp_path / "access.log")
    assert ship.status()["rejects_pending"] == 0 and ship.status()["rejects_error"] is None
    rendered = json.dumps(render_agent_json(ship.config))  # keys the AWS agent lacks
    assert "quarantine.bucket" not in rendered and "lakeStream" not in rendered
