"""Follow growing log files the way the Kinesis Agent does, resumable after a crash.

Positions are checkpointed per file *identity* (device + inode), not per name, so a
restart resumes exactly where the last acknowledged batch ended, and rotation is followed:

- rename-and-create (logrotate's default): the old inode keeps its checkpoint under its new
  name (``access.log.1``) and is read to its end; the new ``access.log`` is a new inode,
  read from its start. Its last line, if unterminated, is complete only once the writer has
  moved on (the live file got newer data) or the file has been quiet for a grace period.
- copytruncate: the inode stays but the file is rewritten (it shrank below the checkpoint,
  or its first bytes changed). A copy is recognised by its first bytes (the fingerprint
  kept with every checkpoint), so it resumes at the offset of the file it was copied from,
  whichever generation that was, and a copy seen before the truncation is not sent again.
- compress without delaycompress: a rotation gzipped and deleted before it was read to its
  end is read on through the descriptor held on it, or, after a restart, found by its head
  (kept in the checkpoint once the file is gone) in its ``.gz`` and read on from there; a
  ``.gz`` of a file never seen is read from its start.
- a plain delete: the held descriptor reads the file to its end.

A deleted file still holding unsent lines is copied to the spool (spool.py) before it is let
go: at shutdown, and while its flow waits out an outage once its writer has moved on. The
next process reads the spool first, at the original offsets, under the original places.

Every file is opened once and its identity taken from the open descriptor, so a rotation
between listing and reading cannot put lines under another file's checkpoint.

A checkpoint moves only after Firehose acknowledged the lines, so a crash can resend the
batches of a flow's turn (removed downstream by event id) but never skips one. Checkpoint
files are fsynced and the previous generation is kept, so a torn file after power loss falls
back to it.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import json
import logging
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Union

from shoplogs_agent.durable import fsync_folder, write_durably
from shoplogs_agent.identity import FINGERPRINT_BYTES, fingerprint
from shoplogs_agent.spool import SPOOL, Entry, Spool, SpoolHeader

# A file's first bytes, kept with its checkpoint: long enough that logs whose lines share a
# long constant prefix (bunyan's JSON, say) still differ (64 bytes did not).
HEAD_BYTES = 1024
MIN_HEAD_BYTES = 64  # a shorter head proves too little to call a file a copy of another
GONE = "gone:"  # checkpoint key prefix of a file that was deleted: its .gz resumes there
KEEP_GONE = 64  # only recent rotations matter
# Of a line too long for any record, the part read and set aside (more than a record holds,
# so it can never be shipped cut).
KEEP_OF_LONG_LINE = 4 * 1024 * 1024
# Deleted, unsent files held open and the spool's entries, per flow (spoolMaxBytes).
SPOOL_MAX_BYTES = 2 << 30
SPOOL_RETRY_SECONDS = 60.0  # after a spool write failed (disk full, read-only)
# A plain log, or a compressed rotation read through gzip (Union: the hosts run Python 3.9).
Source = Union[IO[bytes], gzip.GzipFile]
ROTATION_GRACE_SECONDS = 30.0
log = logging.getLogger("shoplogs.shipper")


@dataclass
class Position:
    path: str  # last name seen, for people reading the checkpoint file
    offset: int
    head: str = ""  # hex of the file's first bytes: tells a rewritten file from a grown one


def identity(stat: os.stat_result) -> str:
    return f"{stat.st_dev}:{stat.st_ino}"


def is_compressed(name: str) -> bool:
    return name.endswith(".gz")


def read_head(handle: Source, limit: int = HEAD_BYTES) -> bytes:
    handle.seek(0)
    return handle.read(limit)


def parse_positions(text: bytes) -> dict[str, Position]:
    """Checkpoints from their JSON form; raises ValueError on anything torn or foreign."""
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    try:
        positions = {key: Position(**value) for key, value in raw.items()}
    except TypeError as exc:
        raise ValueError(str(exc)) from exc
    if not all(isinstance(p.offset, int) and p.offset >= 0 for p in positions.values()):
        raise ValueError("an offset is not a non-negative integer")
    return positions


class CheckpointUnwritable(OSError):
    """A checkpoint cannot be saved (disk full, read-only, immutable)."""


class Checkpoints:
    """``{"<dev>:<inode>": {"path": ..., "offset": ..., "head": ...}}`` in a JSON file.

    Saved as the power-loss-safe sequence: write and fsync a temporary file, keep the current
    file as ``<file>.prev``, rename the new one in place, fsync the folder. Loading falls back
    to ``.prev`` when the current file is missing, empty or torn, so the worst case is one
    batch sent again, never every position reset.
    """

    def __init__(self, file: Path) -> None:
        self.file = file
        self.previous = Path(f"{file}.prev")
        self.recovered: str | None = None  # why the previous generation was used, for status
        self.positions: dict[str, Position] = self._load()
        self.dirty = False  # positions changed without a save (a file appeared or went)

    def _load(self) -> dict[str, Position]:
        for candidate in (self.file, self.previous):
            try:
                positions = parse_positions(candidate.read_bytes())
            except FileNotFoundError:
                continue
            except ValueError as exc:
                self.recovered = f"{candidate} unreadable ({exc}); using the previous generation"
                log.error("checkpoint %s is unreadable (%s): trying the previous generation",
                          candidate, exc)  # fmt: skip
                continue
            return positions
        return {}

    @property
    def is_new(self) -> bool:
        return not self.file.exists() and not self.previous.exists()

    def save(self) -> None:
        try:
            self._save()
        except OSError as exc:
            raise CheckpointUnwritable(exc.errno, f"{exc.strerror or exc}") from exc

    def _save(self) -> None:
        self.file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        payload = json.dumps({k: asdict(v) for k, v in self.positions.items()}, indent=1)
        tmp = Path(f"{self.file}.tmp")
        write_durably(tmp, payload.encode())
        if self.file.exists():
            os.replace(self.file, self.previous)
        os.replace(tmp, self.file)  # atomic: a crash leaves the old or the new file, whole
        fsync_folder(self.file.parent)
        self.dirty = False


@dataclass
class Chunk:
    """Complete lines read from one file, and where its checkpoint goes once they are sent."""

    key: str
    path: str
    data: bytes
    end: int
    head: str = ""  # the file's first bytes as read through the same descriptor
    fingerprint: str = ""  # of the file: where its lines come from (identity.py)
    skipped: int = 0  # bytes of an over-long line past the part kept in ``data``
    cut_line_bytes: int = 0  # that line's whole length

    @property
    def start(self) -> int:
        return self.end - len(self.data) - self.skipped


def read_lines_from(
    handle: Source, start: int, max_bytes: int, final: bool = False, scanned: int = 0
) -> tuple[bytes, int]:
    """Bytes from ``start`` up to the last newline within ``max_bytes``, and how far the file
    was looked at.

    A line still being written (no newline yet) waits for the next poll, unless ``final``: a
    file its writer has left gets no more writes, so its last line is complete as it is. A
    single line longer than ``max_bytes`` is read alone, to be set aside, and of one longer
    than ``KEEP_OF_LONG_LINE`` only that much (the offset returned is past its end): it
    cannot stall the file behind it, nor fill the memory. ``scanned`` is where an earlier
    poll stopped finding no newline: the search resumes there, so a long unterminated line
    costs one read per new byte, not one read of the whole line per poll.
    """
    pos = max(start, scanned)
    handle.seek(pos)
    while (block := handle.read(max_bytes)) and b"\n" not in block:
        pos += len(block)
    if not block:  # no newline before the end of the file
        if final and pos > start:
            handle.seek(start)
            return handle.read(min(pos - start, max(max_bytes, KEEP_OF_LONG_LINE))), pos
        return b"", pos
    newline = pos + block.index(b"\n")
    if newline + 1 - start > max_bytes:
        handle.seek(start)
        return handle.read(min(newline + 1 - start, max(max_bytes, KEEP_OF_LONG_LINE))), newline + 1
    if pos != start:
        handle.seek(start)
        block = handle.read(max_bytes)
    if final and len(block) < max_bytes:
        return block, start + len(block)
    cut = block.rfind(b"\n") + 1
    return block[:cut], start + cut


def nul_run_end(handle: Source, start: int, block: int = 1 << 16) -> int:
    """Where the run of NUL bytes at ``start`` of a plain file ends, reading one block at a
    time; a sparse file's holes are jumped over without reading them."""
    pos = start
    # No SEEK_DATA here, or only a hole up to the end (ENXIO): read on from ``start``.
    with contextlib.suppress(AttributeError, OSError, ValueError):
        fd = handle.fileno()
        # The descriptor's offset is put back where the buffered handle left it: moved
        # under it, the handle's next read came from the wrong place (its buffer and the
        # descriptor disagreed), which shifted the bytes after a written NUL region.
        here = os.lseek(fd, 0, os.SEEK_CUR)
        try:
            pos = os.lseek(fd, start, os.SEEK_DATA)
        finally:
            os.lseek(fd, here, os.SEEK_SET)
    handle.seek(pos)
    while block_read := handle.read(block):
        rest = block_read.lstrip(b"\0")
        if rest:
            return pos + len(block_read) - len(rest)
        pos += len(block_read)
    return pos


