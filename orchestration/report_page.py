"""The run report as one self-contained HTML page: tables and plotly charts, no network.

Pure: a run's report and the reports of the runs before it in, a page out. plotly.js is
inlined once, so the page opens from a bucket, a file or an air-gapped laptop alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from orchestration.summary import (
    COUNT_HEADER,
    MODEL_TESTS_HEADER,
    QUARANTINE_HEADER,
    TEST_HEADER,
    RunReport,
    count_rows,
    dbt_test_counts,
    failing_test_rows,
    model_test_counts,
    quarantine_rows,
    reconcile,
    stage_records,
    stage_seconds,
)

# How many runs the trend chart shows, the newest last.
TREND_RUNS = 14

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.92rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, td.sample { font-family: ui-monospace, monospace; font-size: 0.85rem; word-break: break-all; }
.ok { color: #176f2c; } .bad { color: #b3261e; } .warn { color: #8a5a00; }
.badges span { display: inline-block; margin-right: 1.2rem; font-weight: 600; }
.chart { min-height: 380px; }
"""

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


def _cell(value: Any, css: str = "") -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        css = (css + " num").strip()
    attr = f' class="{css}"' if css else ""
    return f"<td{attr}>{escape(str(value))}</td>"


def html_table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], table_id: str, sample_col: int = -1
) -> str:
    """A table of ``rows``; the column ``sample_col`` holds raw text (monospace)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(_cell(v, "sample" if i == sample_col else "") for i, v in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def records_figure(report: RunReport) -> go.Figure:
    """Lines per stage, one bar per stream: where a stream's lines went."""
    records = stage_records(report)
    figure = go.Figure()
    for stream in report.streams:
        figure.add_bar(name=stream, x=list(records), y=[records[s][stream] for s in records])
    figure.update_layout(barmode="group", title="Records per stage", yaxis_title="lines")
    return figure


def seconds_figure(report: RunReport) -> go.Figure:
    seconds = stage_seconds(report)
    figure = go.Figure(
        go.Bar(x=list(seconds.values()), y=list(seconds), orientation="h", name="seconds")
    )
    figure.update_layout(
        title="Seconds per stage", xaxis_title="seconds", yaxis={"autorange": "reversed"}
    )
    return figure


def trend_figure(history: Sequence[RunReport]) -> go.Figure:
    """Per run date: lines processed, quarantined, dropped as duplicates and erased, tests
    that did not pass, and the run's seconds (right axis)."""
    days = [r.run_date for r in history]
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    for label, pick in [
        ("processed", lambda c: c.processed),
        ("quarantined", lambda c: c.quarantined_total),
        ("duplicates", lambda c: c.duplicates),
        ("erased", lambda c: c.erased),
    ]:
        totals = [sum(pick(c) for c in r.streams.values()) for r in history]
        figure.add_scatter(x=days, y=totals, name=label, mode="lines+markers")
    not_passed = [sum(n for s, n in dbt_test_counts(r).items() if s != "pass") for r in history]
    figure.add_scatter(x=days, y=not_passed, name="tests not passed", mode="lines+markers")
    seconds = [round(sum(r.seconds.values()), 1) for r in history]
    figure.add_scatter(
        x=days, y=seconds, name="seconds", mode="lines+markers", line={"dash": "dot"},
        secondary_y=True,
    )  # fmt: skip
    figure.update_layout(title=f"The last {len(history)} runs", xaxis={"type": "category"})
    figure.update_yaxes(title_text="lines / tests", secondary_y=False)
    figure.update_yaxes(title_text="seconds", secondary_y=True)
    return figure


def _chart(figure: go.Figure, div_id: str, first: bool) -> str:
    figure.update_layout(template="plotly_white", height=380, margin={"t": 50})
    return str(
        pio.to_html(
            figure,
            full_html=False,
            include_plotlyjs=first,
            div_id=div_id,
            config=PLOTLY_CONFIG,
            default_width="100%",
        )
    )


