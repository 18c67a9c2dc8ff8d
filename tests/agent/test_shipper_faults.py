"""The shipper under faults (issue 27): a writer process logs numbered lines while logrotate
rotates, Firehose fails and the shipper stops; every line is counted at the end: none lost,
none sent twice under a new place."""

from __future__ import annotations

import errno
import gzip
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from orchestration.settings import REPO_ROOT
from shoplogs_agent import tailer as tailer_module
from shoplogs_agent.firehose import RetryPolicy
from shoplogs_agent.shipper import (
    CHUNKS_PER_TURN,
    EXIT_CHECKPOINT_UNWRITABLE,
    Shipper,
    firehose_client,
    load_config,
    s3_client,
)
from shoplogs_agent.tailer import KEEP_OF_LONG_LINE
from tests.agent.faults import Flaky, Writer, lost_and_doubled, rotate
from tests.agent.records import shipped_lines, unwrap
from tests.agent.test_shipper import Collecting, append, config_for
from tests.agent.test_shipper_defects import two_flows

NO_WAIT = RetryPolicy(attempts=1, base_seconds=0, cap_seconds=5)


def shipper_at(config: Path, client: Flaky, now: list[float]) -> Shipper:
    """A shipper on a test clock: a failing flow waits for ``now`` to pass its retry time."""
    ship = Shipper(load_config(config), client, NO_WAIT, clock=lambda: now[0])
    for _, tailer in ship.tailers:
        tailer.clock = lambda: now[0]
    return ship


def catch_up(ship: Shipper, now: list[float], polls: int = 50) -> None:
    for _ in range(polls):  # bounded
        now[0] += 60
        ship.poll_once()
        if not ship.failures and not any(ship.flow_status(*t)["lag_bytes"].values()
                                         for t in ship.tailers):  # fmt: skip
            return


def test_an_outage_across_compress_rotations_loses_nothing(tmp_path: Path) -> None:
    config, client, now = config_for(tmp_path), Flaky(), [1_000.0]
    writer = Writer(tmp_path / "access.log")
    ship = shipper_at(config, client, now)
    writer.write(200)
    ship.poll_once()
    client.down = True  # Firehose unreachable while logrotate compresses three times
    for _ in range(3):
        writer.write(500)
        now[0] += 6
        ship.poll_once()
        rotate(tmp_path)
        writer.reopen()
        now[0] += 6
        ship.poll_once()
    writer.write(300)
    client.down = False
    catch_up(ship, now)
    writer.close()
    assert lost_and_doubled(writer.lines(), client.data) == (0, 0)


def test_a_shipper_stopped_across_two_compress_rotations_loses_nothing(tmp_path: Path) -> None:
    config, client, now = config_for(tmp_path), Flaky(), [1_000.0]
    writer = Writer(tmp_path / "access.log")
    writer.write(1_000)
    shipper_at(config, client, now).poll_once()
    writer.write(500)  # unsent when the shipper stops
    for _ in range(2):
        rotate(tmp_path)
        writer.reopen()
        writer.write(500)
    catch_up(shipper_at(config, client, now), now)
    writer.close()
    assert lost_and_doubled(writer.lines(), client.data) == (0, 0)


def test_a_log_deleted_while_written_is_read_to_its_end(tmp_path: Path) -> None:
    config, client, now = config_for(tmp_path), Flaky(), [1_000.0]
    writer = Writer(tmp_path / "access.log")
    ship = shipper_at(config, client, now)
    writer.write(2_000)
    ship.poll_once()
    (tmp_path / "access.log").unlink()  # deleted; the writer still writes to it
    writer.write(3_000)
    ship.poll_once()
    writer.reopen()  # 2 s later it opens its log again: a new file
    writer.write(1_000)
    catch_up(ship, now)
    writer.close()
    assert lost_and_doubled(writer.lines(), client.data) == (0, 0)


