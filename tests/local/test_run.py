"""The local run's command line: finding a user's logs and rejecting bad arguments."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pytest

from local.run import default_run_date, main, rotated_files
from orchestration.settings import load_settings


def test_rotated_logs_are_shipped_oldest_first(tmp_path: Path) -> None:
    for name in [
        "access.log",
        "access.log.1",
        "access.log.10.gz",
        "access.log.2.gz",
        "access.log.bak",
        "error.log",
    ]:
        (tmp_path / name).write_bytes(b"")
    names = [p.name for p in rotated_files(tmp_path, "access.log")]
    assert names == ["access.log.10.gz", "access.log.2.gz", "access.log.1", "access.log"]


def test_gzipped_rotations_are_read_as_text(tmp_path: Path) -> None:
    from shoplogs_agent.files import read_chunks

    path = tmp_path / "access.log.2.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"one\ntwo\n")
    assert b"".join(chunk for _, chunk in read_chunks(path, size=3)) == b"one\ntwo\n"


def test_a_logs_folder_without_logs_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["--logs", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"--logs {tmp_path} holds none of customers.log, orders.log, access.log" in err


def test_a_missing_log_file_is_named(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.log"
    assert main(["--web", str(missing)]) == 1
    assert f"log file {missing} does not exist" in capsys.readouterr().err


def test_a_run_date_before_the_arrival_day_is_refused(tmp_path: Path, capsys) -> None:
    log = tmp_path / "access.log"
    log.write_text("x\n")
    assert main(["--web", str(log), "--run-date", "2000-01-01"]) == 1
    assert "Leave --run-date out" in capsys.readouterr().err


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_local_runner_refuses_cloud_environments(monkeypatch, env: str) -> None:
    monkeypatch.setenv("SHOPLOGS_ENV", env)
    assert main([]) == 2


def test_a_bad_setting_is_named_without_a_traceback(monkeypatch, capsys) -> None:
    monkeypatch.setenv("SHOPLOGS_WAREHOUSE", "bigquery")
    assert main([]) == 2
    assert "Pipeline FAILED: SHOPLOGS_WAREHOUSE='bigquery' is not one of" in capsys.readouterr().err


def test_the_default_run_date_is_the_arrival_day_of_the_newest_landing_object() -> None:
    # Shipping started at 23:59 on the 21st; its last objects landed after midnight.
    landed = [
        "landing/web/2026/11/21/23/shoplogs-local-web-1-2026-11-21-23-59-58-a",
        "landing/web/2026/11/22/00/shoplogs-local-web-1-2026-11-22-00-00-03-b",
        "landing/orders/2026/11/21/23/shoplogs-local-orders-1-2026-11-21-23-59-59-c",
        "landing/web/not-a-firehose-key",
    ]
    assert default_run_date(landed) == date(2026, 11, 22)  # claims both days' objects
    assert default_run_date(landed[:1]) == date(2026, 11, 21)
    assert default_run_date([]) is None


def test_a_failed_dbt_build_still_publishes_the_runs_report(monkeypatch, tmp_path: Path) -> None:
    """The stages are stubbed: this is the runner's rule, that a run failing after its data
    was promoted (a failing dbt test above all) still says what it found."""
    from dataclasses import replace

    from lake.manifest import Manifest
    from lake.stats import RunStats
    from local import run
    from orchestration import stages
    from orchestration.settings import load_settings
    from orchestration.summary import RunReport, dbt_test_results
    from orchestration.tools import ToolFailed

    day = date(2026, 11, 21)
    settings = replace(load_settings("local"), work_dir=tmp_path)
    monkeypatch.setattr(run, "_ship", lambda *_: (RunReport(run_date=day.isoformat()), {}, day))
    for stage in ("claim_landing", "preprocess_locally", "load_warehouse", "generate_docs"):
        monkeypatch.setattr(stages, stage, lambda *_, **__: None)
    monkeypatch.setattr(stages, "check_freshness", lambda *_: {"shop.orders": "pass"})
    manifest = Manifest(day.isoformat(), [], [], RunStats(day.isoformat()))
    monkeypatch.setattr(stages, "promote_zones", lambda *_: manifest)

    def failing_build(*_: object, **__: object) -> None:
        raise ToolFailed("`dbt build` failed (exit 1)")

    def details(_: object, report: RunReport, __: object) -> None:
        failed = {
            "unique_id": "test.shoplogs.accepted_values_fct_orders_status.1a",
            "status": "fail",
            "failures": 3,
            "relation_name": '"audit"."accepted_values_fct_1a"',
        }
        report.tests = dbt_test_results({"results": [failed]})  # fmt: skip

    monkeypatch.setattr(stages, "build_warehouse", failing_build)
    monkeypatch.setattr(stages, "gather_report_details", details)
    monkeypatch.setattr(stages, "publish_report", lambda *_: "s3://lake/reports/")

    with pytest.raises(run.StageFailed) as failed:
        run.run_pipeline(settings, {})
    assert failed.value.stage == "dbt build" and failed.value.report
    [test] = failed.value.report.tests
    assert (test.status, test.audit_table) == ("fail", "audit.accepted_values_fct_1a")
    page = (run.report_dir(settings) / "index.html").read_text()
    assert "audit.accepted_values_fct_1a" in page and "dbt tests: 1 fail" in page


def test_a_failed_dag_run_still_shows_the_report_its_summary_task_published(
    monkeypatch, tmp_path: Path
) -> None:
    """``make run`` (Airflow engine): the DAG fails, its summary task published the report
    anyway (tests/orchestration/test_dbt_group_failure.py runs that for real); the runner
    adds the shipping and prints it with the failure, rather than the failure alone."""
    from dataclasses import replace

    from local import run
    from orchestration import stages
    from orchestration.settings import load_settings
    from orchestration.summary import RunReport, dbt_test_results, format_summary
    from orchestration.tools import ToolFailed

    day = date(2026, 11, 21)
    settings = replace(load_settings("local"), work_dir=tmp_path)
    (tmp_path / "logs").mkdir()
    monkeypatch.setattr(run, "_ship", lambda *_: (RunReport(run_date=day.isoformat()), {}, day))
    monkeypatch.setattr(run, "build_manifest", lambda *_: None)
    monkeypatch.setattr(run, "prepare", lambda *_: {})

    def failing_dag(_: object, __: object, log_file: Path, *___: object) -> None:
        log_file.write_text("")
        raise ToolFailed("`airflow dags test shoplogs_pipeline 2026-11-21` failed (exit 1)")

    monkeypatch.setattr(run, "dags_test", failing_dag)
    published = RunReport(
        run_date=day.isoformat(),
        failed_tasks=["dbt.fct_orders"],
        tests=dbt_test_results({"results": [{
            "unique_id": "test.shoplogs.accepted_values_fct_orders_status.1a",
            "status": "fail", "failures": 3,
            "relation_name": '"audit"."accepted_values_fct_1a"',
        }]}),
    )  # fmt: skip
    monkeypatch.setattr(run, "published_report", lambda *_, **__: published)

    def no_manifest(*_: object) -> None:  # the run failed before promoting its zones
        raise FileNotFoundError("no run manifest")

    monkeypatch.setattr(stages, "read_manifest", no_manifest)
    monkeypatch.setattr(stages, "mart_row_counts", lambda *_: pytest.fail("marts counted"))
    monkeypatch.setattr(stages, "publish_report", lambda *_: "s3://lake/reports/")

    with pytest.raises(run.StageFailed) as failed:
        run.run_pipeline_in_airflow(settings, {})
    assert failed.value.stage == "airflow dag" and failed.value.report
    text = format_summary(failed.value.report)
    assert "Run FAILED at: dbt.fct_orders" in text
    assert "audit.accepted_values_fct_1a" in text
    page = (run.report_dir(settings) / "index.html").read_text()
    assert "run failed at: dbt.fct_orders" in page


def test_each_run_starts_a_new_local_warehouse(tmp_path: Path, monkeypatch) -> None:
    """A warehouse an older version built (here: a seed without today's columns) would
    break the next build; the local lake is new each run, so the warehouse is too."""
    import duckdb

    from local.run import fresh_warehouse

    monkeypatch.setenv("SHOPLOGS_WORK_DIR", str(tmp_path))
    settings = load_settings("local")
    settings.duckdb_path.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute("create schema reference")
        con.execute("create table reference.exchange_rates (currency varchar, usd_per_unit double)")
    fresh_warehouse(settings)
    assert not settings.duckdb_path.exists()
    fresh_warehouse(settings)  # nothing there: still fine
