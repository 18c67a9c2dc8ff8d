"""`make analyses` and `make metrics` before any `make run`: one line naming the missing
warehouse file and the command that makes it, and a non-zero exit, not a traceback."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from local import analyses, metrics
from orchestration.settings import load_settings


@pytest.mark.parametrize(("module", "command"), [(analyses, "analyses"), (metrics, "metrics")])
def test_asking_before_make_run_names_the_warehouse_and_the_fix(
    module: Any, command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    settings = replace(load_settings("local"), warehouse="duckdb", work_dir=tmp_path)
    monkeypatch.setattr(module, "settings_for_command", lambda command: settings)
    assert module.main([]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"make {command} FAILED: no warehouse at {settings.duckdb_path}")
    assert "run `make run` first" in error
