"""The run report: what each stream read, shipped, kept, quarantined, dropped and erased,
what dbt's tests found, how fresh the sources are and where the time went.

Pure functions over what the stages return, so the reconciliation rule is tested on its own:
every line read is processed, quarantined with a reason, a counted duplicate, or an erased
customer's line the claim took out (docs/erasure.md). The report
travels as JSON (``to_dict``/``from_dict``): one file per run date, which the report page
(orchestration/report_page.py) reads back for the last runs' trend.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lake.stats import RunStats, StreamStats

# A sample line is evidence, not a copy of the log: long or binary lines are cut.
SAMPLE_CHARS = 160
# Rows of a failing test's audit table shown in the report.
AUDIT_SAMPLE_ROWS = 5


@dataclass
class StreamCounts:
    read: int = 0
    shipped: int = 0
    spark_read: int = 0
    processed: int = 0
    duplicates: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    erased: int = 0  # erased customers' lines the claim took out before Spark read them

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())


@dataclass(frozen=True)
class QuarantineSample:
    """One quarantined line of a reason, to show what such a line looks like."""

    line: str
    detail: str = ""


@dataclass(frozen=True)
class DbtTest:
    """One dbt test of the run. A failing or warning test that stores its failures names
    the audit table (``store_failures``) and carries the first rows of it."""

    name: str
    status: str  # pass | warn | fail | error | skipped (dbt's own words)
    tested: str = ""  # the model, source or seed the test is attached to
    failures: int = 0
    message: str = ""
    audit_table: str = ""
    audit_columns: tuple[str, ...] = ()
    audit_rows: tuple[tuple[str, ...], ...] = ()

    @property
    def passed(self) -> bool:
        return self.status in {"pass", "success"}


@dataclass
class RunReport:
    run_date: str
    streams: dict[str, StreamCounts] = field(default_factory=dict)
    marts: dict[str, int] = field(default_factory=dict)
    freshness: dict[str, str] = field(default_factory=dict)  # source.table -> pass|warn|error
    seconds: dict[str, float] = field(default_factory=dict)
    # Where the "airflow dag" stage went: each task (a task group as one), and Airflow's own.
    dag_seconds: dict[str, float] = field(default_factory=dict)
    # stream -> reason -> one line quarantined for that reason
    quarantine_samples: dict[str, dict[str, QuarantineSample]] = field(default_factory=dict)
    # Whole objects no line could be read from (lake/zones.py screen): key -> reason.
    quarantined_objects: dict[str, str] = field(default_factory=dict)
    tests: list[DbtTest] = field(default_factory=list)
    duckdb_path: Path | None = None
    docs_path: Path | None = None
    page_path: str = ""  # where the run's report page was published
    failed_tasks: list[str] = field(default_factory=list)  # the DAG's, when the run failed

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data; the local paths stay out (they mean nothing
        where the report is read)."""
        return {
            "run_date": self.run_date,
            "failed_tasks": list(self.failed_tasks),
            "streams": {
                name: {
                    "read": c.read, "shipped": c.shipped, "spark_read": c.spark_read,
                    "processed": c.processed, "duplicates": c.duplicates,
                    "quarantined": dict(sorted(c.quarantined.items())), "erased": c.erased,
                }
                for name, c in self.streams.items()
            },
            "marts": dict(self.marts),
            "freshness": dict(self.freshness),
            "seconds": {stage: round(secs, 3) for stage, secs in self.seconds.items()},
            "dag_seconds": {task: round(secs, 3) for task, secs in self.dag_seconds.items()},
            "quarantine_samples": {
                stream: {r: {"line": s.line, "detail": s.detail} for r, s in samples.items()}
                for stream, samples in self.quarantine_samples.items()
            },
            "quarantined_objects": dict(sorted(self.quarantined_objects.items())),
            "tests": [
                {**t.__dict__, "audit_columns": list(t.audit_columns),
                 "audit_rows": [list(row) for row in t.audit_rows]}
                for t in self.tests
            ],
        }  # fmt: skip

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RunReport:
        streams = {
            name: StreamCounts(
                read=c["read"], shipped=c["shipped"], spark_read=c["spark_read"],
                processed=c["processed"], duplicates=c["duplicates"],
                quarantined=Counter(c.get("quarantined", {})), erased=c.get("erased", 0),
            )
            for name, c in raw.get("streams", {}).items()
        }  # fmt: skip
        samples = {
            stream: {reason: QuarantineSample(**s) for reason, s in by_reason.items()}
            for stream, by_reason in raw.get("quarantine_samples", {}).items()
        }
        tests = [
            DbtTest(**{**t, "audit_columns": tuple(t.get("audit_columns", ())),
                          "audit_rows": tuple(tuple(r) for r in t.get("audit_rows", ()))})
            for t in raw.get("tests", [])
        ]  # fmt: skip
        return cls(
            run_date=str(raw["run_date"]),
            streams=streams,
            marts=dict(raw.get("marts", {})),
            freshness=dict(raw.get("freshness", {})),
            seconds=dict(raw.get("seconds", {})),
            dag_seconds=dict(raw.get("dag_seconds", {})),
            quarantine_samples=samples,
            quarantined_objects=dict(raw.get("quarantined_objects", {})),
            tests=tests,
            failed_tasks=list(raw.get("failed_tasks", [])),
        )


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
        erased=spark.erased,
    )
    if shipper_rejects:
        counts.quarantined["record_too_large"] += shipper_rejects
    return counts