def read_complete_lines(path: str, start: int, max_bytes: int, final: bool = False) -> bytes:
    """``read_lines_from`` on a file by name."""
    with open(path, "rb") as handle:
        return read_lines_from(handle, start, max_bytes, final)[0]


class Tailer:
    """Finds what is new in the files of one pattern (``/var/log/shop/access.log*``)."""

    def __init__(
        self,
        pattern: str,
        checkpoints: Checkpoints,
        start_at_end: bool = False,
        grace_seconds: float = ROTATION_GRACE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pattern = pattern
        self.checkpoints = checkpoints
        # The name the application writes to: ``access.log`` for ``access.log*``. A pattern
        # without a trailing wildcard (``*.log``) matches only names applications write to.
        self.live = pattern.rstrip("*") if pattern.endswith("*") else ""
        # Only on the very first start may the live file begin at its end (initialPosition
        # END_OF_FILE); any file that appears later is new and is read from its start.
        self.start_at_end = start_at_end and checkpoints.is_new
        self.grace_seconds = grace_seconds
        self.clock = clock
        self.scanned: dict[str, int] = {}  # key -> offset up to which no newline was found
        self.truncated: dict[str, int] = {}  # head of a rewritten file -> offset sent from it
        self.done: set[str] = set()  # compressed files read to their end
        # Compressed files that are a copy of a file still open here: read once it is gone.
        self.deferred: set[str] = set()
        self.errors: dict[str, str] = {}  # file name -> why it could not be read
        self.nul_bytes_skipped = 0
        self.spool_max_bytes = SPOOL_MAX_BYTES
        self.idle_seconds = 0.0  # finalLineIdleSeconds
        self.spool_dropped_bytes = 0
        # A descriptor on every plain file of the pattern: a file deleted (logrotate's
        # compress, a plain delete) stays readable to its end through it.
        self.held: dict[str, tuple[str, IO[bytes]]] = {}
        self.on_corrupt: Callable[[str, str], None] = lambda name, why: None
        # Deleted files' unsent bytes on disk, beside the checkpoint: read before the files.
        self.spool = Spool(Path(f"{checkpoints.file}.spool"))
        self.errors.update(self.spool.unreadable)
        self.spool_error: str | None = None  # why the last spool write failed
        self.spool_retry_at = 0.0
        self.swept = False
        self._forget_spooled_files()

    def _forget_spooled_files(self) -> None:
        """A crash between writing an entry and saving the checkpoint leaves the spooled
        file's checkpoint behind: dropped (the entry carries its place), unless its inode now
        holds another file (a head of its own)."""
        positions = self.checkpoints.positions
        for entry in self.spool.entries:
            old = positions.get(entry.header.key)
            if old and old.head and entry.header.head.startswith(old.head):
                del positions[entry.header.key]

    def files(self) -> list[tuple[str, os.stat_result]]:
        """Files of the pattern, oldest first (compressed rotations before plain ones)."""
        found = []
        for name in glob.glob(self.pattern):
            try:
                found.append((name, os.stat(name)))
            except FileNotFoundError:
                continue  # rotated away between glob and stat
        return sorted(
            found,
            key=lambda item: (not is_compressed(item[0]), item[1].st_mtime_ns,
                              item[0] == self.live),
        )  # fmt: skip

    def next_chunk(self, max_bytes: int) -> Chunk | None:
        """The oldest unsent complete lines, or None when every file is caught up."""
        first_start = self.start_at_end
        self.start_at_end = False
        listed = self.files()
        present = {identity(stat) for _, stat in listed}
        live = next((stat for name, stat in listed if name == self.live), None)
        self.hold(listed)
        if not self.swept:
            self.spool.sweep()
            self.swept = True
        self._bound_spool(present)
        # The spool first, then deleted files: the oldest, and only their descriptor still
        # reads them.
        for entry in list(self.spool.entries):
            chunk = self._read_spooled(entry, max_bytes)
            if chunk:
                return chunk
        for key in [key for key in self.held if key not in present]:
            chunk = self._read_deleted(key, max_bytes, live)
            if chunk:
                return chunk
        if live is not None:
            # A truncated live file first: its copy, listed before it, must be recognised.
            self._check_rewritten(self.live)
        for name, _stat in listed:
            chunk = self._read_file(name, max_bytes, first_start, live, present)
            if chunk:
                return chunk
        return None

    def _final(
        self, name: str, key: str, stat: os.stat_result, live: os.stat_result | None
    ) -> bool:
        """Whether an unterminated last line is complete: a rotated file once its writer
        moved on; a live one only after ``idle_seconds`` without a write (0: never)."""
        if not self.is_live(name):
            return self._writer_moved_on(key, stat, live)
        return bool(self.idle_seconds) and self.clock() - stat.st_mtime >= self.idle_seconds

    def is_live(self, name: str) -> bool:
        """Still written to by its application: its last line is whole only with a newline."""
        return name == self.live or not self.live

    def close(self) -> None:
        """Let go of every file (at shutdown); a deleted one's unsent part goes to the spool
        first, for the next process."""
        present = {identity(stat) for _, stat in self.files()}
        for key in list(self.held):
            if key not in present:
                self._spool_held(key, present, at_exit=True)
            if key in self.held:
                self._release(key)
        try:
            self.save_if_dirty()
        except CheckpointUnwritable as exc:  # the entries start at their own offsets then
            log.error("checkpoint %s not saved at exit: %s", self.checkpoints.file, exc)

    def save_if_dirty(self) -> None:
        if self.checkpoints.dirty:
            self.checkpoints.save()

    def keep_while_waiting(self) -> None:
        """While the flow waits out an outage: hold every file, and spool each deleted one
        whose writer has moved on (a ``.gz`` has none), then let it go, so that a SIGKILL or
        a power loss no longer takes its unsent lines."""
        listed = self.files()
        self.hold(listed)
        present = {identity(stat) for _, stat in listed}
        self._bound_spool(present)
        if self.clock() < self.spool_retry_at:
            return
        live = next((stat for name, stat in listed if name == self.live), None)
        for key in [key for key in self.held if key not in present]:
            name, handle = self.held[key]
            if is_compressed(name) or self._writer_moved_on(key, os.fstat(handle.fileno()), live):
                self._spool_held(key, present)
        self.save_if_dirty()

    def _spool_held(self, key: str, present: set[str], at_exit: bool = False) -> None:
        """Copy a deleted file's unsent part into the spool and let the file go; its
        checkpoint becomes the entry's. When the spool cannot be written the file stays held
        (and at exit its unsent lines are lost, said at CRITICAL)."""
        name, handle = self.held[key]
        try:
            entry = self._copy_unsent(key, name, handle, present)
        except (zlib.error, gzip.BadGzipFile, EOFError) as exc:  # a damaged .gz: unreadable
            self._report(name, exc)
            self.done.add(key)
            self._release(key)
            return
        except OSError as exc:
            self._spool_failed(name, exc, at_exit)
            return
        if entry is not None:
            positions = self.checkpoints.positions
            positions.pop(key, None)
            positions[entry.key] = Position(name, entry.header.offset, entry.header.head)
            self.checkpoints.dirty = True
            log.warning("%s: deleted with %d unsent bytes: spooled to %s", name, entry.size,
                        entry.file)  # fmt: skip
        self.spool_error = None
        self.scanned.pop(key, None)
        self._release(key)

    def _copy_unsent(
        self, key: str, name: str, handle: IO[bytes], present: set[str]
    ) -> Entry | None:
        """The spool entry of what is unsent of a held file; None when nothing is (or a
        ``.gz`` is a copy of a file still held or spooled, which carries its lines)."""
        position = self.checkpoints.positions.get(key)
        if not is_compressed(name):
            start = position.offset if position else 0
            if os.fstat(handle.fileno()).st_size <= start:
                return None
            return self._spool_from(key, name, handle, start)
        handle.seek(0)
        with gzip.GzipFile(fileobj=handle) as unpacked:
            offset = position.offset if position else self._compressed_offset(unpacked, present)
            return None if offset is None else self._spool_from(key, name, unpacked, offset)

    def _spool_from(self, key: str, name: str, source: Source, start: int) -> Entry | None:
        first = read_head(source, FINGERPRINT_BYTES)
        header = SpoolHeader(key, name, start, fingerprint(first), first[:HEAD_BYTES].hex())
        return self.spool.add(header, source)

    def _spool_failed(self, name: str, exc: OSError, at_exit: bool) -> None:
        """One clear error, not one per poll: tried again after ``SPOOL_RETRY_SECONDS``."""
        why = f"spool {self.spool.folder} cannot be written ({type(exc).__name__}: {exc})"
        self.spool_retry_at = self.clock() + SPOOL_RETRY_SECONDS
        if at_exit:
            log.critical("%s: deleted with unsent lines and the %s: they are lost with this "
                         "process", name, why)  # fmt: skip
        elif why != self.spool_error:
            log.error("spool %s cannot be written (%s: %s); deleted files stay held open "
                      "meanwhile (lost on a crash), tried again every %.0f s", self.spool.folder,
                      type(exc).__name__, exc, SPOOL_RETRY_SECONDS)  # fmt: skip
        self.spool_error = why

    def _read_spooled(self, entry: Entry, max_bytes: int) -> Chunk | None:
        """The next lines of a spool entry, at their offsets in the file they were copied
        from; the entry goes once the checkpoint has passed its end."""
        header = entry.header
        position = self.checkpoints.positions.get(entry.key)
        if position is None or position.offset < header.offset:
            position = Position(header.path, header.offset, header.head)
            self.checkpoints.positions[entry.key] = position
        if position.offset >= entry.end:
            self.spool.remove(entry)
            return None
        shift = entry.data_start - header.offset  # from an offset in the file to the entry's
        try:
            with open(entry.file, "rb") as handle:
                # Its writer left the file (or the process ended): its last line is whole.
                data, seen = read_lines_from(handle, position.offset + shift, max_bytes, True)
                chunk = Chunk(entry.key, header.path, data, seen - shift, header.head,
                              header.fingerprint)  # fmt: skip
                return self._with_cut(chunk, handle, shift) if data else None
        except OSError as exc:
            self._report(str(entry.file), exc)
            return None

    def hold(self, listed: list[tuple[str, os.stat_result]] | None = None) -> None:
        """Open every file of the pattern not held yet (a ``.gz`` until it is read to its
        end), also while its flow waits out an outage: a file rotated and deleted meanwhile
        (logrotate's ``rotate N`` deleting the oldest ``.gz``) is then still read, or copied
        to the spool before it is let go; together bounded by ``spool_max_bytes``."""
        for name, stat in self.files() if listed is None else listed:
            if identity(stat) in self.held or identity(stat) in self.done:
                continue
            try:
                handle = open(name, "rb")  # noqa: SIM115 (held open: the point)
            except OSError:
                continue  # reported when it is read
            key = identity(os.fstat(handle.fileno()))
            if key in self.held:
                handle.close()
            else:
                self.held[key] = (name, handle)

    def _release(self, key: str) -> None:
        _, handle = self.held.pop(key)
        handle.close()

    def held_deleted_bytes(self, present: set[str]) -> list[tuple[str, int]]:
        """(key, size on disk) of the spool's entries and of the deleted files held open,
        oldest first."""
        spooled = [(entry.key, entry.disk_bytes()) for entry in self.spool.entries]
        held = [(key, os.fstat(h.fileno()).st_blocks * 512) for key, (_, h) in self.held.items()]
        return spooled + [(key, size) for key, size in held if key not in present]

    def spool_bytes(self) -> int:
        present = {identity(stat) for _, stat in self.files()}
        return sum(size for _, size in self.held_deleted_bytes(present))

    def _bound_spool(self, present: set[str]) -> None:
        """Over ``spool_max_bytes`` of spool entries and deleted files held open, the oldest
        are let go: lost, counted in ``spool_dropped_bytes`` and logged at CRITICAL."""
        deleted = self.held_deleted_bytes(present)
        total = sum(size for _, size in deleted)
        for key, size in deleted:
            if total <= self.spool_max_bytes:
                return
            log.critical("%s: deleted while unsent and over the spool limit (%d bytes held): "
                         "let go, its unsent lines are lost", self._let_go(key), total)  # fmt: skip
            self.spool_dropped_bytes += size
            total -= size

    def _let_go(self, key: str) -> str:
        """Drop a spool entry or a held deleted file; returns what it was, for the log."""
        entry = self.spool.find(key)
        if entry is not None:
            self.spool.remove(entry)
            return f"{entry.header.path} (spooled as {entry.file})"
        name = self.held[key][0]
        self._release(key)
        self.done.add(key)
        return name

    def _read_deleted(self, key: str, max_bytes: int, live: os.stat_result | None) -> Chunk | None:
        """The rest of a deleted file, from its descriptor; released once read to its end and
        its writer has moved on (its checkpoint then becomes a gone one, for its .gz)."""
        name, handle = self.held[key]
        if is_compressed(name):
            return self._read_deleted_compressed(key, name, handle, max_bytes)
        stat = os.fstat(handle.fileno())
        position = self.checkpoints.positions.get(key)
        if position is None:
            position = self.checkpoints.positions[key] = Position(name, 0)
        final = self._writer_moved_on(key, stat, live)
        if stat.st_size > position.offset:
            data, seen = read_lines_from(handle, position.offset, max_bytes, final,
                                         self.scanned.get(key, 0))  # fmt: skip
            if data:
                self.scanned.pop(key, None)
                return self._chunk(key, name, data, seen, handle)
            self.scanned[key] = seen
        elif final:
            self._release(key)
        return None

    def _read_deleted_compressed(
        self, key: str, name: str, handle: IO[bytes], max_bytes: int
    ) -> Chunk | None:
        try:
            handle.seek(0)
            with gzip.GzipFile(fileobj=handle) as unpacked:
                chunk = self._read_compressed(name, key, unpacked, max_bytes, set())
        except (zlib.error, gzip.BadGzipFile, EOFError, OSError) as exc:
            self._report(name, exc)
            self.done.add(key)
            chunk = None
        if chunk is None and key in self.done:
            self._release(key)
        return chunk

    def _read_file(
        self,
        name: str,
        max_bytes: int,
        first_start: bool,
        live: os.stat_result | None,
        present: set[str],
    ) -> Chunk | None:
        try:
            with open(name, "rb") as raw:
                stat = os.fstat(raw.fileno())  # the identity of what is read, not of the name
                key = identity(stat)
                if key in self.done:
                    return None
                if is_compressed(name):
                    with gzip.GzipFile(fileobj=raw) as unpacked:
                        chunk = self._read_compressed(name, key, unpacked, max_bytes, present)
                    if key in self.done and key in self.held:
                        self._release(key)
                else:
                    chunk = self._read_plain(name, key, raw, stat, max_bytes, first_start, live)
        except FileNotFoundError:
            return None  # rotated away since the listing: the next poll finds its new name
        except (zlib.error, gzip.BadGzipFile) as exc:  # damaged: set the file aside whole
            self._report(name, exc)
            self.done.add(key)
            self.on_corrupt(name, f"{type(exc).__name__}: {exc}")
            return None
        except (OSError, EOFError) as exc:  # permission denied, a folder, a .gz being written
            self._report(name, exc)
            return None
        self.errors.pop(name, None)
        return chunk

    def _report(self, name: str, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        if self.errors.get(name) != message:
            log.error("%s cannot be read (%s); the other files go on", name, message)
        self.errors[name] = message

    def _read_plain(
        self,
        name: str,
        key: str,
        handle: Source,
        stat: os.stat_result,
        max_bytes: int,
        first_start: bool,
        live: os.stat_result | None,
    ) -> Chunk | None:
        position = self.checkpoints.positions.get(key)
        if position is None:
            start = stat.st_size if first_start else self._copied_offset(handle, stat)
            position = self.checkpoints.positions[key] = Position(name, start)
        elif position.offset and self._rewritten(handle, stat, position):
            self._restart(key, position)
        position.path = name
        if len(position.head) < 2 * min(stat.st_size, HEAD_BYTES):
            # Known from the first sight, not only after a commit: a file deleted before any
            # of it was sent is still recognised in its .gz.
            position.head = read_head(handle).hex()
            self.checkpoints.dirty = True
        if stat.st_size <= position.offset:
            return None
        self._skip_nul_run(name, handle, position, stat.st_size)
        final = self._final(name, key, stat, live)
        data, seen = read_lines_from(
            handle, position.offset, max_bytes, final, self.scanned.get(key, 0)
        )
        if not data:
            self.scanned[key] = seen
            return None
        self.scanned.pop(key, None)
        return self._chunk(key, name, data, seen, handle)

    def _skip_nul_run(self, name: str, handle: Source, position: Position, size: int) -> None:
        """A run of NUL bytes where a line should start (the hole a writer without O_APPEND
        leaves after copytruncate, a sparse region) carries no line: skipped once data
        follows it, counted and logged, in bounded memory."""
        handle.seek(position.offset)
        if handle.read(1) != b"\0":
            return
        end = nul_run_end(handle, position.offset)
        if end >= size:
            return  # nothing after it yet: looked at again when the file grows
        log.warning("%s: %d NUL bytes at %d-%d skipped", name, end - position.offset,
                    position.offset, end)  # fmt: skip
        self.nul_bytes_skipped += end - position.offset
        position.offset = end

    def _chunk(self, key: str, name: str, data: bytes, end: int, handle: Source) -> Chunk:
        first = read_head(handle, FINGERPRINT_BYTES)
        chunk = Chunk(key, name, data, end, first[:HEAD_BYTES].hex(), fingerprint(first))
        return self._with_cut(chunk, handle)

    def _with_cut(self, chunk: Chunk, handle: Source, shift: int = 0) -> Chunk:
        """Of an over-long line read only in part, the bytes skipped and its whole length;
        ``shift`` from an offset in the file to one in ``handle`` (a spool entry)."""
        chunk.skipped = chunk.end - self.checkpoints.positions[chunk.key].offset - len(chunk.data)
        if chunk.skipped:  # the whole length of the line cut, without its newline
            handle.seek(chunk.end - 1 + shift)
            chunk.cut_line_bytes = len(chunk.data) + chunk.skipped - (handle.read(1) == b"\n")
        return chunk

    def _read_compressed(
        self, name: str, key: str, handle: Source, max_bytes: int, present: set[str]
    ) -> Chunk | None:
        position = self.checkpoints.positions.get(key)
        if position is None:
            start = self._compressed_offset(handle, present)
            if start is None:
                return None  # a copy of a file still read here: read on once that is gone
            head = read_head(handle).hex()
            position = self.checkpoints.positions[key] = Position(name, start, head)
            self.checkpoints.dirty = True
        position.path = name
        data, seen = read_lines_from(handle, position.offset, max_bytes, final=True)
        if not data:
            self.done.add(key)
            return None
        return self._chunk(key, name, data, seen, handle)

    def _compressed_offset(self, handle: Source, present: set[str]) -> int | None:
        """Where a new ``.gz`` resumes: the offset sent of the deleted file it was compressed
        from, recognised by its first bytes; 0 when it matches no file ever seen (made and
        compressed while the shipper was down or its flow waited out an outage). None while
        it matches a file that is still there or still open: gzip has not deleted it yet."""
        open_now = present | set(self.held) | self.spool.keys()
        found: tuple[int, bool] | None = None  # (head length, still open) of the best match
        offset = 0
        for key, p in self.checkpoints.positions.items():
            if not p.head or is_compressed(p.path) or (found and len(p.head) <= found[0]):
                continue
            if read_head(handle, len(p.head) // 2).hex() == p.head:
                found, offset = (len(p.head), key in open_now), p.offset
        if found and found[1]:
            return None
        return offset

    def _copied_offset(self, handle: Source, stat: os.stat_result) -> int:
        """Where a new plain file starts: 0, unless its first bytes show it is a copy
        (copytruncate) of a file we had sent part of; then where that file's lines ended."""
        candidates = dict(self.truncated)  # any fingerprint: these files were rewritten
        for position in self.checkpoints.positions.values():
            if len(position.head) >= 2 * MIN_HEAD_BYTES:  # a short head proves too little
                candidates.setdefault(position.head, position.offset)
        for head, offset in sorted(candidates.items(), key=lambda item: -len(item[0])):
            if read_head(handle, len(head) // 2).hex() == head:
                return min(offset, stat.st_size)
        return 0

    def _check_rewritten(self, name: str) -> None:
        try:
            with open(name, "rb") as handle:
                stat = os.fstat(handle.fileno())
                position = self.checkpoints.positions.get(identity(stat))
                if position and position.offset and self._rewritten(handle, stat, position):
                    self._restart(identity(stat), position)
        except OSError:
            return  # reported when the file is read

    def _restart(self, key: str, position: Position) -> None:
        """copytruncate rewrote the file: read it from 0, and remember what was sent of it
        so that its copy resumes there."""
        if position.head:
            self.truncated[position.head] = position.offset
            # Saved too: a .gz of the copy, found after a restart, resumes there.
            gone = Position(position.path, position.offset, position.head)
            self.checkpoints.positions[f"{GONE}{key}@{position.offset}"] = gone
            self.checkpoints.dirty = True
        position.offset, position.head = 0, ""
        self.scanned.pop(key, None)

    def _rewritten(self, handle: Source, stat: os.stat_result, position: Position) -> bool:
        if stat.st_size < position.offset:
            return True
        head = position.head
        return bool(head) and read_head(handle, len(head) // 2).hex() != head

    def _writer_moved_on(self, key: str, stat: os.stat_result, live: os.stat_result | None) -> bool:
        """A renamed file may still get the rest of a line from a writer that has not reopened
        its log yet: it is finished once the live file holds newer data, or after a quiet
        grace period."""
        moved_on = (
            live is not None
            and identity(live) != key
            and live.st_size > 0
            and live.st_mtime_ns >= stat.st_mtime_ns
        )
        return moved_on or self.clock() - stat.st_mtime >= self.grace_seconds

    def commit(self, chunk: Chunk) -> None:
        """Move the checkpoint past lines Firehose acknowledged. It is saved once per turn
        of the flow (``save_if_dirty``), not per chunk: two fsyncs per 4 MiB were a sixth of
        the shipper's time, and a crash before the save only resends (same places)."""
        self.checkpoints.positions[chunk.key] = Position(chunk.path, chunk.end, chunk.head)
        self.checkpoints.dirty = True
        entry = self.spool.find(chunk.key) if chunk.key.startswith(SPOOL) else None
        if entry is not None and chunk.end >= entry.end:
            self.checkpoints.save()
            self.spool.remove(entry)  # only now: a crash before this reads nothing from it

    def forget_missing(self) -> None:
        """Drop checkpoints of files that no longer exist (deleted by logrotate), keeping
        their fingerprints a while: a ``.gz`` made from one resumes where it ended."""
        positions = self.checkpoints.positions
        alive = {identity(stat) for _, stat in self.files()} | set(self.held) | self.spool.keys()
        for key in list(positions):
            if key not in alive and not key.startswith(GONE):
                gone = positions.pop(key)
                if gone.head:  # kept, and saved: a .gz made from it resumes there
                    positions[f"{GONE}{key}"] = gone
                self.scanned.pop(key, None)
                self.checkpoints.dirty = True
        self.done &= alive
        for key in [key for key in positions if key.startswith(GONE)][:-KEEP_GONE]:
            del positions[key]
        for head in list(self.truncated)[:-KEEP_GONE]:
            del self.truncated[head]
        if self.checkpoints.dirty:
            self.checkpoints.save()

    def lag(self) -> dict[str, int]:
        """Bytes not yet sent, per plain file (a ``.gz`` has no comparable size: its reading
        shows in ``reading_compressed``)."""
        lag = {}
        for name, stat in self.files():
            if not is_compressed(name):
                position = self.checkpoints.positions.get(identity(stat))
                lag[name] = stat.st_size - (position.offset if position else 0)
        for entry in self.spool.entries:  # a spooled file's unsent bytes, under the entry
            position = self.checkpoints.positions.get(entry.key)
            lag[str(entry.file)] = entry.end - max(position.offset if position else 0,
                                                   entry.header.offset)  # fmt: skip
        return lag

    def reading_compressed(self) -> list[str]:
        """Compressed rotations being read because they held unsent lines."""
        return sorted(
            p.path for key, p in self.checkpoints.positions.items()
            if is_compressed(p.path) and key not in self.done
            and not key.startswith((GONE, SPOOL))
        )  # fmt: skip
