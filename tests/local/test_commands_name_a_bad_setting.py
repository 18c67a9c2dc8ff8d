"""Every local command with a setting of a bad value: one line naming the setting and its
allowed values, exit 2, and nothing started; never a traceback."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from local import airflow_runner, analyses, docs_site, metrics, report_site, screenshots

COMMANDS: dict[str, Callable[[], int]] = {
    "make airflow": airflow_runner.serve,
    "make analyses": lambda: analyses.main([]),
    "make docs": lambda: docs_site.main([]),
    "make metrics": lambda: metrics.main([]),
    "make report": lambda: report_site.main([]),
    "make screenshots": screenshots.main,
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_bad_setting_is_named_in_one_line(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHOPLOGS_WAREHOUSE", "bigquery")
    with pytest.raises(SystemExit) as exited:
        COMMANDS[command]()
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        f"{command} FAILED: SHOPLOGS_WAREHOUSE='bigquery' is not one of duckdb, snowflake, "
        "redshift, postgres, fakesnow\n"
    )
