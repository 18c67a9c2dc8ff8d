"""``make run`` skips ``dbt parse`` when the manifest is current: the digest of what dbt
parses changes with every input that changes the manifest, and with nothing dbt writes."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from orchestration.runners.dbt import parse_inputs
from orchestration.settings import DBT_PROJECT_DIR, load_settings


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs"))
    return copy


def test_an_edited_model_or_a_new_file_makes_the_manifest_stale(project: Path) -> None:
    settings = load_settings("local")
    before = parse_inputs(settings, project)
    model = next((project / "models").rglob("*.sql"))
    model.write_text(model.read_text() + "\n-- edited\n")
    edited = parse_inputs(settings, project)
    (project / "models" / "new_model.sql").write_text("select 1 as id\n")
    assert len({before, edited, parse_inputs(settings, project)}) == 3


def test_what_dbt_writes_leaves_the_manifest_current(project: Path) -> None:
    settings = load_settings("local")
    before = parse_inputs(settings, project)
    for folder in ("target", "logs"):
        (project / folder).mkdir(exist_ok=True)
        (project / folder / "written.json").write_text("{}")
    assert parse_inputs(settings, project) == before


def test_a_value_the_project_reads_from_the_environment_makes_it_stale(
    project: Path, tmp_path: Path
) -> None:
    settings = load_settings("local")
    moved = replace(settings, work_dir=tmp_path / "elsewhere")  # DUCKDB_PATH follows it
    assert parse_inputs(moved, project) != parse_inputs(settings, project)
