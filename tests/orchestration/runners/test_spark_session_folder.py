"""A warm Spark session's folder that cannot serve one is refused by name, before a session
starts (``SHOPLOGS_SPARK_SESSION``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestration.runners.spark_session import run_in_session
from orchestration.settings import load_settings
from orchestration.tools import ToolFailed


def run_in(folder: Path, tmp_path: Path) -> None:
    run_in_session(folder, ["--help"], what="the Spark job", log_file=tmp_path / "job.log",
                   env=dict(os.environ))  # fmt: skip


def test_a_folder_too_deep_for_a_unix_socket_is_named_with_the_fix(tmp_path: Path) -> None:
    folder = tmp_path / ("s" * 107)  # Linux's limit on a Unix socket's path, on its own
    with pytest.raises(ToolFailed) as failed:
        run_in(folder, tmp_path)
    message = str(failed.value)
    assert f"SHOPLOGS_SPARK_SESSION={folder}:" in message
    assert "longer than the 107 bytes" in message
    assert "set SHOPLOGS_SPARK_SESSION=fresh" in message
    assert not list(folder.glob("*.sock"))  # no session was started


def test_a_folder_that_cannot_be_made_is_named_with_the_fix(tmp_path: Path) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("")
    with pytest.raises(ToolFailed) as failed:
        run_in(taken / "session", tmp_path)
    assert f"SHOPLOGS_SPARK_SESSION={taken / 'session'}: the warm Spark session cannot use" in (
        str(failed.value)
    )


def test_a_relative_session_folder_means_the_same_folder_from_any_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHOPLOGS_SPARK_SESSION", "sessions")
    monkeypatch.chdir(tmp_path)
    assert load_settings("local").spark_session_dir == tmp_path / "sessions"
