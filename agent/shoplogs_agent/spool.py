"""The spool: the unsent part of a deleted log, copied to local disk before the shipper lets
go of the file, so that it outlives the process (issue 27).

An entry is one file in ``<checkpoint file>.spool/``, named ``<sequence>-<dev>-<inode>``
(the sequence orders them oldest first): a JSON header line saying where its bytes come
from (the file's identity key and name when it was spooled, its fingerprint and head, and
the offset in that file the copied bytes start at), then the bytes as they were in the
file. Read at those offsets, its lines travel under the places the first process would
have given them, so a line sent twice collapses downstream. An entry is written under a
temporary name, fsynced, renamed and its folder fsynced: it is there whole or not at all.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from shoplogs_agent.durable import fsync_folder, write_all

SPOOL = "spool:"  # checkpoint key prefix of an entry's progress: "spool:<entry name>"
INCOMING = ".incoming"  # the entry being written (one at a time per flow)
ENTRY_NAME = re.compile(r"^(\d{12})-")
HEADER_LIMIT = 64 * 1024  # a header is a few KiB (the head's hex); more is not a header
COPY_BLOCK = 1 << 20
log = logging.getLogger("shoplogs.shipper")


@dataclass(frozen=True)
class SpoolHeader:
    key: str  # the file's identity (dev:inode) in the checkpoint when it was spooled
    path: str  # its name then
    offset: int  # where in the file (uncompressed) the copied bytes start
    fingerprint: str  # of the file (identity.py): part of every line's place
    head: str  # hex of the file's first bytes: a .gz of it is recognised by them


@dataclass(frozen=True)
class Entry:
    file: Path
    header: SpoolHeader
    data_start: int  # where the copied bytes start in the entry's file
    size: int  # bytes copied

    @property
    def key(self) -> str:
        return f"{SPOOL}{self.file.name}"

    @property
    def end(self) -> int:
        """The offset in the original file the copied bytes end at."""
        return self.header.offset + self.size

    def disk_bytes(self) -> int:
        try:
            return os.stat(self.file).st_blocks * 512
        except OSError:
            return 0


def parse_header(line: bytes) -> SpoolHeader:
    """An entry's header from its first line; raises ValueError on anything else."""
    try:
        header = SpoolHeader(**json.loads(line))
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a spool header: {exc}") from exc
    if not isinstance(header.offset, int) or header.offset < 0:
        raise ValueError("the offset is not a non-negative integer")
    return header


def read_entry(file: Path) -> Entry:
    with open(file, "rb") as handle:
        line = handle.readline(HEADER_LIMIT)
        if not line.endswith(b"\n"):
            raise ValueError("no header line")
        size = os.fstat(handle.fileno()).st_size - len(line)
    return Entry(file, parse_header(line), len(line), size)


class Spool:
    """A flow's spool entries, oldest first; this process is their only writer."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.unreadable: dict[str, str] = {}  # entry file -> why it cannot be read
        self.last = 0  # the highest sequence number in the folder, readable or not
        self.entries = self._load()

    def _load(self) -> list[Entry]:
        try:
            names = sorted(n for n in os.listdir(self.folder) if ENTRY_NAME.match(n))
        except OSError:
            return []  # none yet; a folder that cannot be made is reported when written
        self.last = max((int(name.split("-", 1)[0]) for name in names), default=0)
        entries = []
        for name in names:
            try:
                entries.append(read_entry(self.folder / name))
            except FileNotFoundError:
                continue  # sent and removed meanwhile (``status`` beside a running shipper)
            except (OSError, ValueError) as exc:
                self.unreadable[str(self.folder / name)] = f"{type(exc).__name__}: {exc}"
                log.error("spool entry %s cannot be read (%s): left where it is", name, exc)
        return entries

    def keys(self) -> set[str]:
        return {entry.key for entry in self.entries}

    def find(self, key: str) -> Entry | None:
        return next((entry for entry in self.entries if entry.key == key), None)

    def disk_bytes(self) -> int:
        return sum(entry.disk_bytes() for entry in self.entries)

    def sweep(self) -> None:
        """An entry a crash left half-written is not an entry: removed (by the shipper only,
        never by ``status``, which may run beside it)."""
        with contextlib.suppress(OSError):
            (self.folder / INCOMING).unlink()

    def add(self, header: SpoolHeader, source: IO[bytes] | gzip.GzipFile) -> Entry | None:
        """Copy ``source`` from ``header.offset`` to its end into a new entry, durably; None
        when there was nothing to copy. Raises OSError (disk full, read-only) and leaves no
        entry behind then."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        incoming = self.folder / INCOMING
        file = self.folder / f"{self.last + 1:012d}-{header.key.replace(':', '-')}"
        line = json.dumps(asdict(header)).encode() + b"\n"
        try:
            size = copy_into(incoming, line, source, header.offset)
            if not size:
                incoming.unlink()
                return None
            os.rename(incoming, file)
            fsync_folder(self.folder)
        except BaseException:
            with contextlib.suppress(OSError):
                incoming.unlink()
            raise
        entry = Entry(file, header, len(line), size)
        self.entries.append(entry)
        self.last += 1
        return entry

    def remove(self, entry: Entry) -> None:
        """An entry sent to its end (its checkpoint saved past it) goes."""
        try:
            entry.file.unlink()
            fsync_folder(self.folder)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.error("spool entry %s sent but not removed (%s): tried again", entry.file, exc)
            return
        self.entries.remove(entry)


def copy_into(target: Path, line: bytes, source: IO[bytes] | gzip.GzipFile, offset: int) -> int:
    """Write ``line``, then ``source`` from ``offset`` to its end, to ``target`` and fsync
    it; returns the bytes copied from ``source``. Bounded memory: one block at a time."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    copied = 0
    try:
        write_all(fd, line)
        source.seek(offset)
        while block := source.read(COPY_BLOCK):
            write_all(fd, block)
            copied += len(block)
        os.fsync(fd)
    finally:
        os.close(fd)
    return copied
