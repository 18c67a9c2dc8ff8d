"""Reconciliation: every line read is processed, quarantined, a counted duplicate or an erased
customer's line the claim took out."""

from __future__ import annotations

import re

from lake.stats import RunStats, StreamStats
from orchestration.summary import RunReport, format_summary, reconcile, stream_counts


def report_with(spark: StreamStats) -> RunReport:
    report = RunReport(run_date="2026-11-21")
    report.streams["web"] = stream_counts(10, 9, 1, spark)
    return report


def test_counts_that_add_up_reconcile_and_the_summary_says_so() -> None:
    report = report_with(StreamStats(9, 6, 2, {"unparseable": 1}))
    assert reconcile(report) == []
    text = format_summary(report)
    assert "Reconciliation: OK" in text
    assert "quarantined record_too_large: 1" in text  # the shipper's reject is counted


def test_a_lost_line_is_reported_with_the_stream_and_numbers() -> None:
    report = report_with(StreamStats(9, 5, 2, {"unparseable": 1}))
    assert reconcile(report) == [
        "web: read 10 lines but processed + quarantined + duplicates + erased = 9"
    ]
    assert "FAILED" in format_summary(report)


def test_landing_data_the_job_did_not_read_is_reported() -> None:
    report = report_with(StreamStats(read=0))
    assert "web: shipped 9 lines but the Spark job read 0" in reconcile(report)


def test_lines_the_claim_erased_are_accounted_for_not_lost() -> None:
    # 10 read by the shipper, 1 rejected by it, 9 shipped: the claim took 2 erased lines
    # out, the Spark job read the other 7.
    report = report_with(StreamStats(7, 4, 2, {"unparseable": 1}, erased=2))
    assert reconcile(report) == []
    text = format_summary(report)
    assert "read = processed + quarantined + duplicates + erased" in text
    assert re.search(r"^web\s+10\s+9\s+4\s+2\s+2\s+2$", text, re.MULTILINE)
    report = report_with(StreamStats(7, 4, 2, {"unparseable": 1}))
    assert "web: shipped 9 lines but the Spark job read 7" in reconcile(report)


def test_the_dags_summary_comes_from_the_run_manifest() -> None:
    from orchestration.summary import report_from_manifest

    stats = RunStats("2026-11-21", {"web": StreamStats(9, 6, 2, {"unparseable": 1})})
    report = report_from_manifest(stats, {"fct_web_sessions": 3})
    assert reconcile(report) == []
    assert report.streams["web"].quarantined == {"unparseable": 1}
    assert "fct_web_sessions" in format_summary(report)
    # What the claim erased entered the run from landing too.
    stats = RunStats("2026-11-21", {"web": StreamStats(9, 6, 2, {"unparseable": 1}, erased=3)})
    web = report_from_manifest(stats, {}).streams["web"]
    assert (web.read, web.shipped, web.spark_read, web.erased) == (12, 12, 9, 3)
    assert reconcile(report_from_manifest(stats, {})) == []


def test_run_stats_travel_through_json_unchanged() -> None:
    """What the Spark job writes is what the manifest and the summary read back."""
    from lake.stats import parse_stream_stats_line, stream_stats_line

    web = StreamStats(9, 6, 2, {"unparseable": 1}, erased=1)
    assert parse_stream_stats_line(stream_stats_line("web", web)) == ("web", web)
    run = RunStats("2026-11-21", {"web": web})
    assert RunStats.from_dict(run.to_dict()) == run


def test_summary_reports_source_freshness() -> None:
    report = RunReport(run_date="2026-11-21", freshness={"shop.customers": "error"})
    assert "Source freshness (event time):\n  shop.customers          error" in format_summary(
        report
    )
