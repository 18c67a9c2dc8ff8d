"""``make metrics``: answer the semantic layer's saved queries (dbt's MetricFlow) on the
current warehouse and print each answer as a table.

    python -m local.metrics             # the local DuckDB that `make run` built
    python -m local.metrics bot_share_of_traffic

The saved queries (``dbt_project/models/marts/*/_*__metrics.yml``) ask what the analyses
in ``dbt_project/analyses/`` ask, from the same measures; MetricFlow writes the SQL for the
configured dbt target and runs it through dbt's own adapter (DuckDB, PostgreSQL,
Snowflake, Redshift). ``mf query --saved-query <name>`` in ``dbt_project/`` does the same
for one query, from the project's own ``target/``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from local.analyses import ANALYSES, Answer, dbt_environment, format_answer, missing_warehouse
from orchestration.settings import DBT_PROJECT_DIR, Settings, settings_for_command

# One saved query per analysis, of the same name and question.
SAVED_QUERIES = ANALYSES
SEMANTIC_MANIFEST = "semantic_manifest.json"


class MetricsFailed(RuntimeError):
    pass


def semantic_manifest_path(settings: Settings) -> Path:
    """What the run's dbt wrote beside its manifest: the semantic models and metrics the
    warehouse was built with."""
    return settings.dbt_target_dir / SEMANTIC_MANIFEST


def load_semantic_manifest(path: Path) -> Any:
    from metricflow_semantics.model.dbt_manifest_parser import (
        parse_manifest_from_dbt_generated_manifest,
    )

    if not path.exists():
        raise MetricsFailed(f"no semantic manifest at {path}: run `make run` (or `dbt parse`) "
                            "first")  # fmt: skip
    return parse_manifest_from_dbt_generated_manifest(path.read_text())


def validation_issues(path: Path) -> list[str]:
    """MetricFlow's semantic validations of a semantic manifest (``mf validate-configs``
    without the warehouse step): the blocking issues, readable; empty when it is sound."""
    from metricflow_semantic_interfaces.validations.semantic_manifest_validator import (
        SemanticManifestValidator,
    )

    results = SemanticManifestValidator[Any]().validate_semantic_manifest(
        load_semantic_manifest(path)
    )
    blocking = [*results.errors, *results.future_errors]
    return [issue.as_readable_str() for issue in blocking]


def cell_value(value: Any) -> Any:
    """A day of ``metric_time`` as the date the analyses give (MetricFlow returns midnight)."""
    if isinstance(value, datetime) and value == datetime(value.year, value.month, value.day):
        return value.date()
    return value


def query_saved(
    settings: Settings, names: Sequence[str] = SAVED_QUERIES, manifest: Path | None = None
) -> list[Answer]:
    """Each saved query's answer on ``settings``' warehouse, through one dbt adapter."""
    # heavy: only when asked
    from dbt.adapters.factory import get_adapter_by_type
    from dbt_metricflow.cli.dbt_connectors.adapter_backed_client import AdapterBackedSqlClient
    from dbt_metricflow.cli.dbt_connectors.dbt_config_accessor import dbtProjectMetadata
    from metricflow.engine.metricflow_engine import MetricFlowEngine, MetricFlowQueryRequest
    from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup

    semantic_manifest = load_semantic_manifest(manifest or semantic_manifest_path(settings))
    # dbt's logs and target stay in the run's folders, never in the (read-only) project.
    paths = {"DBT_TARGET_PATH": str(settings.dbt_target_dir),
             "DBT_LOG_PATH": str(settings.dbt_log_dir)}  # fmt: skip
    with dbt_environment(settings, paths):
        try:
            # `dbt debug` on the profile: registers the target's adapter, as `mf` does.
            project = dbtProjectMetadata.load_from_paths(DBT_PROJECT_DIR, DBT_PROJECT_DIR)
        except RuntimeError as exc:
            raise MetricsFailed(f"dbt cannot reach the {settings.warehouse} warehouse: "
                                f"{exc.__cause__ or exc}") from exc  # fmt: skip
        adapter = get_adapter_by_type(project.profile.credentials.type)
        engine = MetricFlowEngine(
            semantic_manifest_lookup=SemanticManifestLookup(semantic_manifest),
            sql_client=AdapterBackedSqlClient(adapter),
        )
        answers = []
        try:
            for name in names:
                result = engine.query(MetricFlowQueryRequest.create(saved_query_name=name))
                table = result.result_df
                if table is None:  # a query (not an explain) always brings a table
                    raise MetricsFailed(f"the saved query {name} returned no table")
                rows = tuple(tuple(cell_value(v) for v in row) for row in table.rows)
                answers.append(Answer(name, tuple(table.column_names), rows))
        finally:
            adapter.cleanup_connections()
    return answers


def main(argv: list[str] | None = None) -> int:
    names = list(argv if argv is not None else sys.argv[1:]) or list(SAVED_QUERIES)
    unknown = sorted(set(names) - set(SAVED_QUERIES))
    if unknown:
        print(f"make metrics FAILED: no saved query {', '.join(unknown)}; the saved queries "
              f"are {', '.join(SAVED_QUERIES)}", file=sys.stderr)  # fmt: skip
        return 2
    settings = settings_for_command("make metrics")
    if missing := missing_warehouse(settings):
        print(f"make metrics FAILED: {missing}", file=sys.stderr)
        return 1
    try:
        answers = query_saved(settings, names)
    except MetricsFailed as exc:
        print(f"make metrics FAILED: {exc}", file=sys.stderr)
        return 1
    print("\n\n".join(format_answer(answer) for answer in answers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
