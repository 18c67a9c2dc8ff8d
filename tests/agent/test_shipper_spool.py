"""A spool that survives a restart (issue 27): a rotation deleted while Firehose is down is
copied to local disk before the shipper lets go of it, and the next process sends it under
the very places the first one would have used, so nothing is lost and a resend collapses
downstream."""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

import pytest

from shoplogs_agent.shipper import Shipper, load_config
from tests.agent.faults import Flaky, Writer, lost_and_doubled, misplaced, rotate
from tests.agent.records import unwrap
from tests.agent.test_shipper import config_for
from tests.agent.test_shipper_faults import catch_up, shipper_at


class Stopping(Flaky):
    """Firehose that may be down; with ``sigterm`` set, systemd's stop (SIGTERM to the
    shipper's own process) arrives during the next call."""

    def __init__(self) -> None:
        super().__init__()
        self.sigterm = False

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict]) -> dict[str, Any]:
        if self.sigterm:
            self.sigterm = False
            os.kill(os.getpid(), signal.SIGTERM)  # taken by the handler Shipper.run installs
        return super().put_record_batch(DeliveryStreamName, Records)


@pytest.fixture
def own_signal_handlers() -> Iterator[None]:
    """Shipper.run installs its SIGTERM and SIGINT handlers: the test runner's come back."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def stop_with_sigterm(ship: Shipper, client: Stopping, now: list[float]) -> None:
    client.sigterm = True
    now[0] += 60  # past the failing flow's retry time: the next poll calls Firehose
    assert ship.run() == 0


def spool_folder(config: Path) -> Path:
    loaded = load_config(config)
    return Path(f"{loaded.checkpoint_path(loaded.flows[0])}.spool")


def contents(generations: list[IO[bytes]]) -> list[bytes]:
    """Each log file's whole content, read through a descriptor opened while it existed."""
    found = [handle.read() for handle in generations]
    for handle in generations:
        handle.close()
    return found


class Outage(NamedTuple):
    """A live log with ``sent`` lines shipped, then Firehose down and ``unsent`` more
    written and polled: the start every restart scenario here shares."""

    config: Path
    client: Stopping
    now: list[float]
    log: Path
    writer: Writer
    ship: Shipper
    generations: list[IO[bytes]]  # a descriptor on each log file, to read it when gone


def outage(tmp_path: Path, sent: int, unsent: int) -> Outage:
    config, client, now = config_for(tmp_path), Stopping(), [1_000.0]
    log = tmp_path / "access.log"
    writer = Writer(log)
    ship = shipper_at(config, client, now)
    writer.write(sent)
    ship.poll_once()  # sent
    generations = [log.open("rb")]
    client.down = True
    writer.write(unsent)
    ship.poll_once()  # not sent; the log is held open
    return Outage(config, client, now, log, writer, ship, generations)


def test_a_log_deleted_during_an_outage_survives_sigterm_and_a_restart(
    tmp_path: Path, own_signal_handlers: None
) -> None:
    config, client, now, log, writer, ship, generations = outage(tmp_path, sent=1_000, unsent=500)
    log.unlink()  # a plain delete; the writer still writes into the deleted file
    writer.write(500)
    now[0] += 1
    ship.poll_once()
    stop_with_sigterm(ship, client, now)  # before the writer opened its log again
    writer.reopen()
    writer.write(300)
    generations.append(log.open("rb"))
    client.down = False
    restarted = shipper_at(config, client, now)  # the next process
    assert restarted.status()["flows"]["web"]["spool_bytes"] >= 1_000 * 55
    catch_up(restarted, now)
    writer.close()
    assert lost_and_doubled(writer.lines(), client.data) == (0, 0)
    assert misplaced(client.data, contents(generations)) == []
    assert restarted.status()["flows"]["web"]["spool_bytes"] == 0
    assert not list(spool_folder(config).iterdir())  # entries go once sent


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_rotations_compressed_and_deleted_during_an_outage_survive_a_restart(
    tmp_path: Path, own_signal_handlers: None, stop: str
) -> None:
    config, client, now, log, writer, ship, generations = outage(tmp_path, sent=1_000, unsent=500)
    for _ in range(2):  # `compress` and `rotate 1`: the second deletes the first one's .gz
        rotate(tmp_path, keep=1)
        writer.reopen()
        writer.write(500)
        generations.append(log.open("rb"))
        now[0] += 1
        ship.poll_once()  # the flow waits out the outage
    assert not (tmp_path / "access.log.2.gz").exists()
    if stop == "sigterm":
        stop_with_sigterm(ship, client, now)
    # sigkill: no close, no last save; the next process sees only what is on disk (the
    # held descriptors of this one are beyond its reach).
    client.down = False
    restarted = shipper_at(config, client, now)
    catch_up(restarted, now)
    writer.close()
    assert lost_and_doubled(writer.lines(), client.data) == (0, 0)
    assert misplaced(client.data, contents(generations)) == []
    # The .gz of a spooled file waited for its entry, then had nothing left: none resent.
    assert len(unwrap(client.data)) == writer.written
    assert not list(spool_folder(config).iterdir())


