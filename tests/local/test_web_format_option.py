"""``make run --web-format`` and the job's ``--web-format``: a bad format stops the run
before anything starts, with a message naming the token and the fix."""

from __future__ import annotations

from pathlib import Path

import job
import pytest

from local import run
from orchestration.settings import load_settings


def test_a_bad_web_format_stops_make_run_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPLOGS_WORK_DIR", str(tmp_path))
    log = tmp_path / "access.log"
    log.write_text("x\n")
    assert run.main(["--web", str(log), "--web-format", "$remote_addr$time_local"]) == 2
    error = capsys.readouterr().err
    assert "--web-format" in error and "$remote_addr and $time_local touch" in error
    assert not (tmp_path / "warehouse").exists()  # nothing started


def test_the_web_format_setting_reaches_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOPLOGS_WEB_FORMAT", raising=False)
    assert load_settings("local").stream("web").log_format == ""  # the job's default
    monkeypatch.setenv("SHOPLOGS_WEB_FORMAT", "apache-combined-D")
    assert load_settings("dev").stream("web").log_format == "apache-combined-D"
    assert load_settings("dev").stream("orders").log_format == ""


def test_the_job_refuses_a_bad_web_format_naming_it() -> None:
    with pytest.raises(SystemExit):
        job.parse_args(["--input", "i", "--output", "o", "--run-date", "2026-11-01",
                        "--pseudonym-secret", "s",
                        "--web-format", '%h %t "%r" %>s %Q'])  # fmt: skip
    args = job.parse_args(["--input", "i", "--output", "o", "--run-date", "2026-11-01",
                           "--pseudonym-secret", "s"])  # fmt: skip
    assert args.compiled_web_format.source == "combined"
