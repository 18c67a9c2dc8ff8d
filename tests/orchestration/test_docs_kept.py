"""The docs stage generates the site only when what it shows changed: a second run of the
same models publishes the site the first one generated, and a changed input generates anew."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orchestration import stages
from orchestration.settings import load_settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("SHOPLOGS_WEB_FORMAT", raising=False)
    return replace(load_settings("local"), work_dir=tmp_path / "work")


def generations(settings: Any, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Stands in for ``dbt docs generate``: writes the site's files, counts the calls."""
    calls: list[list[str]] = []

    def docs_generate(current: Any, args: list[str], *_: Any, **__: Any) -> None:
        calls.append(args)
        current.dbt_target_dir.mkdir(parents=True, exist_ok=True)
        for name in stages.SITE_FILES:
            (current.dbt_target_dir / name).write_text(f"{name} #{len(calls)}")

    monkeypatch.setattr(stages, "run_dbt", docs_generate)
    return calls


def test_a_second_run_of_the_same_models_publishes_the_site_already_generated(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = generations(settings, monkeypatch)
    first = stages.generate_docs(settings)
    second = stages.generate_docs(settings)
    assert calls == [["docs", "generate"]]
    assert second == first
    assert (second.parent / "catalog.json").read_text() == "catalog.json #1"


def test_a_new_web_log_format_generates_the_site_anew(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = generations(settings, monkeypatch)
    stages.generate_docs(settings)
    monkeypatch.setenv("SHOPLOGS_WEB_FORMAT", "combined+")  # the raw layer gains columns
    again = stages.generate_docs(replace(load_settings("local"), work_dir=settings.work_dir))
    assert len(calls) == 2
    assert (again.parent / "catalog.json").read_text() == "catalog.json #2"
    assert len(list((settings.work_dir / "docs-site").iterdir())) == 1  # the newest only


def test_make_docs_rebuild_generates_the_site_again(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = generations(settings, monkeypatch)
    stages.generate_docs(settings)
    again = stages.generate_docs(settings, again=True)
    assert len(calls) == 2
    assert (again.parent / "catalog.json").read_text() == "catalog.json #2"
