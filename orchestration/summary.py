"""The run summary: what each stream read, shipped, kept, quarantined and dropped.

Pure functions over the counts the stages return, so the reconciliation rule is tested on
its own: every line read is processed, quarantined with a reason, or a counted duplicate.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lake.stats import RunStats, StreamStats


@dataclass
class StreamCounts:
    read: int = 0
    shipped: int = 0
    spark_read: int = 0
    processed: int = 0
    duplicates: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())


@dataclass
class RunReport:
    run_date: str
    streams: dict[str, StreamCounts] = field(default_factory=dict)
    marts: dict[str, int] = field(default_factory=dict)
    freshness: dict[str, str] = field(default_factory=dict)  # source.table -> pass|warn|error
    seconds: dict[str, float] = field(default_factory=dict)
    # Where the "airflow dag" stage went: each task (a task group as one), and Airflow's own.
    dag_seconds: dict[str, float] = field(default_factory=dict)
    duckdb_path: Path | None = None
    docs_path: Path | None = None


def stream_counts(
    lines_read: int, lines_shipped: int, shipper_rejects: int, spark: StreamStats
) -> StreamCounts:
    counts = StreamCounts(
        read=lines_read,
        shipped=lines_shipped,
        spark_read=spark.read,
        processed=spark.processed,
        duplicates=spark.duplicates,
        quarantined=Counter(spark.quarantined),
    )
    if shipper_rejects:
        counts.quarantined["record_too_large"] += shipper_rejects
    return counts


def report_from_manifest(stats: RunStats, marts: dict[str, int]) -> RunReport:
    """A summary from the run manifest alone, as the DAG sees it: it starts at landing, so
    what arrived there is what it read."""
    report = RunReport(run_date=stats.run_date, marts=marts)
    for name, spark in stats.streams.items():
        report.streams[name] = stream_counts(spark.read, spark.read, 0, spark)
    return report


def reconcile(report: RunReport) -> list[str]:
    """Problems that mean a line was lost or doubled; empty when every line is accounted for."""
    problems = []
    for name, c in report.streams.items():
        accounted = c.processed + c.quarantined_total + c.duplicates
        if accounted != c.read:
            problems.append(
                f"{name}: read {c.read} lines but processed + quarantined + duplicates = "
                f"{accounted}"
            )
        if c.spark_read != c.shipped:
            problems.append(
                f"{name}: shipped {c.shipped} lines but the Spark job read {c.spark_read}"
            )
    return problems


def format_summary(report: RunReport) -> str:
    header = (
        f"{'stream':<10}{'read':>9}{'shipped':>9}{'processed':>11}{'quarantined':>13}"
        f"{'duplicates':>12}"
    )
    lines = [f"Run summary for run date {report.run_date}", "", header, "-" * len(header)]
    for name, c in report.streams.items():
        lines.append(
            f"{name:<10}{c.read:>9}{c.shipped:>9}{c.processed:>11}{c.quarantined_total:>13}"
            f"{c.duplicates:>12}"
        )
        for reason, count in sorted(c.quarantined.items()):
            lines.append(f"{'':<12}quarantined {reason}: {count}")
    problems = reconcile(report)
    lines += [
        "",
        "Reconciliation: "
        + ("OK, read = processed + quarantined + duplicates" if not problems else "FAILED"),
    ]
    lines += [f"  {p}" for p in problems]
    if report.freshness:
        lines += ["", "Source freshness (event time):"]
        lines += [f"  {name:<20}{status:>9}" for name, status in report.freshness.items()]
    if report.marts:
        lines += ["", "Rows per mart:"]
        lines += [f"  {mart:<20}{rows:>9}" for mart, rows in report.marts.items()]
    lines += ["", "Seconds per stage:"]
    lines += [f"  {stage:<20}{secs:>9.1f}" for stage, secs in report.seconds.items()]
    lines.append(f"  {'total':<20}{sum(report.seconds.values()):>9.1f}")
    if report.dag_seconds:
        lines += ["", "Seconds per task of the airflow dag:"]
        lines += [f"  {task:<20}{secs:>9.1f}" for task, secs in report.dag_seconds.items()]
    if report.duckdb_path:
        lines += ["", f"DuckDB warehouse: {report.duckdb_path}"]
    if report.docs_path:
        lines.append(f"dbt docs site:    {report.docs_path}  (serve it with `make docs`)")
    return "\n".join(lines)