def test_a_spool_that_cannot_be_written_logs_one_error_and_keeps_the_files_held(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config, client, now = config_for(tmp_path), Stopping(), [1_000.0]
    folder = spool_folder(config)
    folder.parent.mkdir(parents=True)
    folder.write_bytes(b"")  # a file where the folder goes: no entry can be written there
    writer = Writer(tmp_path / "access.log")
    ship = shipper_at(config, client, now)
    writer.write(1_000)
    ship.poll_once()
    client.down = True
    writer.write(500)
    ship.poll_once()
    for _ in range(3):
        rotate(tmp_path, keep=1)
        writer.reopen()
        writer.write(100)
        now[0] += 1
        ship.poll_once()  # no crash, no loop
    spool_errors = [
        r for r in caplog.records if r.levelno >= logging.ERROR and "spool" in str(r.msg)
    ]  # the format, not the folder's test-named path
    assert len(spool_errors) == 1
    assert str(folder) in ship.status()["flows"]["web"]["spool_error"]
    client.down = False
    catch_up(ship, now)  # read through the descriptors still held, as without a spool
    writer.close()
    assert lost_and_doubled(writer.lines(), client.data) == (0, 0)


def test_a_spool_over_its_limit_lets_the_oldest_entries_go_loudly(
    tmp_path: Path, own_signal_handlers: None, caplog: pytest.LogCaptureFixture
) -> None:
    config, client, now = config_for(tmp_path), Stopping(), [1_000.0]
    log = tmp_path / "access.log"
    writer = Writer(log)
    ship = shipper_at(config, client, now)
    client.down = True
    writer.write(500)
    ship.poll_once()
    log.unlink()
    stop_with_sigterm(ship, client, now)  # the 500 lines go into the spool
    writer.reopen()
    writer.write(10)
    raw = json.loads(config.read_text())
    raw["spoolMaxBytes"] = 1  # restarted with a smaller limit: the entry does not fit
    config.write_text(json.dumps(raw))
    client.down = False
    restarted = shipper_at(config, client, now)
    catch_up(restarted, now)
    writer.close()
    assert restarted.status()["flows"]["web"]["spool_dropped_bytes"] >= 500 * 55
    assert any(r.levelno == logging.CRITICAL for r in caplog.records)
    assert lost_and_doubled(writer.lines(), client.data) == (500, 0)
    assert not list(spool_folder(config).iterdir())


def test_a_spool_that_cannot_be_written_at_exit_says_what_is_lost_and_restarts(
    tmp_path: Path, own_signal_handlers: None, caplog: pytest.LogCaptureFixture
) -> None:
    config, client, now = config_for(tmp_path), Stopping(), [1_000.0]
    folder = spool_folder(config)
    folder.parent.mkdir(parents=True)
    folder.write_bytes(b"")  # a file where the folder goes
    log = tmp_path / "access.log"
    writer = Writer(log)
    ship = shipper_at(config, client, now)
    client.down = True
    writer.write(500)
    ship.poll_once()
    log.unlink()
    stop_with_sigterm(ship, client, now)  # exits as usual, not a crash
    [lost] = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert str(log) in lost.getMessage() and "lost" in lost.getMessage()
    writer.reopen()
    writer.write(10)
    client.down = False
    catch_up(shipper_at(config, client, now), now)  # the next start ships the rest
    writer.close()
    # What only the held descriptor had is gone with the process, as without a spool.
    assert lost_and_doubled(writer.lines(), client.data) == (500, 0)


def test_a_spool_read_in_part_before_a_crash_resumes_under_the_same_places(
    tmp_path: Path, own_signal_handlers: None
) -> None:
    config, client, now, log, writer, ship, generations = outage(tmp_path, sent=100, unsent=2_000)
    log.unlink()
    stop_with_sigterm(ship, client, now)
    writer.reopen()
    writer.write(10)
    generations.append(log.open("rb"))
    client.down = False
    second = shipper_at(config, client, now)
    second.poll_once(max_bytes=16 * 1024)  # some of the entry sent and committed, then
    # the process dies (SIGKILL: no close); the next one resumes inside the entry
    sent_before = len(unwrap(client.data))
    assert 0 < sent_before < 2_110
    third = shipper_at(config, client, now)
    catch_up(third, now)
    writer.close()
    assert lost_and_doubled(writer.lines(), client.data) == (0, 0)
    assert misplaced(client.data, contents(generations)) == []
    assert len(unwrap(client.data)) == 2_110  # resumed at its checkpoint: nothing resent
