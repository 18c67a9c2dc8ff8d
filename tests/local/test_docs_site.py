"""The docs site and the analyses on a warehouse the pipeline built from a small demo: the
site is published whole, opens in a real browser with the marts, their columns, the lineage
graph and the star schema diagram, and the analyses give answers that make sense."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from lake import layout
from local.analyses import ANALYSES, Answer, format_answer, run_analyses
from local.docs_site import screenshot_docs, serving
from orchestration import classification, stages
from orchestration.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def built(demo_run: dict[str, Any]) -> Settings:
    """The shared run of the pipeline (tests/conftest.py): warehouse built, docs generated
    and published."""
    return demo_run["settings"]


@pytest.fixture(scope="module")
def answers(built: Settings) -> dict[str, Answer]:
    return {answer.name: answer for answer in run_analyses(built)}


def test_the_site_is_published_whole_to_the_lake_and_the_local_folder(built: Settings) -> None:
    s3 = boto3.client("s3", endpoint_url=built.aws_endpoint_url, region_name=built.region)
    listed = s3.list_objects_v2(Bucket=built.lake_bucket, Prefix=layout.DOCS)["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(layout.DOCS + n for n in stages.SITE_FILES)
    page = s3.head_object(Bucket=built.lake_bucket, Key=layout.DOCS + "index.html")
    assert page["ContentType"] == "text/html"
    local = built.site_dir / "docs"
    assert sorted(p.name for p in local.iterdir()) == sorted(stages.SITE_FILES)
    manifest = (local / "manifest.json").read_text()
    assert "data:image/svg+xml;base64," in manifest  # the diagram travels inside the site


def test_the_docs_site_shows_the_marts_columns_lineage_and_diagram(
    built: Settings, browser: Any, tmp_path: Path
) -> None:
    shots = screenshot_docs(built.site_dir / "docs", tmp_path / "screenshots", browser)
    assert shots.marts_listed == stages.MARTS
    assert {"order_id", "customer_key", "order_total_usd", "net_revenue_usd"} <= set(
        shots.fct_orders_columns
    )
    width, height = shots.erd_size
    assert width > 600 and height > 400  # the star schema, not a broken-image icon
    assert min(shots.graph_size) > 100
    assert [p.name for p in shots.screenshots] == [
        "docs-overview.png", "docs-erd.png", "docs-fct-orders.png", "docs-metric.png",
        "docs-lineage.png",
    ]  # fmt: skip
    assert all(p.stat().st_size > 10_000 for p in shots.screenshots)
    # A metric's page gives its description with its definition, and what it reads: the
    # ratio its two input metrics, the input metric its semantic model, that one its mart.
    ratio, measure, semantic_model = shots.metric_pages
    assert "converted_sessions / human_sessions, a fraction between 0 and 1" in ratio
    assert "Depends On" in ratio and {"converted_sessions", "human_sessions"} <= set(ratio.split())
    assert "Human sessions that placed an order" in measure
    assert "web_sessions" in measure.split("Depends On")[-1]
    assert "One row per web session (fct_web_sessions)" in semantic_model
    assert "fct_web_sessions" in semantic_model.split("Depends On")[-1].split()


def test_the_overview_tells_analysts_what_personal_data_they_see(
    built: Settings, browser: Any
) -> None:
    with serving(built.site_dir / "docs") as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(url + "#!/overview")
            section = page.wait_for_selector("h2:has-text('Personal data')", timeout=60_000)
            section.scroll_into_view_if_needed()
            assert section.is_visible()
            text = page.inner_text("body")
        finally:
            page.close()
    for shown in ("marts_masked", "shoplogs_pii_reader", "DuckDB has no roles",
                  "configurable, default 30 days", "access: protected"):  # fmt: skip
        assert shown in text, shown


def test_every_column_the_warehouse_holds_is_classified(built: Settings) -> None:
    """The published catalog lists the columns the warehouse really has, including those a
    model passes through without declaring them: each personal one is tagged."""
    site = built.site_dir / "docs"
    manifest = json.loads((site / "manifest.json").read_text())
    catalog = json.loads((site / "catalog.json").read_text())
    assert [str(f) for f in classification.unclassified(manifest, catalog)] == []
    import duckdb

    with duckdb.connect(str(built.duckdb_path), read_only=True) as con:
        emails = con.execute(
            "select distinct email from marts_masked.dim_customers_current where email is not null"
        ).fetchall()
    assert emails == [("*****",)]


def test_serving_a_folder_without_a_site_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make run"), serving(tmp_path):
        pass


def test_every_analysis_answers(answers: dict[str, Answer]) -> None:
    assert list(answers) == list(ANALYSES)
    assert all(answer.rows for answer in answers.values())
    assert all(format_answer(a).startswith(a.name) for a in answers.values())


def test_revenue_is_net_at_most_gross_bookings_and_adds_up_to_the_facts(
    built: Settings, answers: dict[str, Answer]
) -> None:
    revenue = answers["revenue_by_day_and_country"]
    for row in revenue.rows:
        values = dict(zip(revenue.columns, row, strict=True))
        assert 0 <= values["net_revenue_usd"] <= values["gross_bookings_usd"]
    import duckdb

    with duckdb.connect(str(built.duckdb_path), read_only=True) as con:
        gross, orders = con.execute(
            "select sum(order_total_usd), count(*) from marts.fct_orders"
        ).fetchone() or (None, None)
    assert sum(revenue.column("gross_bookings_usd")) == gross
    assert sum(revenue.column("orders")) == orders  # every order counted once


def test_shares_are_fractions(answers: dict[str, Answer]) -> None:
    shares = {
        "web_session_conversion": ["conversion_rate"],
        "repeat_customer_share": ["repeat_customer_share", "repeat_order_share"],
        "bot_share_of_traffic": ["bot_session_share", "bot_request_share"],
    }
    for name, columns in shares.items():
        for column in columns:
            assert all(Decimal(0) <= v <= Decimal(1) for v in answers[name].column(column))
    bots = answers["bot_share_of_traffic"]
    for part, whole in (("bot_sessions", "sessions"), ("bot_requests", "requests")):
        pairs = zip(bots.column(part), bots.column(whole), strict=True)
        assert all(0 <= b <= s for b, s in pairs)
    assert sum(bots.column("sessions")) > 0


def test_top_products_are_ranked_by_net_revenue(answers: dict[str, Answer]) -> None:
    top = answers["top_products"]
    net = top.column("net_revenue_usd")
    assert 0 < len(net) <= 10 and net == sorted(net, reverse=True)
    assert all(n <= g for n, g in zip(net, top.column("gross_bookings_usd"), strict=True))
