"""Running a command-line tool (spark-submit, dbt, airflow) as a pipeline step."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path


class ToolFailed(RuntimeError):
    """A tool exited non-zero or overran its time; the message carries the telling lines."""


def last_lines(lines: list[str]) -> list[str]:
    return lines[-15:]


def failure(
    what: str,
    returncode: int | None,
    log_file: Path,
    telling: Callable[[list[str]], list[str]] = last_lines,
) -> str:
    """A failed tool's message: ``what``, the exit code, the log and its telling lines."""
    lines = log_file.read_text(errors="replace").splitlines()
    return f"{what} failed (exit {returncode}); full log: {log_file}\n" + "\n".join(telling(lines))


def run_tool(
    command: list[str],
    *,
    what: str,
    log_file: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    append: bool = False,
    telling: Callable[[list[str]], list[str]] = last_lines,
) -> None:
    """Run ``command`` with its output in ``log_file``; on failure raise ``ToolFailed``
    naming ``what``, the exit code, the log and the lines ``telling`` picks from it."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab" if append else "wb") as log:
        if append:
            log.write(f"\n$ {what}\n".encode())
            log.flush()
        try:
            result = subprocess.run(command, cwd=cwd, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, timeout=timeout)  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise ToolFailed(
                f"{what} did not finish within {timeout:.0f} s; full log: {log_file}"
            ) from exc
    if result.returncode != 0:
        raise ToolFailed(failure(what, result.returncode, log_file, telling))
