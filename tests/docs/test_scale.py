"""docs/scale.md sizes the system from measured rates: every figure it says was measured
names a key that ``make bench`` wrote to bench/results.json."""

from __future__ import annotations

import json
import re
from typing import Any

from orchestration.settings import REPO_ROOT

CITED = re.compile(r"`results: ([^`]+)`")


def lookup(results: dict[str, Any], key: str) -> Any:
    value: Any = results
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def test_every_measured_figure_in_the_sizing_names_a_key_the_bench_wrote() -> None:
    text = (REPO_ROOT / "docs" / "scale.md").read_text()
    results = json.loads((REPO_ROOT / "bench" / "results.json").read_text())
    cited = CITED.findall(text)
    assert len(cited) >= 10, "the sizing cites its measurements as `results: <key>`"
    missing = [key for key in cited if not isinstance(lookup(results, key), int | float)]
    assert not missing, f"docs/scale.md cites keys bench/results.json does not hold: {missing}"
