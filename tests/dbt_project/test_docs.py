"""The docs site, as parsed: every node and column described for an analyst and every
personal column classified, the star schema diagram current, the marts owned, the analyses
exposed."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local.metrics import SAVED_QUERIES, validation_issues
from orchestration import classification, erd, stages
from orchestration.settings import DBT_PROJECT_DIR

DESCRIBED = ("model", "seed", "snapshot", "analysis", "test", "unit_test", "source", "exposure")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``dbt parse`` into a folder of the test's own (no warehouse needed)."""
    target = tmp_path_factory.mktemp("parsed")
    dbt = Path(sys.executable).with_name("dbt")
    subprocess.run(
        [str(dbt), "parse", "--quiet", "--target-path", str(target)],
        cwd=DBT_PROJECT_DIR, env={"DBT_PROFILES_DIR": str(DBT_PROJECT_DIR), "PATH": ""},
        check=True, timeout=300,
    )  # fmt: skip
    return {"path": target / "manifest.json", **json.loads((target / "manifest.json").read_text())}


def definition_described(manifest: dict[str, Any], node: dict[str, Any]) -> bool:
    """A generic test's instances share its definition's description: the project's own
    test macros document themselves, dbt's built-in ones have a ``test_<name>`` docs block."""
    name = node["test_metadata"]["name"]
    macro = manifest["macros"].get(f"macro.shoplogs.test_{name}")
    return bool(macro and macro["description"].strip()) or (
        f"doc.shoplogs.test_{name}" in manifest["docs"]
    )


def undocumented(manifest: dict[str, Any]) -> list[str]:
    """Every project node or column without a description."""
    missing = []
    nodes = {**manifest["nodes"], **manifest["sources"], **manifest["exposures"],
             **manifest.get("unit_tests", {})}  # fmt: skip
    for unique_id, node in nodes.items():
        if node["package_name"] != "shoplogs" or node["resource_type"] not in DESCRIBED:
            continue
        described = bool(node.get("description", "").strip())
        if not described and node.get("test_metadata"):
            described = definition_described(manifest, node)
        if not described:
            missing.append(unique_id)
        for column, spec in node.get("columns", {}).items():
            if not spec.get("description", "").strip():
                missing.append(f"{unique_id}.{column}")
    return sorted(missing)


def test_every_node_and_column_has_a_description(manifest: dict[str, Any]) -> None:
    assert undocumented(manifest) == []


def test_the_check_finds_what_lacks_a_description(manifest: dict[str, Any]) -> None:
    broken = copy.deepcopy(manifest)
    broken["nodes"]["model.shoplogs.fct_orders"]["columns"]["order_id"]["description"] = ""
    broken["sources"]["source.shoplogs.shop.orders"]["description"] = " "
    assert undocumented(broken) == [
        "model.shoplogs.fct_orders.order_id",
        "source.shoplogs.shop.orders",
    ]


def untag(column: dict[str, Any]) -> None:
    """Drop a column's pii tag from both places the manifest keeps meta."""
    column["meta"] = {}
    column["config"]["meta"] = {}


def test_every_personal_column_is_classified(manifest: dict[str, Any]) -> None:
    assert [str(f) for f in classification.unclassified(manifest)] == []
    direct = {
        node.split(".")[-1]: sorted(c for c, level in columns.items() if level == "direct")
        for node, columns in classification.tagged_columns(manifest).items()
        if node.startswith("model.") and "direct" in columns.values()
    }
    assert direct["dim_customers"] == direct["dim_customers_current"] == [
        "email", "first_name", "last_name"
    ]  # fmt: skip
    # ... and every mart masks them for analysts (macros/privacy/), from those tags.
    marts = [manifest["nodes"][f"model.shoplogs.{mart}"] for mart in stages.MARTS]
    unmasked = [m["name"] for m in marts
                if "mask_personal_data" not in str(m["config"]["post-hook"])]  # fmt: skip
    assert unmasked == []