def _badges(report: RunReport) -> str:
    problems = reconcile(report)
    counts = dbt_test_counts(report)
    failing = counts.get("fail", 0) + counts.get("error", 0)
    stale = [n for n, s in report.freshness.items() if s != "pass"]
    failed = ", ".join(report.failed_tasks)
    badges = [("bad", f"run failed at: {failed}")] if failed else []
    badges += [
        ("bad", "counts do not reconcile") if problems else ("ok", "counts reconcile"),
        ("bad" if failing else "warn" if counts.get("warn") else "ok",
         "dbt tests: " + (", ".join(f"{n} {s}" for s, n in counts.items()) or "none run")),
        ("warn", f"stale sources: {', '.join(stale)}") if stale else ("ok", "sources fresh"),
    ]  # fmt: skip
    spans = "".join(f'<span class="{css}">{escape(text)}</span>' for css, text in badges)
    details = "".join(f'<li class="bad">{escape(p)}</li>' for p in problems)
    return f'<p class="badges" id="status">{spans}</p>' + (f"<ul>{details}</ul>" if details else "")


def _tests_section(report: RunReport) -> str:
    """The tests that did not pass, each stored failure's first rows, then every model's
    tally (the marts an analyst relies on, by name)."""
    if not report.tests:
        return "<p>No dbt test results.</p>"
    rows = failing_test_rows(report)
    parts = [html_table(TEST_HEADER, rows, "tests") if rows else "<p>Every test passed.</p>"]
    for number, test in enumerate(report.tests):
        if test.audit_rows:
            parts.append(
                f"<h3>{escape(test.name)}: first rows of <code>{escape(test.audit_table)}"
                f"</code></h3>" + html_table(test.audit_columns, test.audit_rows, f"audit-{number}")
            )
    parts += [
        "<h3>Tests per model</h3>",
        html_table(MODEL_TESTS_HEADER, model_test_counts(report), "tests-per-model"),
    ]
    return "".join(parts)


def _key_value(rows: dict[str, Any], header: list[str], table_id: str) -> str:
    return html_table(header, [[k, v] for k, v in rows.items()], table_id)


def render_page(
    report: RunReport, history: Sequence[RunReport] = (), trend_runs: int = TREND_RUNS
) -> str:
    """The report page of ``report``; ``history`` (any order, this run included or not)
    feeds the trend of the last ``trend_runs`` run dates."""
    runs = {r.run_date: r for r in history} | {report.run_date: report}
    trend = [runs[day] for day in sorted(runs)][-trend_runs:]
    seconds = {stage: round(secs, 1) for stage, secs in stage_seconds(report).items()}
    title = f"Run report: {report.run_date}"
    sections = [
        f"<h1>{escape(title)}</h1>",
        _badges(report),
        "<h2>Records per stream and stage</h2>",
        html_table(COUNT_HEADER, count_rows(report), "counts"),
        _chart(records_figure(report), "records-chart", first=True),
        "<h2>Quarantine: reasons with a sample line</h2>",
        html_table(QUARANTINE_HEADER, quarantine_rows(report), "quarantine", sample_col=3)
        if quarantine_rows(report)
        else "<p>Nothing quarantined.</p>",
        "<h2>dbt tests</h2>",
        _tests_section(report),
        "<h2>Source freshness (event time)</h2>",
        _key_value(report.freshness, ["source", "status"], "freshness"),
        "<h2>Rows per mart</h2>",
        _key_value(report.marts, ["mart", "rows"], "marts"),
        "<h2>Seconds per stage</h2>",
        _key_value(seconds, ["stage", "seconds"], "seconds"),
        _chart(seconds_figure(report), "seconds-chart", first=False),
        "<h2>Trend</h2>",
        _chart(trend_figure(trend), "trend-chart", first=False),
    ]
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title><style>{STYLE}</style></head><body>{''.join(sections)}</body></html>"
    )