def report_from_manifest(stats: RunStats, marts: dict[str, int]) -> RunReport:
    """A summary from the run manifest alone, as the DAG sees it: it starts at landing, so
    what arrived there (what Spark read, and the erased lines the claim took out) is what it
    read."""
    report = RunReport(run_date=stats.run_date, marts=marts)
    for name, spark in stats.streams.items():
        report.streams[name] = stream_counts(spark.entered, spark.entered, 0, spark)
    return report


def failed_tasks(task_states: Mapping[str, str | None]) -> list[str]:
    """The tasks of a DAG run that failed, from ``{task_id: state}``. Tasks that never ran
    because of them (``upstream_failed``) are their consequence, not news."""
    return sorted(task for task, state in task_states.items() if state == "failed")


def reconcile(report: RunReport) -> list[str]:
    """Problems that mean a line was lost or doubled; empty when every line is accounted for."""
    problems = []
    for name, c in report.streams.items():
        accounted = c.processed + c.quarantined_total + c.duplicates + c.erased
        if accounted != c.read:
            problems.append(
                f"{name}: read {c.read} lines but processed + quarantined + duplicates + "
                f"erased = {accounted}"
            )
        if c.spark_read + c.erased != c.shipped:
            problems.append(
                f"{name}: shipped {c.shipped} lines but the Spark job read {c.spark_read}"
                + (f" and the claim erased {c.erased}" if c.erased else "")
            )
    return problems


def cut(text: str, limit: int = SAMPLE_CHARS) -> str:
    """``text`` on one line, at most ``limit`` characters; control bytes shown escaped."""
    flat = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def quarantine_samples(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, QuarantineSample]]:
    """The first line of each stream and reason among quarantine rows (the JSON lines the
    Spark job and the shipper write: stream, reason, detail, raw_line)."""
    samples: dict[str, dict[str, QuarantineSample]] = {}
    for row in rows:
        by_reason = samples.setdefault(str(row["stream"]), {})
        if str(row["reason"]) not in by_reason:
            by_reason[str(row["reason"])] = QuarantineSample(
                cut(str(row.get("raw_line") or "")), cut(str(row.get("detail") or ""))
            )
    return samples


def _node_name(unique_id: str) -> str:
    # test.<project>.<name>.<hash>, unit_test.<project>.<model>.<name>
    parts = unique_id.split(".")
    return parts[3] if parts[0] == "unit_test" else parts[2]


