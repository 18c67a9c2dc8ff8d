"""The run report's edges: gathering what the lake and dbt kept of a run, and publishing the
report where people open it (the lake's ``reports/`` prefix; a folder on a laptop).

The logic lives in orchestration/summary.py (data, rows) and report_page.py (HTML); here
are only reads and writes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from lake import layout, zones
from orchestration.report_page import TREND_RUNS, render_page
from orchestration.runners.dbt import MANIFEST, run_dbt
from orchestration.settings import Settings
from orchestration.summary import (
    AUDIT_SAMPLE_ROWS,
    DbtTest,
    QuarantineSample,
    RunReport,
    dbt_test_results,
    quarantine_samples,
    with_audit_rows,
)

log = logging.getLogger(__name__)

# A run with many failing tests still reports quickly: each audit table costs a dbt start.
AUDIT_TABLES_SHOWN = 5


class ReportStore(Protocol):
    """Where reports are published, by name below the store's root (layout.report_*)."""

    def read(self, name: str) -> bytes | None: ...

    def write(self, name: str, body: bytes, content_type: str) -> None: ...

    def names(self, prefix: str) -> list[str]: ...

    def location(self, name: str) -> str: ...


@dataclass(frozen=True)
class S3Store:
    """The lake bucket's ``reports/`` prefix."""

    s3: Any
    bucket: str
    prefix: str = layout.REPORTS

    def read(self, name: str) -> bytes | None:
        try:
            return bytes(
                self.s3.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()
            )
        except self.s3.exceptions.NoSuchKey:
            return None

    def write(self, name: str, body: bytes, content_type: str) -> None:
        self.s3.put_object(
            Bucket=self.bucket, Key=self.prefix + name, Body=body, ContentType=content_type
        )

    def names(self, prefix: str) -> list[str]:
        keys = zones.list_keys(self.s3, self.bucket, self.prefix + prefix)
        return [key.removeprefix(self.prefix) for key in keys]

    def location(self, name: str) -> str:
        return layout.uri(self.bucket, self.prefix + name)


@dataclass(frozen=True)
class DirStore:
    """A folder laid out as the ``reports/`` prefix (``Settings.site_dir / "report"``)."""

    root: Path

    def read(self, name: str) -> bytes | None:
        path = self.root / name
        return path.read_bytes() if path.is_file() else None

    def write(self, name: str, body: bytes, content_type: str) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside and renamed: a server reading the page never sees half of it.
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(body)
        partial.replace(path)

    def names(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in folder.iterdir() if p.is_file())

    def location(self, name: str) -> str:
        return str(self.root / name)


def past_reports(store: ReportStore, keep: int = TREND_RUNS) -> list[RunReport]:
    """The newest ``keep`` reports the store holds; a file that cannot be read is skipped
    (it only thins the trend) and logged."""
    names = sorted(n for n in store.names(layout.REPORT_RUNS) if n.endswith(".json"))
    reports = []
    for name in names[-keep:]:
        try:
            reports.append(RunReport.from_dict(json.loads(store.read(name) or b"")))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("skipping the unreadable report data %s: %s", store.location(name), exc)
    return reports


def publish_report(store: ReportStore, report: RunReport, trend_runs: int = TREND_RUNS) -> str:
    """Keep the run's data, render its page with the trend of the last ``trend_runs`` run
    dates, and make it the latest page unless a newer run date is published already (a
    backfill of an old day leaves the latest page alone). Returns where the run's page is.
    Publishing the same run date again replaces its files."""
    run_date = date.fromisoformat(report.run_date)
    data = json.dumps(report.to_dict(), indent=2, sort_keys=True).encode()
    store.write(layout.report_data(run_date), data, "application/json")
    history = past_reports(store, trend_runs)
    page = render_page(report, history, trend_runs).encode()
    store.write(layout.report_page(run_date), page, "text/html; charset=utf-8")
    if all(past.run_date <= report.run_date for past in history):
        store.write(layout.REPORT_INDEX, page, "text/html; charset=utf-8")
    return store.location(layout.report_page(run_date))