def test_the_classification_check_finds_an_untagged_personal_column(
    manifest: dict[str, Any],
) -> None:
    """By name (an email), by lineage (a hash passed on under its name, a key declared to
    spell out the customer id), by what the warehouse holds (the catalog), and a bad level."""
    broken = copy.deepcopy(manifest)
    nodes = broken["nodes"]
    untag(nodes["model.shoplogs.dim_customers"]["columns"]["email"])
    untag(nodes["model.shoplogs.fct_web_sessions"]["columns"]["visitor_id"])
    nodes["model.shoplogs.fct_orders"]["columns"]["buyer_ref"] = {
        "name": "buyer_ref", "config": {"meta": {"derived_from": ["customer_id"]}},
    }  # fmt: skip
    nodes["model.shoplogs.dim_date"]["columns"]["date_day"]["config"]["meta"]["pii"] = "secret"
    catalog = {"nodes": {"model.shoplogs.fct_orders": {"columns": {"SHOPPER_EMAIL": {}}}}}
    found = {f"{f.node}.{f.column}": f.reason for f in classification.unclassified(broken, catalog)}
    assert found == {
        "model.shoplogs.dim_customers.email": "comes from personal column "
        "model.shoplogs.int_customer_profiles_versioned.email; tag it pii",
        "model.shoplogs.dim_date.date_day": "pii: secret is not one of direct, indirect, none",
        "model.shoplogs.fct_orders.buyer_ref": found["model.shoplogs.fct_orders.buyer_ref"],
        "model.shoplogs.fct_orders.shopper_email": "its name says an email address; tag it pii: "
        "direct | indirect (or none)",
        "model.shoplogs.fct_web_sessions.visitor_id": found[
            "model.shoplogs.fct_web_sessions.visitor_id"
        ],
    }
    lineage = {
        "model.shoplogs.fct_orders.buyer_ref": "int_orders_customer_versions_joined.customer_id",
        "model.shoplogs.fct_web_sessions.visitor_id": "int_web_sessions_aggregated.visitor_id",
    }
    for column, parent in lineage.items():
        assert found[column].startswith("comes from personal column "), column
        assert f"model.shoplogs.{parent}" in found[column], column
    # A name alone is enough where no upstream says so: a source's column.
    untag(broken["sources"]["source.shoplogs.shop.customers"]["columns"]["email"])
    assert "source.shoplogs.shop.customers.email: its name says an email address" in "\n".join(
        str(f) for f in classification.unclassified(broken)
    )


def test_the_committed_star_schema_diagram_is_current(manifest: dict[str, Any]) -> None:
    dot = erd.star_schema_dot(manifest["path"])
    overview = erd.OVERVIEW.read_text()
    assert erd.recorded_sha(overview) == erd.sha256(dot), (
        "the overview's star schema diagram is stale: run `make docs` and commit "
        "dbt_project/docs/overview.md and dbt_project/docs/star_schema.svg"
    )
    for mart in ("fct_orders", "fct_order_lines", "fct_web_sessions", "dim_customers",
                 "dim_products", "dim_date"):  # fmt: skip
        assert f'"{mart}" [' in dot
    assert '"fct_orders" -> "dim_customers"' in dot
    assert '"fct_order_lines" -> "dim_products"' in dot


def test_a_changed_mart_makes_the_diagram_stale(manifest: dict[str, Any], tmp_path: Path) -> None:
    changed = json.loads(manifest["path"].read_text())
    columns = changed["nodes"]["model.shoplogs.dim_products"]["columns"]
    columns["launched_on"] = {**columns["product_id"], "name": "launched_on", "data_type": "date"}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(changed))
    overview, svg = tmp_path / "overview.md", tmp_path / "star_schema.svg"
    overview.write_text(erd.OVERVIEW.read_text())
    assert erd.refresh(path, overview, svg) is True
    assert "launched_on" in svg.read_text()
    assert erd.recorded_sha(overview.read_text()) == erd.sha256(erd.star_schema_dot(path))
    assert erd.refresh(path, overview, svg) is False  # drawn once, then current


def test_node_order_never_changes_the_diagram() -> None:
    one = '  "a" [\n  ];\n  "b" [\n  ];\n  "b" -> "a" [\n  ];\n}'
    other = '  "b" [\n  ];\n  "b" -> "a" [\n  ];\n  "a" [\n  ];\n}'
    assert erd.canonical(one) == erd.canonical(other)


def test_marts_are_owned_and_read_by_the_exposures(manifest: dict[str, Any]) -> None:
    """Every mart is in the analytics group; the ones holding direct identifiers are
    `protected`: another project's ref would copy the clear values out of reach of this
    project's masking and erasure. The rest are `public`."""
    marts = [manifest["nodes"][f"model.shoplogs.{mart}"] for mart in stages.MARTS]
    direct = {
        node.split(".")[-1]
        for node, columns in classification.tagged_columns(manifest).items()
        if "direct" in columns.values()
    }
    assert {(m["name"], m["access"], m["group"]) for m in marts} == {
        (m["name"], "protected" if m["name"] in direct else "public", "analytics") for m in marts
    }
    assert {m["name"] for m in marts if m["access"] == "protected"} == {
        "dim_customers", "dim_customers_current"
    }  # fmt: skip
    assert manifest["groups"]["group.shoplogs.analytics"]["owner"]["email"]
    exposures = manifest["exposures"]
    report = exposures["exposure.shoplogs.run_report"]
    assert report["type"] == "dashboard"
    assert sorted(report["depends_on"]["nodes"]) == sorted(
        f"model.shoplogs.{mart}" for mart in stages.MARTS
    )
    analyses = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "analysis"}
    assert analyses == {"revenue_by_day_and_country", "web_session_conversion", "top_products",
                        "repeat_customer_share", "bot_share_of_traffic"}  # fmt: skip
    assert analyses <= {e["name"] for e in exposures.values() if e["type"] == "analysis"}