def _tested(unique_id: str, manifest: Mapping[str, Any]) -> str:
    node = manifest.get("nodes", {}).get(unique_id) or manifest.get("unit_tests", {}).get(
        unique_id, {}
    )
    attached = node.get("attached_node") or node.get("model") or ""
    return str(attached).split(".")[-1]


def dbt_test_results(
    run_results: Mapping[str, Any], manifest: Mapping[str, Any] | None = None
) -> list[DbtTest]:
    """The tests of a ``dbt build`` from its ``run_results.json`` (data tests and unit
    tests), named with what they test when the project's ``manifest.json`` is given."""
    results = []
    for result in run_results.get("results", []):
        unique_id = str(result["unique_id"])
        if not unique_id.startswith(("test.", "unit_test.")):
            continue
        status = str(result["status"])
        failing = status not in {"pass", "success", "skipped"}
        results.append(
            DbtTest(
                name=_node_name(unique_id),
                status=status,
                tested=_tested(unique_id, manifest or {}),
                failures=int(result.get("failures") or 0),
                message=cut(str(result.get("message") or "")) if failing else "",
                # dbt names the table only for tests that store their failures.
                audit_table=str(result.get("relation_name") or "").replace('"', "")
                if failing
                else "",
            )
        )
    return sorted(results, key=lambda t: (t.passed, t.tested, t.name))


def with_audit_rows(test: DbtTest, columns: list[str], rows: Iterable[Iterable[Any]]) -> DbtTest:
    """``test`` with the first rows of its audit table, as text."""
    kept = tuple(tuple(str(v) for v in row) for row in list(rows)[:AUDIT_SAMPLE_ROWS])
    return DbtTest(**{**test.__dict__, "audit_columns": tuple(columns), "audit_rows": kept})


def dbt_test_counts(report: RunReport) -> dict[str, int]:
    counts = Counter(t.status for t in report.tests)
    return {
        status: counts[status] for status in ("pass", "warn", "fail", "error") if counts[status]
    }


# --- rows: what the printed summary and the HTML page show, computed once ---------------

COUNT_HEADER = ["stream", "read", "shipped", "spark read", "processed", "quarantined",
                "duplicates", "erased"]  # fmt: skip


def count_rows(report: RunReport) -> list[list[Any]]:
    """Per stream and stage: the lines read by the shipper, shipped, read by Spark, then
    processed, quarantined, dropped as duplicates and erased at the claim; and the totals."""
    rows: list[list[Any]] = [
        [name, c.read, c.shipped, c.spark_read, c.processed, c.quarantined_total, c.duplicates,
         c.erased]
        for name, c in report.streams.items()
    ]  # fmt: skip
    if len(rows) > 1:
        rows.append(["total", *(sum(row[i] for row in rows) for i in range(1, len(COUNT_HEADER)))])
    return rows


def stage_records(report: RunReport) -> dict[str, dict[str, int]]:
    """``{stage: {stream: lines}}``, the stages in pipeline order (the records chart)."""
    streams = [row for row in count_rows(report) if row[0] != "total"]
    return {
        stage: {row[0]: row[i] for row in streams}
        for i, stage in enumerate(COUNT_HEADER[1:], start=1)
    }


QUARANTINE_HEADER = ["stream", "reason", "lines", "sample line", "detail"]


def quarantine_rows(report: RunReport) -> list[list[Any]]:
    """Each stream's quarantine reasons with their count and a sample line."""
    rows: list[list[Any]] = []
    for name, c in report.streams.items():
        samples = report.quarantine_samples.get(name, {})
        for reason, lines in sorted(c.quarantined.items()):
            sample = samples.get(reason, QuarantineSample("(no sample kept)"))
            rows.append([name, reason, lines, sample.line, sample.detail])
    rows += [["(whole object)", reason, "", key, "re-send the source file"]
             for key, reason in report.quarantined_objects.items()]  # fmt: skip
    return rows


TEST_HEADER = ["status", "test", "on", "failing rows", "audit table"]


def failing_test_rows(report: RunReport) -> list[list[Any]]:
    """The tests that did not pass, with where their failing rows are kept."""
    return [
        [t.status, t.name, t.tested, t.failures, t.audit_table or "(failures not stored)"]
        for t in report.tests
        if not t.passed and t.status != "skipped"
    ]