# --- gathering what the lake and dbt kept of a run ---------------------------------------


def _json_lines(body: bytes) -> Iterator[dict[str, Any]]:
    for line in body.splitlines():
        try:
            yield json.loads(line)
        except ValueError:
            continue  # a sample is only evidence; a line we cannot read shows nothing


def lake_quarantine_samples(
    s3: Any, bucket: str, run_date: date, streams: tuple[str, ...] = layout.STREAMS
) -> dict[str, dict[str, QuarantineSample]]:
    """A sample line per stream and reason from the run's quarantine partitions."""
    rows: list[dict[str, Any]] = []
    for stream in streams:
        for key in zones.list_keys(s3, bucket, layout.quarantine_prefix(stream, run_date)):
            rows += _json_lines(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return quarantine_samples(rows)


def keep_run_results(s3: Any, bucket: str, run_date: date, run_results: Path) -> str | None:
    """Copy dbt's ``run_results.json`` of the run's build into the run's processing prefix,
    before a later dbt command overwrites it; None when dbt wrote none."""
    if not run_results.is_file():
        return None
    key = layout.dbt_results_key(run_date)
    s3.upload_file(str(run_results), bucket, key)
    return key


def kept_run_results(s3: Any, bucket: str, run_date: date) -> dict[str, Any]:
    """The run's kept ``run_results.json``; empty when the build never wrote one."""
    try:
        body = s3.get_object(Bucket=bucket, Key=layout.dbt_results_key(run_date))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return {}
    return dict(json.loads(body))


def _manifest(target_dir: Path) -> dict[str, Any]:
    """The project's manifest, for what each test tests: the one the run's own dbt commands
    wrote, else the one ``dbt parse`` made for Cosmos (under the DAG the build runs in
    Cosmos' copy of the project). A run driven from one process parses nothing else."""
    for path in (target_dir / "manifest.json", MANIFEST):
        if path.is_file():
            return dict(json.loads(path.read_text()))
    return {}


def show_preview(log_file: Path) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of a ``dbt show --output json --log-format json`` from its log."""
    for line in reversed(log_file.read_text(errors="replace").splitlines()):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("info", {}).get("name") == "ShowNode":
            rows = json.loads(event["data"]["preview"])
            columns = list(rows[0]) if rows else []
            return columns, [[row[c] for c in columns] for row in rows]
    return [], []


def audit_rows(
    settings: Settings,
    test: DbtTest,
    log_file: Path,
    connection_env: dict[str, str] | None = None,
) -> DbtTest:
    """``test`` with the first rows of its audit table, read with ``dbt show`` so every
    warehouse is read the same way; unchanged when the table cannot be read."""
    log_file.unlink(missing_ok=True)
    try:
        run_dbt(
            settings,
            ["--log-format", "json", "show", "--inline", f"select * from {test.audit_table}",
             "--limit", str(AUDIT_SAMPLE_ROWS), "--output", "json"],
            log_file,
            connection_env,
        )  # fmt: skip
        columns, rows = show_preview(log_file)
    except (OSError, RuntimeError, ValueError) as exc:  # ToolFailed is a RuntimeError
        log.warning("could not read the audit table %s: %s", test.audit_table, exc)
        return test
    return with_audit_rows(test, columns, rows)


def dbt_tests_of_run(
    settings: Settings,
    run_results: dict[str, Any],
    log_file: Path,
    connection_env: dict[str, str] | None = None,
) -> list[DbtTest]:
    """The tests of a run's ``run_results.json``, each failing or warning test with the
    first rows of its audit table."""
    tests = dbt_test_results(run_results, _manifest(settings.dbt_target_dir))
    with_audit = [t for t in tests if t.audit_table][:AUDIT_TABLES_SHOWN]
    shown = {id(t): audit_rows(settings, t, log_file, connection_env) for t in with_audit}
    return [shown.get(id(t), t) for t in tests]
