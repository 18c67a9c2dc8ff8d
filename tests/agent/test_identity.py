"""Every shipped line travels with its place (host, file fingerprint, offset): a resend
carries the same place, two identical lines at different offsets carry different ones."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

from shoplogs_agent.files import ship_file
from shoplogs_agent.firehose import MAX_RECORD_BYTES, ShipStats, pack_buffer
from shoplogs_agent.identity import Origin, file_fingerprint
from shoplogs_agent.shipper import Shipper, load_config
from tests.agent.records import unwrap
from tests.agent.test_shipper import Collecting

SAME = b'10.0.0.1 - - [01/Nov/2015:10:00:00 +0000] "GET /poll HTTP/1.1" 200 5 "-" "x"\n'


def packed(data: bytes, offset: int = 0, max_record: int = MAX_RECORD_BYTES) -> bytes:
    origin = Origin("web-1", "f1", offset)
    return b"".join(r.data for r in pack_buffer(data, ShipStats(), max_record, origin))


def test_identical_lines_get_their_own_places_and_a_resend_the_same_ones() -> None:
    data = b"first\n" + SAME * 3 + b"last\n"
    sent = unwrap(packed(data, offset=100))
    assert [line for _, line in sent] == data.splitlines()
    places = [place for place, _ in sent]
    starts = [100 + data.index(line) for line in (b"first", SAME, SAME, SAME, b"last")]
    starts[2:4] = [starts[1] + len(SAME), starts[1] + 2 * len(SAME)]
    assert places == [("web-1", "f1", start) for start in starts]  # each line's byte offset
    assert unwrap(packed(data, offset=100)) == sent  # resent from the same checkpoint
    # Small records: the lines land in other records, and keep their places (a re-read
    # after a lost checkpoint cuts records elsewhere; its resends still collapse).
    assert unwrap(packed(data, offset=100, max_record=len(SAME) * 2 + 600)) == sent


def test_a_line_holding_the_separator_travels_alone_and_whole() -> None:
    data = b"a\nodd \x1d byte\nb\n"
    assert [line for _, line in unwrap(packed(data))] == [b"a", b"odd \x1d byte", b"b"]


def test_a_lone_carriage_return_is_part_of_its_line() -> None:
    for data in (b"a\rstill a\nb\n", b"a\rstill a\n\nb\n"):  # without and with an empty line
        stats = ShipStats()
        body = b"".join(r.data for r in pack_buffer(data, stats))
        assert stats.lines_read == data.count(b"\n") and body.split(b"\n")[0] == b"a\rstill a"


def test_the_fingerprint_survives_rename_copy_and_gzip(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(SAME + b"more\n")
    before = file_fingerprint(log)
    shutil.copyfile(log, tmp_path / "access.log.1")
    (tmp_path / "access.log.2.gz").write_bytes(gzip.compress(log.read_bytes()))
    log.rename(tmp_path / "renamed.log")
    assert {file_fingerprint(tmp_path / n) for n in ("renamed.log", "access.log.1",
                                                     "access.log.2.gz")} == {before}  # fmt: skip
    (tmp_path / "other.log").write_bytes(b"another first line\n" + SAME)
    assert file_fingerprint(tmp_path / "other.log") != before


def test_shipping_a_file_whole_or_by_tailing_it_gives_the_same_places(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"".join(b"line %d\n" % (n % 7) for n in range(20_000)))
    whole = Collecting()
    ship_file(whole, "web", log, host="web-1")
    config = tmp_path / "agent.json"
    config.write_text(json.dumps({
        "checkpointFile": str(tmp_path / "state" / "checkpoints"), "hostId": "web-1",
        "flows": [{"filePattern": str(log), "deliveryStream": "web"}],
    }))  # fmt: skip
    tailed = Collecting()
    Shipper(load_config(config), tailed).poll_once()
    assert unwrap(whole.data) == unwrap(tailed.data)
    assert len({place for place, _ in unwrap(whole.data)}) == 20_000
