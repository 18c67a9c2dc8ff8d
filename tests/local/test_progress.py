"""Live progress: periodic lines at most every few seconds, each Airflow task as it ends,
and every line a tool appends to its log while it runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.airflow_runner import finished_task
from local.progress import Every, following, shipped_line, task_printer

END = (
    "2026-11-23T01:23:22.803690Z [info     ] [DAG TEST] end task task_id=run_date "
    "map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1563"
)
START = END.replace("end task task_id", "starting task_id")


def test_a_periodic_line_is_due_at_most_once_per_interval() -> None:
    now = [100.0]
    every = Every(seconds=2.0, clock=lambda: now[0])
    due = []
    for step in (0.0, 1.0, 1.5, 0.1, 5.0):
        now[0] += step
        due.append(every.due())
    assert due == [True, False, True, False, True]


def test_shipping_progress_reads_as_a_count() -> None:
    assert shipped_line("web", 1234567, 250.25) == "  ship web: 1,234,567 lines (250.2 MB) so far"


def test_only_a_tasks_end_counts_as_finished() -> None:
    assert finished_task(END) == "run_date"
    assert finished_task(START) is None
    assert finished_task(END.replace("run_date", "dbt.fct_orders_run")) == "dbt.fct_orders_run"


def test_each_finished_task_is_printed_with_a_count(capsys: pytest.CaptureFixture[str]) -> None:
    on_line = task_printer(finished_task)
    for line in (START, END, "noise", END.replace("run_date", "claim")):
        on_line(line)
    assert capsys.readouterr().err.splitlines() == [
        "  airflow: run_date done (1 tasks so far)",
        "  airflow: claim done (2 tasks so far)",
    ]


def test_following_sees_every_line_a_tool_writes_even_after_it_truncates(tmp_path: Path) -> None:
    log = tmp_path / "airflow.log"
    log.write_text("an earlier run's line\n" * 50)
    seen: list[str] = []
    with following(log, seen.append, poll=0.01):
        log.write_text("")  # the tool starts its log afresh
        with log.open("a") as out:
            out.write("first\nsecond\n")
            out.flush()
            out.write("third\npartial")
    assert seen == ["first", "second", "third"]
