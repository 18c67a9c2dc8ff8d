"""Fault-injection machinery: a writer process logging numbered lines, logrotate's moves,
and an exact count of what the shipper lost and what it sent twice under a new place."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from botocore.exceptions import EndpointConnectionError

from shoplogs_agent.identity import FINGERPRINT_BYTES, fingerprint
from tests.agent.records import unwrap
from tests.agent.test_shipper import Collecting

# Reads commands on stdin: "write <n>" appends the next n numbered lines through the open
# descriptor (O_APPEND, as loggers do; or at its own offset, as a writer without it),
# "reopen" opens its log again by name (after a rotation), "partial <text>" writes without
# a newline; answers "ok" after each.
WRITER = r"""
import sys
import os
path, prefix, append = sys.argv[1], sys.argv[2], sys.argv[3] == "append"
def reopen():
    if append:
        return open(path, "ab", buffering=0)
    handle = open(path, "r+b" if os.path.exists(path) else "w+b", buffering=0)
    handle.seek(0, os.SEEK_END)  # then writes at its own offset, whatever the file's size
    return handle
handle, number = reopen(), 0
for command in sys.stdin:
    verb, _, arg = command.strip().partition(" ")
    if verb == "write":
        lines = []
        for _ in range(int(arg)):
            lines.append(("%s %08d %s\n" % (prefix, number, "x" * 40)).encode())
            number += 1
        handle.write(b"".join(lines))
    elif verb == "reopen":
        handle.close()
        handle = reopen()
    elif verb == "partial":
        handle.write(arg.encode())
    print("ok", flush=True)
"""


class Writer:
    """An application process logging numbered lines to ``path``."""

    def __init__(self, path: Path, prefix: str = "line", append: bool = True) -> None:
        self.prefix = prefix
        self.written = 0
        self.process = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), prefix, "append" if append else "seek"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def _say(self, command: str) -> None:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "ok"

    def write(self, count: int) -> None:
        self._say(f"write {count}")
        self.written += count

    def reopen(self) -> None:
        self._say("reopen")

    def close(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        self.process.wait(timeout=10)

    def lines(self) -> set[bytes]:
        return {b"%s %08d %s" % (self.prefix.encode(), n, b"x" * 40) for n in range(self.written)}


def rotate(folder: Path, name: str = "access.log", compress: bool = True, keep: int = 0) -> None:
    """logrotate's create rotation: shift ``.N(.gz)`` up, rename the log to ``.1`` and,
    with ``compress`` (no delaycompress), gzip ``.1`` at once and delete it; with ``keep``
    (``rotate N``), delete the rotations past the ``keep`` newest."""
    suffix = ".gz" if compress else ""
    numbered = sorted(folder.glob(f"{name}.*"), key=lambda p: -int(p.name.split(".")[2]))
    for older in numbered:
        number = int(older.name.split(".")[2])
        older.rename(folder / f"{name}.{number + 1}{suffix if older.name.endswith('.gz') else ''}")
    (folder / name).rename(folder / f"{name}.1")
    (folder / name).touch()
    if compress:
        plain = folder / f"{name}.1"
        with plain.open("rb") as source, gzip.open(f"{plain}.gz", "wb") as packed:
            shutil.copyfileobj(source, packed)
        plain.unlink()
    for older in folder.glob(f"{name}.*"):
        if keep and int(older.name.split(".")[2]) > keep:
            older.unlink()


class Flaky(Collecting):
    """Firehose that is unreachable while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict]) -> dict[str, Any]:
        if self.down:
            raise EndpointConnectionError(endpoint_url="https://firehose.local")
        return super().put_record_batch(DeliveryStreamName, Records)


def lost_and_doubled(
    written: set[bytes], data: bytes, kept: set[bytes] | frozenset[bytes] = frozenset()
) -> tuple[int, int]:
    """Lines written but never delivered, and lines delivered under more than one place
    (a resend the pipeline cannot tell from a new event); foreign lines fail the count.
    ``kept``: lines set aside elsewhere (a quarantined file), not lost if not delivered."""
    places: dict[bytes, set[Any]] = defaultdict(set)
    for place, line in unwrap(data):
        places[line].add(place)
    foreign = sorted(set(places) - written)
    assert not foreign, [(len(line), line[:40], line[-40:]) for line in foreign[:3]]
    return len(written - kept - set(places)), sum(len(p) > 1 for p in places.values())


def misplaced(data: bytes, generations: list[bytes]) -> list[bytes]:
    """Delivered lines not under their own place: the fingerprint of the file they were
    written to and their byte offset in it (``generations``: each file's whole content), so
    a resend after a restart is the very place the first process sent or would have sent."""
    own: dict[bytes, tuple[str, int]] = {}
    for content in generations:
        mark, offset = fingerprint(content[:FINGERPRINT_BYTES]), 0
        for line in content.split(b"\n")[:-1]:
            own[line] = (mark, offset)
            offset += len(line) + 1
    return [line for place, line in unwrap(data) if place is None or place[1:] != own.get(line)]
