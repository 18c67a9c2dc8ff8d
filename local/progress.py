"""Live progress for long local work: ``make run`` prints each stage as it starts and ends,
the lines shipped so far, and each Airflow task as ``airflow dags test`` finishes it.

The pure parts (what to print for a log line, whether enough time has passed) take their
clock as an argument; the I/O edges are the printer and the log follower thread.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Every:
    """True at most once per ``seconds`` of ``clock``: a rate limit for periodic lines."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.clock = seconds, clock
        self.last: float | None = None

    def due(self) -> bool:
        now = self.clock()
        if self.last is not None and now - self.last < self.seconds:
            return False
        self.last = now
        return True


def shipped_line(stream: str, lines: int, megabytes: float) -> str:
    return f"  ship {stream}: {lines:,} lines ({megabytes:,.1f} MB) so far"


@contextmanager
def following(log_file: Path, on_line: Callable[[str], None], poll: float = 0.5) -> Iterator[None]:
    """Call ``on_line`` for each line appended to ``log_file`` while the block runs (a
    subprocess writing it), and once more for what it wrote last."""
    stop = threading.Event()
    offset = log_file.stat().st_size if log_file.exists() else 0

    def read_new() -> None:
        nonlocal offset
        if not log_file.exists():
            return
        if log_file.stat().st_size < offset:  # truncated: the tool started it afresh
            offset = 0
        with log_file.open("rb") as log:
            log.seek(offset)
            chunk = log.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        offset += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            on_line(line)

    def follow() -> None:
        while not stop.wait(poll):
            read_new()

    thread = threading.Thread(target=follow, name="progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        read_new()


def task_printer(finished_task: Callable[[str], str | None]) -> Callable[[str], None]:
    """An ``on_line`` for ``following`` that prints each task a log line says has ended,
    with a running count."""
    done = 0

    def on_line(line: str) -> None:
        nonlocal done
        task = finished_task(line)
        if task is not None:
            done += 1
            say(f"  airflow: {task} done ({done} tasks so far)")

    return on_line
