"""The demo generator is deterministic and its own bookkeeping adds up."""

from __future__ import annotations

import json
from pathlib import Path

from lake.layout import LOG_FILES
from local.demo import DemoSpec, generate

SMALL = DemoSpec(
    days=2,
    customers=20,
    orders_per_day=10,
    visits_per_day=15,
    malformed_rate=0.05,
    duplicate_rate=0.05,
)


def read_all(folder: Path) -> dict[str, bytes]:
    return {name: (folder / file).read_bytes() for name, file in LOG_FILES.items()}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    generate(SMALL, tmp_path / "a")
    generate(SMALL, tmp_path / "b")
    generate(DemoSpec(**{**SMALL.__dict__, "seed": 7}), tmp_path / "c")
    assert read_all(tmp_path / "a") == read_all(tmp_path / "b")
    assert read_all(tmp_path / "a") != read_all(tmp_path / "c")


def test_every_line_is_valid_duplicate_or_malformed(tmp_path: Path) -> None:
    truth = generate(SMALL, tmp_path)
    for name, file in LOG_FILES.items():
        lines = (tmp_path / file).read_bytes().splitlines()
        counts = truth.streams[name]
        assert len(lines) == counts.lines
        assert counts.lines == counts.valid + counts.duplicates + sum(counts.quarantined.values())
    expected = json.loads((tmp_path / "_expected.json").read_text())
    assert expected["customers"] == 20


def test_default_demo_mixes_in_bad_lines_and_duplicates(tmp_path: Path) -> None:
    truth = generate(DemoSpec(), tmp_path)
    for counts in truth.streams.values():
        assert sum(counts.quarantined.values()) > 0
    # Events with ids are resent; identical access-log lines are real repeated requests.
    assert truth.streams["customers"].duplicates > 0 and truth.streams["orders"].duplicates > 0
    web = (tmp_path / LOG_FILES["web"]).read_bytes().splitlines()
    assert truth.streams["web"].duplicates == 0 and len(set(web)) < len(web)
