"""Follow growing log files the way the Kinesis Agent does, resumable after a crash.

Positions are checkpointed per file *identity* (device + inode), not per name, so a
restart resumes exactly where the last acknowledged batch ended, and rotation is followed:

- rename-and-create (logrotate's default): the old inode keeps its checkpoint under its new
  name (``access.log.1``) and is read to its end; the new ``access.log`` is a new inode,
  read from its start.
- copytruncate: the inode stays but the file is rewritten (it shrank below the checkpoint,
  or its first bytes changed, when it refilled past the old size before we looked); the
  tail that was copied into ``<name>.1`` before the truncation is read from there, then the
  live file from 0.

A checkpoint moves only after Firehose acknowledged the lines, so a crash can resend a
batch (removed downstream by event id) but never skips one.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from shoplogs_agent.identity import FINGERPRINT_BYTES, fingerprint

HEAD_BYTES = 64


@dataclass
class Position:
    path: str  # last name seen, for people reading the checkpoint file
    offset: int
    head: str = ""  # hex of the file's first bytes: tells a rewritten file from a grown one


def file_head(path: str, limit: int = HEAD_BYTES) -> str:
    with open(path, "rb") as handle:
        return handle.read(limit).hex()


def identity(stat: os.stat_result) -> str:
    return f"{stat.st_dev}:{stat.st_ino}"


class Checkpoints:
    """``{"<dev>:<inode>": {"path": ..., "offset": ...}}`` in a JSON file, replaced atomically."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.positions: dict[str, Position] = {}
        if file.exists():
            raw = json.loads(file.read_text() or "{}")
            self.positions = {key: Position(**value) for key, value in raw.items()}

    @property
    def is_new(self) -> bool:
        return not self.file.exists()

    def save(self) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: asdict(v) for k, v in self.positions.items()}, indent=1))
        os.replace(tmp, self.file)  # atomic: a crash leaves the old or the new file, whole


@dataclass
class Chunk:
    """Complete lines read from one file, and where its checkpoint goes once they are sent."""

    key: str
    path: str
    data: bytes
    end: int
    fingerprint: str  # of the file: where its lines come from (identity.py)
    head: str  # the file's first bytes, for the checkpoint

    @property
    def start(self) -> int:
        return self.end - len(self.data)


def read_complete_lines(path: str, start: int, max_bytes: int, final: bool = False) -> bytes:
    """Bytes from ``start`` up to the last newline within ``max_bytes``.

    A line still being written (no newline yet) waits for the next poll, unless ``final``:
    a rotated-away file gets no more writes, so its last line is complete as it is. A single
    line longer than ``max_bytes`` is read whole (to be set aside), so it cannot stall the
    file behind it.
    """
    with open(path, "rb") as handle:
        return complete_lines(handle, start, max_bytes, final)


def complete_lines(handle: BinaryIO, start: int, max_bytes: int, final: bool = False) -> bytes:
    """``read_complete_lines`` from a file already open."""
    handle.seek(start)
    data = handle.read(max_bytes)
    while data and b"\n" not in data and len(data) % max_bytes == 0:
        more = handle.read(max_bytes)
        if not more:
            break
        data += more
    cut = data.rfind(b"\n")
    if final and (cut < 0 or len(data) < max_bytes):
        return data
    return data[: cut + 1] if cut >= 0 else b""


class Tailer:
    """Finds what is new in the files of one pattern (``/var/log/shop/access.log*``)."""

    def __init__(self, pattern: str, checkpoints: Checkpoints, start_at_end: bool = False) -> None:
        self.pattern = pattern
        self.checkpoints = checkpoints
        self.live = pattern.rstrip("*")  # the name the application writes to
        # Only on the very first start may the live file begin at its end (initialPosition
        # END_OF_FILE); any file that appears later is new and is read from its start.
        self.start_at_end = start_at_end and checkpoints.is_new

    def files(self) -> list[tuple[str, os.stat_result]]:
        """Plain files of the pattern, oldest first; compressed rotations were read before
        they were compressed."""
        found = []
        for name in glob.glob(self.pattern):
            if name.endswith(".gz"):
                continue
            try:
                found.append((name, os.stat(name)))
            except FileNotFoundError:
                continue  # rotated away between glob and stat
        return sorted(found, key=lambda item: (item[1].st_mtime_ns, item[0] == self.live))

    def _handle_truncation(self, key: str, name: str) -> None:
        """copytruncate: the lines past our offset were copied into ``<name>.1`` before
        the truncation; read them from there, and the live file again from 0."""
        sent = self.checkpoints.positions[key].offset
        self.checkpoints.positions[key] = Position(name, 0)
        copy = f"{name}.1"
        if os.path.exists(copy):
            copied = identity(os.stat(copy))
            self.checkpoints.positions.setdefault(copied, Position(copy, sent, file_head(copy)))

    def _rewritten(self, name: str, stat: os.stat_result, position: Position) -> bool:
        if stat.st_size < position.offset:
            return True
        head = position.head
        return bool(head) and file_head(name, len(head) // 2) != head

    def next_chunk(self, max_bytes: int) -> Chunk | None:
        """The oldest unsent complete lines, or None when every file is caught up."""
        first_start = self.start_at_end
        self.start_at_end = False
        files = self.files()
        truncated = False
        for name, stat in files:
            position = self.checkpoints.positions.get(identity(stat))
            if position and position.offset and self._rewritten(name, stat, position):
                self._handle_truncation(identity(stat), name)
                truncated = True
        # Only after a truncation is a second look needed: its copy now has a checkpoint.
        for name, stat in self.files() if truncated else files:
            key = identity(stat)
            position = self.checkpoints.positions.get(key)
            if position is None:
                # On the very first start with END_OF_FILE, what exists is history.
                position = Position(name, stat.st_size if first_start else 0)
                self.checkpoints.positions[key] = position
            position.path = name
            if stat.st_size <= position.offset:
                continue
            chunk = self._read(name, key, position.offset, max_bytes)
            if chunk:
                return chunk
        return None

    def _read(self, name: str, key: str, offset: int, max_bytes: int) -> Chunk | None:
        """New lines of the file listed as ``name``, read from one open descriptor that is
        checked to be that file: a rotation between listing and opening must not read
        another file's lines under this file's checkpoint."""
        try:
            handle = open(name, "rb")  # noqa: SIM115 (closed below, also on every return)
        except FileNotFoundError:
            return None  # rotated away since the listing; the next poll finds it
        with handle:
            if identity(os.fstat(handle.fileno())) != key:
                return None
            data = complete_lines(handle, offset, max_bytes, final=name != self.live)
            if not data:
                return None
            handle.seek(0)
            first = handle.read(FINGERPRINT_BYTES)
        end = offset + len(data)
        return Chunk(key, name, data, end, fingerprint(first), first[: min(end, HEAD_BYTES)].hex())

    def commit(self, chunk: Chunk) -> None:
        self.checkpoints.positions[chunk.key] = Position(chunk.path, chunk.end, chunk.head)
        self.checkpoints.save()

    def forget_missing(self) -> None:
        """Drop checkpoints of files that no longer exist (deleted by logrotate)."""
        alive = {identity(stat) for _, stat in self.files()}
        for key in list(self.checkpoints.positions):
            if key not in alive:
                del self.checkpoints.positions[key]

    def lag(self) -> dict[str, int]:
        """Bytes not yet sent, per file."""
        lag = {}
        for name, stat in self.files():
            position = self.checkpoints.positions.get(identity(stat))
            lag[name] = stat.st_size - (position.offset if position else 0)
        return lag