def test_create_rotation_of_lines_that_share_their_first_64_bytes(tmp_path: Path) -> None:
    config, client, now = config_for(tmp_path), Flaky(), [1_000.0]
    # bunyan style: the same 64-byte prefix on every line, the number further on.
    prefix = '{"name":"shop","hostname":"web-1","pid":1234,"level":30,"v":0,"msg":"req'
    writer = Writer(tmp_path / "access.log", prefix=prefix)
    ship = shipper_at(config, client, now)
    for _ in range(4):
        writer.write(500)
        ship.poll_once()
        writer.write(500)
        rotate(tmp_path, compress=False)
        writer.reopen()
        writer.write(300)  # the new log has lines before the shipper first sees it
        ship.poll_once()
    catch_up(ship, now)
    writer.close()
    assert lost_and_doubled(writer.lines(), client.data) == (0, 0)


def damage(path: Path) -> None:
    """Flip bytes early in a .gz's deflate stream: zlib finds invalid codes there (later,
    only the CRC at the end would tell)."""
    data = bytearray(path.read_bytes())
    data[100:164] = bytes(b ^ 0x5A for b in data[100:164])
    path.write_bytes(bytes(data))


def test_a_damaged_gz_is_set_aside_whole_and_the_other_files_ship(tmp_path: Path) -> None:
    config, client, now = config_for(tmp_path), Flaky(), [1_000.0]
    writer = Writer(tmp_path / "access.log")
    for _ in range(3):  # shipped by a shipper that was not running
        writer.write(1_000)
        rotate(tmp_path)
        writer.reopen()
    writer.write(1_000)
    damaged = tmp_path / "access.log.2.gz"
    with gzip.open(damaged, "rb") as whole:
        in_damaged = set(whole.read().splitlines())
    damage(damaged)
    ship = shipper_at(config, client, now)
    catch_up(ship, now)  # did not raise: no crash loop
    writer.close()
    set_aside = ship.status()["quarantined_files"]
    assert len(set_aside) == 1
    [(kept, why)] = set_aside.items()
    assert Path(kept).read_bytes() == damaged.read_bytes() and str(damaged) in why
    # Every line of the other files arrived once; the damaged file's are kept, not lost
    # (those read before the damage may have been sent too).
    assert lost_and_doubled(writer.lines(), client.data, kept=in_damaged) == (0, 0)