def test_the_remembered_drawing_never_hides_a_changed_mart(
    manifest: dict[str, Any], tmp_path: Path
) -> None:
    """refresh remembers the DOT of the marts it last saw; a changed mart, or an overview
    drawn from other marts, is still redrawn."""
    path = tmp_path / "manifest.json"
    path.write_text(manifest["path"].read_text())
    overview, svg = tmp_path / "overview.md", tmp_path / "star_schema.svg"
    overview.write_text(erd.OVERVIEW.read_text())
    assert erd.refresh(path, overview, svg) is False  # the committed diagram is current
    assert erd.refresh(path, overview, svg) is False  # and remembered as such
    changed = json.loads(path.read_text())
    columns = changed["nodes"]["model.shoplogs.fct_orders"]["columns"]
    columns["gift_wrapped"] = {**columns["order_id"], "name": "gift_wrapped", "data_type": "bool"}
    path.write_text(json.dumps(changed))
    assert erd.refresh(path, overview, svg) is True
    assert "gift_wrapped" in svg.read_text()
    overview.write_text(erd.OVERVIEW.read_text())  # the old drawing back, marts unchanged
    assert erd.refresh(path, overview, svg) is True
    assert erd.recorded_sha(overview.read_text()) == erd.sha256(erd.star_schema_dot(path))


# The layers' name prefixes (STYLE.md, dbt-project-evaluator's naming rule); `agg_` marks a
# mart of ready measures over a fact (agg_web_traffic_daily).
LAYER_PREFIXES = {
    "staging": ("stg_",),
    "intermediate": ("int_",),
    "marts": ("fct_", "dim_", "agg_"),
}


def test_models_carry_their_layers_prefix_and_yaml_beside_them(manifest: dict[str, Any]) -> None:
    """Every model's name starts with a prefix its layer declares, and its properties live in
    the one YAML of its own folder (dbt-project-evaluator's structure rules)."""
    models = [n for n in manifest["nodes"].values()
              if n["resource_type"] == "model" and n["package_name"] == "shoplogs"]  # fmt: skip
    misnamed, misplaced = [], []
    for model in models:
        path = Path(model["original_file_path"])
        layer = path.parts[1]
        if not model["name"].startswith(LAYER_PREFIXES[layer]):
            misnamed.append(model["name"])
        own_yaml = path.parent / f"_{path.parent.name}__models.yml"
        if model["patch_path"] != f"shoplogs://{own_yaml}":
            misplaced.append(f"{model['name']}: {model['patch_path']}")
    assert models and misnamed == [] and misplaced == []


def test_the_privacy_section_states_the_lakes_lifecycle_rules() -> None:
    """The overview's retention table says what infra/environments.py configures."""
    from infra.environments import ENVIRONMENTS

    prod, dev = ENVIRONMENTS["prod"], ENVIRONMENTS["dev"]
    rows = {line.split("|")[1].strip(): line for line in erd.OVERVIEW.read_text().splitlines()
            if line.startswith("| `")}  # fmt: skip
    for zone, days in (("`landing/`", "landing_expire_days"),
                       ("`quarantine/`", "quarantine_expire_days"),
                       ("`processing/`", "processing_expire_days")):  # fmt: skip
        assert f"{getattr(prod, days)} days (prod; dev {getattr(dev, days)})" in rows[zone], zone
    versions = f"{prod.noncurrent_version_expire_days} days (prod; dev "
    assert versions in rows["`processed/` and the warehouse"]


def test_the_semantic_layer_passes_metricflows_validations(
    manifest: dict[str, Any], tmp_path: Path
) -> None:
    """``mf validate-configs``' semantic checks on what dbt parsed: every metric, measure,
    entity and saved query sound; and the check finds a metric reading no measure."""
    semantic = manifest["path"].with_name("semantic_manifest.json")
    assert validation_issues(semantic) == []
    parsed = json.loads(semantic.read_text())
    assert sorted(q["name"] for q in parsed["saved_queries"]) == sorted(SAVED_QUERIES)
    assert {"net_revenue", "gross_bookings", "orders", "average_order_value",
            "repeat_customer_share", "sessions", "conversion_rate", "bounce_rate",
            "bot_share"} <= {m["name"] for m in parsed["metrics"]}  # fmt: skip
    ratios = {m["name"] for m in parsed["metrics"] if m["type"] == "ratio"}
    assert {"average_order_value", "repeat_customer_share", "conversion_rate",
            "bounce_rate", "bot_share"} <= ratios  # fmt: skip
    metric = next(m for m in parsed["metrics"] if m["name"] == "sessions")
    metric["type_params"]["measure"]["name"] = "visits"
    broken = tmp_path / "semantic_manifest.json"
    broken.write_text(json.dumps(parsed))
    assert any("visits" in issue for issue in validation_issues(broken))


def test_metrics_and_semantic_models_are_described(manifest: dict[str, Any]) -> None:
    nodes = {**manifest["metrics"], **manifest["semantic_models"], **manifest["saved_queries"]}
    assert len(nodes) > 30
    assert [name for name, node in nodes.items() if not node["description"].strip()] == []
