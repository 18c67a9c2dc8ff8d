"""Writes that survive power loss: the checkpoints and the spool both use them."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_folder(folder: Path) -> None:
    """A rename is durable only once the folder holding it is synced."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]


def write_durably(path: Path, payload: bytes, mode: int = 0o600) -> None:
    """Write ``payload`` to a temporary file and fsync it: the caller renames it in place."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        write_all(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)