def test_a_checkpoint_that_cannot_be_written_stops_with_one_error_and_an_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, client = config_for(tmp_path), Flaky()
    writer = Writer(tmp_path / "access.log")
    writer.write(1_000)
    ship = Shipper(load_config(config), client, NO_WAIT)
    ship.poll_once()  # the first checkpoint is saved
    real_write = tailer_module.write_durably

    def disk_full(path: Path, payload: bytes, mode: int = 0o600) -> None:
        real_write(path, payload[: len(payload) // 2], mode)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tailer_module, "write_durably", disk_full)
    writer.write(1_000)
    assert ship.run() == EXIT_CHECKPOINT_UNWRITABLE  # not a crash, not a loop
    writer.close()
    status = json.loads(ship.config.status_file.read_text())
    assert "No space left on device" in status["checkpoint_error"]
    assert "free space" in status["checkpoint_error"]
    # Each batch went out once: nothing resent while the checkpoint could not move.
    assert lost_and_doubled(writer.lines(), client.data) == (0, 0)
    assert len(shipped_lines(client.data)) == 2_000
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    unit = (REPO_ROOT / "agent" / "deploy" / "shoplogs-shipper.service").read_text()
    assert f"RestartPreventExitStatus={EXIT_CHECKPOINT_UNWRITABLE}" in unit


class FailingWith500(Collecting):
    """Firehose answering 500 InternalFailure to the first ``failures`` calls."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict]) -> dict[str, Any]:
        if self.failures:
            self.failures -= 1
            error: Any = {"Error": {"Code": "InternalFailure", "Message": "try again"},
                          "ResponseMetadata": {"HTTPStatusCode": 500}}  # fmt: skip
            raise ClientError(error, "PutRecordBatch")
        return super().put_record_batch(DeliveryStreamName, Records)


def test_a_5xx_is_transient(tmp_path: Path) -> None:
    writer = Writer(tmp_path / "access.log")
    writer.write(100)
    client = FailingWith500(failures=3)
    ship = Shipper(load_config(config_for(tmp_path)), client, RetryPolicy(base_seconds=0))
    ship.poll_once()
    writer.close()
    assert ship.failures == {}  # retried within the call, never taken as permanent
    assert lost_and_doubled(writer.lines(), client.data) == (0, 0)


def test_the_quarantine_s3_client_uses_the_configured_endpoint(tmp_path: Path) -> None:
    raw = json.loads(config_for(tmp_path).read_text())
    raw.update({"firehose.endpoint": "http://127.0.0.1:4599", "quarantine.bucket": "lake"})
    (tmp_path / "agent.json").write_text(json.dumps(raw))
    assert s3_client(load_config(tmp_path / "agent.json")).meta.endpoint_url == (
        "http://127.0.0.1:4599"
    )
    raw["firehose.endpoint"] = "https://firehose.eu-west-1.amazonaws.com"  # AWS's own
    (tmp_path / "agent.json").write_text(json.dumps(raw))
    s3 = s3_client(load_config(tmp_path / "agent.json"))
    assert s3.meta.endpoint_url == "https://s3.eu-west-1.amazonaws.com"


def test_a_half_written_line_under_a_pattern_without_a_trailing_star(tmp_path: Path) -> None:
    raw = json.loads(config_for(tmp_path).read_text())
    raw["flows"][0]["filePattern"] = str(tmp_path / "*.log")
    (tmp_path / "agent.json").write_text(json.dumps(raw))
    client, now = Flaky(), [1_000.0]
    writer = Writer(tmp_path / "access.log")
    ship = shipper_at(tmp_path / "agent.json", client, now)
    writer.write(500)
    writer.process.stdin.write("partial half-written\n")  # type: ignore[union-attr]
    writer.process.stdin.flush()  # type: ignore[union-attr]
    assert writer.process.stdout.readline().strip() == "ok"  # type: ignore[union-attr]
    # Long after the grace period: the file is still its writer's.
    now[0] = (tmp_path / "access.log").stat().st_mtime + 3_600
    ship.poll_once()
    append(tmp_path / "access.log", " and done")
    ship.poll_once()
    writer.close()
    assert shipped_lines(client.data)[-1] == b"half-written and done"
    assert len(shipped_lines(client.data)) == 501


class Busy(Collecting):
    """Firehose whose every call to stream ``busy`` makes its application log more."""

    def __init__(self, busy: str, log: Writer, calls: int) -> None:
        super().__init__()
        self.busy, self.log, self.calls = busy, log, calls
        self.streams: list[str] = []

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict]) -> dict[str, Any]:
        self.streams.append(DeliveryStreamName)
        if DeliveryStreamName == self.busy and self.calls:
            self.calls -= 1
            self.log.write(2_000)
        return super().put_record_batch(DeliveryStreamName, Records)


def test_a_busy_flow_does_not_delay_another(tmp_path: Path) -> None:
    busy = Writer(tmp_path / "orders.log", prefix="order")  # the first flow
    quiet = Writer(tmp_path / "access.log")
    busy.write(2_000)
    quiet.write(10)
    client = Busy("orders", busy, calls=30)
    ship = Shipper(load_config(two_flows(tmp_path)), client, NO_WAIT)
    for _ in range(100):  # bounded
        ship.poll_once(max_bytes=64 * 1024)
        if not any(ship.flow_status(*t)["lag_bytes"].values() for t in ship.tailers):
            break
    busy.close()
    quiet.close()
    # The quiet flow's one call came within the first turn of the busy one.
    assert client.streams.index("web") <= CHUNKS_PER_TURN
    assert lost_and_doubled(busy.lines() | quiet.lines(), client.data) == (0, 0)


class Poisoned(Collecting):
    """Firehose that refuses every record holding ``poison``, and takes the others."""

    def __init__(self, poison: bytes) -> None:
        super().__init__()
        self.poison = poison

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict]) -> dict[str, Any]:
        good = [r for r in Records if self.poison not in r["Data"]]
        super().put_record_batch(DeliveryStreamName, good)
        refused = {"ErrorCode": "InternalFailure", "ErrorMessage": "KMS said no"}
        answers = [refused if self.poison in r["Data"] else {"RecordId": "x"} for r in Records]
        return {"FailedPutCount": len(Records) - len(good), "RequestResponses": answers}


def test_a_record_that_always_fails_is_set_aside_after_bounded_tries(tmp_path: Path) -> None:
    writer = Writer(tmp_path / "access.log")
    writer.write(3_000)
    poison = b"line 00001234 "
    client, now = Poisoned(poison), [1_000.0]
    ship = shipper_at(config_for(tmp_path), client, now)
    catch_up(ship, now, polls=20)  # poisonTries is 10 by default
    writer.close()
    refused = ship.outbox.pending()
    assert ship.status()["refused_lines"] == len(refused) > 0
    assert {r.reason for r in refused} == {"firehose_refused"}
    assert any(r.raw_line.encode().startswith(poison) for r in refused)
    assert ship.failures == {}  # the flow went on past it
    kept = {r.raw_line.encode() for r in refused}
    # Every line is in Firehose or set aside; neighbours resent with the poison record keep
    # their place (collapsed downstream).
    assert lost_and_doubled(writer.lines(), client.data, kept=kept) == (0, 0)
    assert not kept & set(shipped_lines(client.data))


class Hanging(Collecting):
    """Firehose timing out; SIGTERM arrives during the first call."""

    def __init__(self, ship: list[Shipper]) -> None:
        super().__init__()
        self.ship, self.calls = ship, 0

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict]) -> dict[str, Any]:
        self.calls += 1
        self.ship[0].stopping = True
        raise ReadTimeoutError(endpoint_url="https://firehose.local")


def test_sigterm_during_retries_stops_at_once_and_keeps_the_place(tmp_path: Path) -> None:
    writer = Writer(tmp_path / "access.log")
    writer.write(100)
    holder: list[Shipper] = []
    client = Hanging(holder)
    holder.append(Shipper(load_config(config_for(tmp_path)), client, RetryPolicy(attempts=8)))
    assert holder[0].run() == 0  # no 8 attempts with backoff first
    assert client.calls == 1
    writer.close()
    after = Collecting()
    shipper_at(config_for(tmp_path), after, [1_000.0]).poll_once()  # the next start
    assert lost_and_doubled(writer.lines(), after.data) == (0, 0)


def copytruncate(folder: Path, writer: Writer, in_window: int, compress: bool) -> None:
    """logrotate's copytruncate (then gzip at once, without delaycompress): the lines the
    writer logs between the copy and the truncation are in neither file."""
    log, copy = folder / "access.log", folder / "access.log.1"
    shutil.copyfile(log, copy)
    writer.write(in_window)
    log.write_bytes(b"")
    if compress:
        with copy.open("rb") as plain, gzip.open(f"{copy}.gz", "wb") as packed:
            shutil.copyfileobj(plain, packed)
        copy.unlink()


@pytest.mark.parametrize("restart", [False, True])
def test_copytruncate_with_compress_loses_only_its_window(tmp_path: Path, restart: bool) -> None:
    config, client, now = config_for(tmp_path), Flaky(), [1_000.0]
    writer = Writer(tmp_path / "access.log")
    ship = shipper_at(config, client, now)
    window = 0
    for number in range(3):
        writer.write(1_000)
        ship.poll_once()
        writer.write(700)  # unsent at rotation
        for older in sorted(tmp_path.glob("access.log.*.gz"), reverse=True):
            older.rename(tmp_path / f"access.log.{int(older.name.split('.')[2]) + 1}.gz")
        copytruncate(tmp_path, writer, in_window=number, compress=True)
        window += number
        writer.write(300)
        if restart:
            ship = shipper_at(config, client, now)
        ship.poll_once()
    catch_up(ship, now)
    writer.close()
    # The window is the one loss copytruncate cannot avoid (README: prefer `create`).
    assert lost_and_doubled(writer.lines(), client.data) == (window, 0)


def test_copytruncate_with_a_writer_without_o_append(tmp_path: Path) -> None:
    config, client, now = config_for(tmp_path), Flaky(), [1_000.0]
    writer = Writer(tmp_path / "access.log", append=False)
    ship = shipper_at(config, client, now)
    writer.write(2_000)
    ship.poll_once()
    writer.write(500)
    copytruncate(tmp_path, writer, in_window=0, compress=False)
    hole = (tmp_path / "access.log.1").stat().st_size
    writer.write(1_000)  # at its old offset: the truncated file starts with a NUL hole
    catch_up(ship, now)
    writer.close()
    assert lost_and_doubled(writer.lines(), client.data) == (0, 0)
    assert ship.status()["flows"]["web"]["nul_bytes_skipped"] == hole


@pytest.mark.parametrize("restart", [False, True])
def test_an_outage_longer_than_logrotate_keeps_its_rotations(tmp_path: Path, restart: bool) -> None:
    config, client, now = config_for(tmp_path), Flaky(), [1_000.0]
    writer = Writer(tmp_path / "access.log")
    ship = shipper_at(config, client, now)
    writer.write(200)
    ship.poll_once()
    client.down = True
    for number in range(6):  # `rotate 2`: the oldest .gz is deleted before Firehose is back
        writer.write(500)
        now[0] += 6
        if restart and number == 2:  # a new process: only .gz files left to hold open
            ship = shipper_at(config, client, now)
        ship.poll_once()
        rotate(tmp_path, keep=2)
        writer.reopen()
    assert not (tmp_path / "access.log.3.gz").exists()
    spooled = ship.status()["flows"]["web"].get("spool_bytes", 0)  # deleted, held open
    writer.write(10)  # the writer has moved on: the deleted files are finished
    client.down = False
    catch_up(ship, now)
    writer.close()
    assert lost_and_doubled(writer.lines(), client.data) == (0, 0)
    assert spooled > 0
    assert ship.status()["flows"]["web"]["spool_bytes"] == 0  # all let go once read


def test_a_full_spool_lets_the_oldest_go_loudly(tmp_path: Path) -> None:
    raw = json.loads(config_for(tmp_path).read_text())
    raw["spoolMaxBytes"] = 1  # nothing fits
    (tmp_path / "agent.json").write_text(json.dumps(raw))
    client, now = Flaky(), [1_000.0]
    writer = Writer(tmp_path / "access.log")
    ship = shipper_at(tmp_path / "agent.json", client, now)
    client.down = True
    writer.write(500)
    ship.poll_once()
    rotate(tmp_path, keep=1)
    writer.reopen()
    rotate(tmp_path, keep=1)  # the first generation's .gz is deleted
    writer.reopen()
    writer.write(10)
    client.down = False
    catch_up(ship, now)
    writer.close()
    assert ship.status()["flows"]["web"]["spool_dropped_bytes"] > 0
    assert lost_and_doubled(writer.lines(), client.data) == (500, 0)


def test_a_last_line_without_newline_ships_once_the_file_is_idle(tmp_path: Path) -> None:
    raw = json.loads(config_for(tmp_path).read_text())
    raw["finalLineIdleSeconds"] = 300
    (tmp_path / "agent.json").write_text(json.dumps(raw))
    client, now = Flaky(), [0.0]
    writer = Writer(tmp_path / "access.log")
    ship = shipper_at(tmp_path / "agent.json", client, now)
    writer.write(100)
    append(tmp_path / "access.log", "the last words", newline=False)
    mtime = (tmp_path / "access.log").stat().st_mtime
    now[0] = mtime + 299
    ship.poll_once()
    assert len(shipped_lines(client.data)) == 100  # still being written, perhaps
    now[0] = mtime + 300
    ship.poll_once()
    ship.poll_once()
    writer.close()
    assert shipped_lines(client.data)[100:] == [b"the last words"]  # once


def peak_memory_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/self/status")


def test_an_over_long_line_is_set_aside_in_bounded_memory(tmp_path: Path) -> None:
    config, client, now = config_for(tmp_path), Flaky(), [1_000.0]
    writer = Writer(tmp_path / "access.log")
    writer.write(100)
    with (tmp_path / "access.log").open("ab") as log:  # a 64 MiB line, written in pieces
        for _ in range(64):
            log.write(b"y" * (1 << 20))
        log.write(b"\n")
    writer.write(100)
    ship = shipper_at(config, client, now)
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
    before = peak_memory_kib()
    catch_up(ship, now)
    writer.close()
    assert peak_memory_kib() - before < 40 * 1024  # far less than the line
    assert lost_and_doubled(writer.lines(), client.data) == (0, 0)
    [kept] = ship.outbox.pending()
    assert kept.bytes == 64 << 20 and len(kept.raw_line) == KEEP_OF_LONG_LINE


def test_a_checkpoint_and_its_previous_generation_both_torn_resend_under_the_same_places(
    tmp_path: Path,
) -> None:
    config, client, now = config_for(tmp_path), Flaky(), [1_000.0]
    writer = Writer(tmp_path / "access.log")
    ship = shipper_at(config, client, now)
    for _ in range(6):  # each poll reads to where the file ended: six records, cut apart
        writer.write(1_000)
        ship.poll_once()
    checkpoint = load_config(config).checkpoint_path(load_config(config).flows[0])
    for generation in (checkpoint, Path(f"{checkpoint}.prev")):
        generation.write_bytes(b'{"1:2": {"path": "acc')  # power lost during both writes
    ship = shipper_at(config, client, now)  # reads the file again from its start, at once
    catch_up(ship, now)
    writer.close()
    assert lost_and_doubled(writer.lines(), client.data) == (0, 0)
    places = [place for place, _ in unwrap(client.data)]
    assert (len(places), len(set(places))) == (12_000, 6_000)  # every line resent, same place
    assert ship.status()["flows"]["web"]["checkpoint_recovered"]


def test_a_hung_call_ends_within_the_units_stop_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGTERM ends the retries at once (above); the call in flight is bounded by the
    # client's own timeouts, with no hidden retries, inside what systemd waits for.
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    unit = (REPO_ROOT / "agent" / "deploy" / "shoplogs-shipper.service").read_text()
    stop_seconds = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M)[1])  # type: ignore[index]
    client = firehose_client(load_config(config_for(tmp_path)))
    bounded = client.meta.config
    assert bounded.retries["total_max_attempts"] == 1
    assert bounded.connect_timeout + bounded.read_timeout < stop_seconds


def test_a_written_nul_region_is_skipped_in_bounded_memory(tmp_path: Path) -> None:
    config, client, now = config_for(tmp_path), Flaky(), [1_000.0]
    log = tmp_path / "access.log"
    writer = Writer(log)
    writer.write(100)
    ship = shipper_at(config, client, now)
    ship.poll_once()
    hole = 20 << 20
    with log.open("r+b") as rewritten:  # truncated, then 20 MiB of NUL bytes written out
        rewritten.truncate(0)
        for _ in range(hole >> 16):
            rewritten.write(bytes(1 << 16))
    writer.write(100)  # O_APPEND: after the NUL region
    Path("/proc/self/clear_refs").write_text("5")
    before = peak_memory_kib()
    catch_up(ship, now)
    writer.close()
    assert peak_memory_kib() - before < 8 * 1024  # far less than the region
    assert lost_and_doubled(writer.lines(), client.data) == (0, 0)
    assert ship.status()["flows"]["web"]["nul_bytes_skipped"] == hole