MODEL_TESTS_HEADER = ["model", "pass", "warn", "fail", "error"]


def model_test_counts(report: RunReport) -> list[list[Any]]:
    """How each model's (or source's) tests came out: the marts an analyst relies on, named."""
    counts: dict[str, Counter[str]] = {}
    for t in report.tests:
        counts.setdefault(t.tested or "(unknown)", Counter())[t.status] += 1
    return [
        [model, *(c[status] for status in MODEL_TESTS_HEADER[1:])]
        for model, c in sorted(counts.items())
    ]


def stage_seconds(report: RunReport) -> dict[str, float]:
    """Seconds per stage; a run under Airflow shows the DAG's tasks in place of its one
    ``airflow dag`` stage."""
    seconds: dict[str, float] = {}
    for stage, secs in report.seconds.items():
        if stage == "airflow dag" and report.dag_seconds:
            seconds |= {f"dag: {task}": s for task, s in report.dag_seconds.items()}
        else:
            seconds[stage] = secs
    return seconds


def _table(header: list[str], rows: list[list[Any]], indent: str = "  ") -> list[str]:
    """A plain-text table, numbers right-aligned."""
    cells = [header, *[[str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [all(isinstance(row[i], int) for row in rows) for i in range(len(header))]

    def line(row: list[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(row, widths, numeric, strict=True)
        ]
        return (indent + "  ".join(parts)).rstrip()

    return [line(cells[0]), indent + "-" * (sum(widths) + 2 * (len(widths) - 1)),
            *map(line, cells[1:])]  # fmt: skip


def _test_lines(report: RunReport) -> list[str]:
    counts = dbt_test_counts(report)
    lines = ["", "dbt tests: " + (", ".join(f"{n} {s}" for s, n in counts.items()) or "none")]
    for t in report.tests:
        if t.passed or t.status == "skipped":
            continue
        where = f"failing rows in {t.audit_table}" if t.audit_table else "failures not stored"
        lines.append(f"  {t.status:<5} {t.name} on {t.tested}: {t.failures} rows; {where}")
        if t.audit_rows:
            lines += _table(list(t.audit_columns), [list(r) for r in t.audit_rows], " " * 8)
    return lines


def _count_lines(report: RunReport) -> list[str]:
    header = (
        f"{'stream':<10}{'read':>9}{'shipped':>9}{'processed':>11}{'quarantined':>13}"
        f"{'duplicates':>12}{'erased':>8}"
    )
    lines = [header, "-" * len(header)]
    for name, c in report.streams.items():
        lines.append(
            f"{name:<10}{c.read:>9}{c.shipped:>9}{c.processed:>11}{c.quarantined_total:>13}"
            f"{c.duplicates:>12}{c.erased:>8}"
        )
        samples = report.quarantine_samples.get(name, {})
        for reason, count in sorted(c.quarantined.items()):
            sample = f"  e.g. {cut(samples[reason].line, 60)}" if reason in samples else ""
            lines.append(f"{'':<12}quarantined {reason}: {count}{sample}")
    lines += [f"{'':<12}object set aside ({reason}): {key}"
              for key, reason in report.quarantined_objects.items()]  # fmt: skip
    return lines


def format_summary(report: RunReport) -> str:
    lines = [f"Run summary for run date {report.run_date}", ""]
    if report.failed_tasks:
        lines += [f"Run FAILED at: {', '.join(report.failed_tasks)}", ""]
    lines += _count_lines(report)
    problems = reconcile(report)
    lines += [
        "",
        "Reconciliation: "
        + (
            "OK, read = processed + quarantined + duplicates + erased" if not problems else "FAILED"
        ),
    ]
    lines += [f"  {p}" for p in problems]
    if report.tests:
        lines += _test_lines(report)
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
    if report.page_path:
        lines.append(f"Run report:       {report.page_path}  (serve it with `make report`)")
    return "\n".join(lines)
