"""A folder made read-only for a test's duration, as MWAA's DAGs folder is.

As root (CI) file modes do not stop writes, so the folder is bind-mounted read-only over
itself; as another user its write bits are cleared. Either way a write raises EROFS/EACCES.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _set_writable(folder: Path, writable: bool) -> None:
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~0o222)


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        _set_writable(folder, False)
        try:
            yield folder
        finally:
            _set_writable(folder, True)
        return
    subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(folder)], check=True)
    try:
        probe = folder / ".write-probe"
        try:
            probe.touch()
        except OSError:
            pass
        else:
            probe.unlink()
            raise RuntimeError(f"{folder} is still writable after a read-only bind mount")
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)
