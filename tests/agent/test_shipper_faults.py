"""The shipper under faults (issue 27): a writer process logs numbered lines while logrotate
rotates, Firehose fails and the shipper stops; every line is counted at the end: none lost,
none sent twice under a new place."""

from __future__ import annotations

from pathlib import Path

from shoplogs_agent.firehose import RetryPolicy
from shoplogs_agent.shipper import Shipper, load_config
from tests.agent.faults import Flaky, Writer, lost_and_doubled, rotate
from tests.agent.test_shipper import config_for

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
