"""The run report: its data (quarantine samples, dbt test results with their audit tables,
reconciliation), its rows, its JSON, its HTML page and where it is published."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from orchestration.report_page import TREND_RUNS, render_page
from orchestration.run_report import DirStore, past_reports, publish_report, show_preview
from orchestration.summary import (
    QuarantineSample,
    RunReport,
    StreamCounts,
    count_rows,
    dbt_test_results,
    failing_test_rows,
    format_summary,
    model_test_counts,
    quarantine_rows,
    quarantine_samples,
    stage_records,
    stage_seconds,
    with_audit_rows,
)

AUDIT = "shoplogs.audit.relationships_fct_orders_4b1f0c"
RUN_RESULTS = {
    "elapsed_time": 14.5,
    "results": [
        {"unique_id": "model.shoplogs.fct_orders", "status": "success", "failures": None},
        {
            "unique_id": "test.shoplogs.relationships_fct_orders_customer_id.4b1f0c",
            "status": "warn",
            "failures": 2,
            "message": "Got 2 results, configured to warn if != 0",
            "relation_name": f'"shoplogs"."audit"."{AUDIT.split(".")[-1]}"',
        },
        {
            "unique_id": "test.shoplogs.unique_fct_orders_order_id.9a8b7c",
            "status": "pass",
            "failures": 0,
            "relation_name": None,
        },
        {
            "unique_id": "unit_test.shoplogs.int_orders_pivoted.status_pivot",
            "status": "fail",
            "failures": 1,
            "message": "actual differs from expected",
        },
    ],
}
MANIFEST = {
    "nodes": {
        "test.shoplogs.relationships_fct_orders_customer_id.4b1f0c": {
            "attached_node": "model.shoplogs.fct_orders"
        },
        "test.shoplogs.unique_fct_orders_order_id.9a8b7c": {
            "attached_node": "model.shoplogs.fct_orders"
        },
    },
    "unit_tests": {
        "unit_test.shoplogs.int_orders_pivoted.status_pivot": {
            "model": "int_orders_pivoted",
        }
    },
}


def a_report(run_date: str = "2026-11-21", processed: int = 6) -> RunReport:
    report = RunReport(run_date=run_date)
    report.streams["web"] = StreamCounts(
        read=10, shipped=9, spark_read=9, processed=processed, duplicates=2,
        quarantined=Counter({"unparseable": 1, "record_too_large": 1}),
    )  # fmt: skip
    report.streams["orders"] = StreamCounts(read=4, shipped=4, spark_read=4, processed=4)
    report.quarantine_samples = {
        "web": {"unparseable": QuarantineSample("<script>alert(1)</script> GET /", "no match")}
    }
    report.tests = dbt_test_results(RUN_RESULTS, MANIFEST)
    report.freshness = {"shop.orders": "pass", "shop.web_requests": "warn"}
    report.marts = {"fct_orders": 4, "fct_web_sessions": 3}
    report.seconds = {"ship": 1.5, "spark": 12.25, "dbt build": 14.5}
    return report


def test_a_sample_line_is_kept_per_stream_and_reason_cut_to_one_line() -> None:
    BINARY = "\x00\x01" + "x" * 500
    rows = [
        {"stream": "web", "reason": "unparseable", "detail": "d1", "raw_line": "first"},
        {"stream": "web", "reason": "unparseable", "detail": "d2", "raw_line": "second"},
        {"stream": "web", "reason": "binary_content", "detail": "", "raw_line": BINARY},
        {"stream": "orders", "reason": "unparseable", "detail": None, "raw_line": '{"a"'},
    ]  # fmt: skip
    samples = quarantine_samples(rows)
    assert samples["web"]["unparseable"] == QuarantineSample("first", "d1")
    binary = samples["web"]["binary_content"].line
    assert binary.startswith("\\x00\\x01x") and binary.endswith("…") and len(binary) == 160
    assert samples["orders"]["unparseable"] == QuarantineSample('{"a"', "")


def test_quarantine_rows_show_each_reason_with_its_count_and_sample() -> None:
    report = a_report()
    assert quarantine_rows(report) == [
        ["web", "record_too_large", 1, "(no sample kept)", ""],
        ["web", "unparseable", 1, "<script>alert(1)</script> GET /", "no match"],
    ]
    assert "quarantined unparseable: 1  e.g. <script>alert(1)</script> GET /" in format_summary(
        report
    )


def test_dbt_results_name_the_failing_tests_what_they_test_and_their_audit_table() -> None:
    tests = dbt_test_results(RUN_RESULTS, MANIFEST)
    assert [(t.status, t.name, t.tested) for t in tests] == [
        ("warn", "relationships_fct_orders_customer_id", "fct_orders"),
        ("fail", "status_pivot", "int_orders_pivoted"),
        ("pass", "unique_fct_orders_order_id", "fct_orders"),
    ]
    warn = tests[0]
    assert (warn.failures, warn.audit_table) == (2, AUDIT)
    assert tests[2].audit_table == ""  # a passing test has no failures to point at
    report = a_report()
    report.tests[0] = with_audit_rows(warn, ["customer_id", "n"], [("C9", 1), ("C7", 1)] * 4)
    assert failing_test_rows(report) == [
        ["warn", "relationships_fct_orders_customer_id", "fct_orders", 2, AUDIT],
        ["fail", "status_pivot", "int_orders_pivoted", 1, "(failures not stored)"],
    ]
    assert len(report.tests[0].audit_rows) == 5  # a sample, not the table
    text = format_summary(report)
    assert "dbt tests: 1 pass, 1 warn, 1 fail" in text
    assert (
        f"relationships_fct_orders_customer_id on fct_orders: 2 rows; failing rows in {AUDIT}"
        in text
    )
    assert re.search(r"customer_id\s+n\n\s+-+\n\s+C9\s+1", text)
    assert model_test_counts(report) == [
        ["fct_orders", 1, 1, 0, 0],
        ["int_orders_pivoted", 0, 0, 1, 0],
    ]


def test_count_rows_carry_every_stage_and_the_totals() -> None:
    report = a_report()
    assert count_rows(report) == [
        ["web", 10, 9, 9, 6, 2, 2, 0],
        ["orders", 4, 4, 4, 4, 0, 0, 0],
        ["total", 14, 13, 13, 10, 2, 2, 0],
    ]
    assert stage_records(report)["processed"] == {"web": 6, "orders": 4}


def test_seconds_of_a_run_under_airflow_show_the_dags_tasks() -> None:
    report = RunReport(run_date="2026-11-21", seconds={"ship": 1.0, "airflow dag": 30.0},
                       dag_seconds={"claim": 2.0, "dbt": 20.0, "airflow itself": 8.0})  # fmt: skip
    assert stage_seconds(report) == {
        "ship": 1.0, "dag: claim": 2.0, "dag: dbt": 20.0, "dag: airflow itself": 8.0
    }  # fmt: skip


def test_the_report_travels_through_json_unchanged() -> None:
    report = a_report()
    report.tests[0] = with_audit_rows(report.tests[0], ["customer_id"], [("C9",)])
    again = RunReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.to_dict() == report.to_dict()
    assert again.tests == report.tests and again.streams == report.streams


def test_the_page_is_self_contained_and_shows_the_runs_numbers() -> None:
    report = a_report()
    report.tests[0] = with_audit_rows(report.tests[0], ["customer_id"], [("C9",)])
    page = render_page(report, [a_report("2026-11-20", processed=5)])
    assert not re.search(r"<script[^>]+src=", page)  # plotly.js inline, nothing fetched
    assert page.count("Plotly.newPlot") == 3 and page.count("plotly.js v") == 1
    assert '<td class="num">10</td>' in page and "<td>total</td>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert AUDIT in page and "<td>C9</td>" in page and "fct_orders" in page
    assert "counts reconcile" in page and "stale sources: shop.web_requests" in page
    assert '"2026-11-20"' in page  # the earlier run in the trend


def test_counts_that_do_not_reconcile_say_so_on_the_page() -> None:
    report = a_report(processed=5)
    page = render_page(report)
    assert "counts do not reconcile" in page
    assert "web: read 10 lines but processed + quarantined + duplicates + erased = 9" in page


def test_publishing_keeps_each_runs_data_and_the_newest_is_the_latest_page(tmp_path: Path) -> None:
    store = DirStore(tmp_path)
    for day in range(1, 6):
        publish_report(store, a_report(f"2026-11-{day:02d}"), trend_runs=3)
    newest = "2026-11-05"
    assert (tmp_path / f"dt={newest}" / "index.html").is_file()
    assert f"Run report: {newest}" in (tmp_path / "index.html").read_text()
    # A backfill of an old day gets its page; the latest stays the newest day's.
    where = publish_report(store, a_report("2026-10-30"), trend_runs=3)
    assert where == str(tmp_path / "dt=2026-10-30" / "index.html")
    assert f"Run report: {newest}" in (tmp_path / "index.html").read_text()
    assert len(list((tmp_path / "runs").glob("*.json"))) == 6
    assert [r.run_date for r in past_reports(store, 3)] == ["2026-11-03", "2026-11-04", newest]
    assert len(past_reports(store)) == min(6, TREND_RUNS)


def test_publishing_the_same_run_date_again_replaces_it(tmp_path: Path) -> None:
    store = DirStore(tmp_path)
    publish_report(store, a_report(processed=5))
    publish_report(store, a_report(processed=6))
    [kept] = past_reports(store)
    assert kept.streams["web"].processed == 6


def test_an_unreadable_past_report_only_thins_the_trend(tmp_path: Path) -> None:
    store = DirStore(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "dt=2026-11-01.json").write_text("{not json")
    publish_report(store, a_report())
    assert [r.run_date for r in past_reports(store)] == ["2026-11-21"]


def test_audit_rows_are_read_from_dbt_shows_json_log(tmp_path: Path) -> None:
    log = tmp_path / "dbt-show.log"
    preview = json.dumps([{"customer_id": "C9", "n": 1}, {"customer_id": "C7", "n": 2}])
    log.write_text(
        "not json\n"
        + json.dumps({"info": {"name": "MainReportVersion"}, "data": {}}) + "\n"
        + json.dumps({"info": {"name": "ShowNode"}, "data": {"preview": preview}}) + "\n"
    )  # fmt: skip
    assert show_preview(log) == (["customer_id", "n"], [["C9", 1], ["C7", 2]])
