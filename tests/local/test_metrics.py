"""The semantic layer on the warehouse the pipeline built from a small demo: every saved
query answers through MetricFlow, and each gives what the analysis of the same question
gives (both built from the same measures)."""

from __future__ import annotations

from typing import Any

import pytest

from local.analyses import Answer, run_analyses
from local.metrics import SAVED_QUERIES, main, query_saved
from orchestration.settings import Settings
from tests.metric_answers import COLUMNS, differences

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def built(demo_run: dict[str, Any]) -> Settings:
    return demo_run["settings"]


@pytest.fixture(scope="module")
def answered(built: Settings) -> dict[str, tuple[Answer, Answer]]:
    """``{question: (the analysis's answer, the saved query's)}``."""
    metrics = {answer.name: answer for answer in query_saved(built)}
    return {answer.name: (answer, metrics[answer.name]) for answer in run_analyses(built)}


def test_every_saved_query_answers_as_its_analysis(
    answered: dict[str, tuple[Answer, Answer]],
) -> None:
    assert sorted(answered) == sorted(SAVED_QUERIES) == sorted(COLUMNS)
    for analysis, metrics in answered.values():
        assert metrics.rows, metrics.name
        assert differences(analysis, metrics) == []


def test_the_rates_divide_their_metrics(answered: dict[str, tuple[Answer, Answer]]) -> None:
    """A ratio metric is its numerator over its denominator, and the top product leads."""
    _, repeat = answered["repeat_customer_share"]
    shares = dict(zip(repeat.columns, repeat.rows[0], strict=True))
    assert 0 < shares["repeat_customers"] <= shares["ordering_customers"]
    assert shares["repeat_customer_share"] == pytest.approx(
        shares["repeat_customers"] / shares["ordering_customers"]
    )
    _, products = answered["top_products"]
    net = products.column("line_net_revenue")
    assert 0 < len(net) <= 10 and net == sorted(net, reverse=True)


def test_the_comparison_finds_a_differing_answer(
    answered: dict[str, tuple[Answer, Answer]],
) -> None:
    analysis, metrics = answered["bot_share_of_traffic"]
    index = metrics.columns.index("bot_sessions")
    changed = (*metrics.rows[0][:index], metrics.rows[0][index] + 1, *metrics.rows[0][index + 1 :])
    wrong = Answer(metrics.name, metrics.columns, (changed, *metrics.rows[1:]))
    assert differences(analysis, wrong) == [
        f"bot_share_of_traffic row 0 bot_sessions: analysis {analysis.rows[0][2]!r}, "
        f"bot_sessions {changed[index]!r}"
    ]
    assert differences(analysis, Answer(metrics.name, metrics.columns, metrics.rows[1:]))


def test_an_unknown_saved_query_is_named_with_the_known_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["revenue_by_weekday"]) == 2
    err = capsys.readouterr().err
    assert "no saved query revenue_by_weekday" in err and "top_products" in err
