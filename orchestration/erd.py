"""The star schema's entity-relationship diagram on the docs site's overview page.

dbterd reads the facts' and dimensions' columns (their contracts) and the joins between
them (the ``relationships`` tests) from dbt's manifest and writes Graphviz DOT; Graphviz
draws it as SVG. The SVG goes into the overview page as a ``data:`` image, because dbt's
docs site neither renders diagram code nor serves files beside its three: one
``index.html`` + ``manifest.json`` + ``catalog.json`` then shows it everywhere it is
published (the lake's ``docs/`` prefix, the Airflow UI's dbt docs view, a local folder).

The overview records the SHA-256 of the DOT it was drawn from. The diagram is stale exactly
when the marts' DOT hashes differently: the docs build redraws it then, and a test fails
while the committed one is stale. The DOT comes from the manifest alone (never the
warehouse's catalog), so every warehouse and machine agrees on it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from orchestration.settings import DBT_PROJECT_DIR

OVERVIEW = DBT_PROJECT_DIR / "docs" / "overview.md"
# The same drawing as a file, for the README and anyone browsing the repository.
SVG_FILE = DBT_PROJECT_DIR / "docs" / "star_schema.svg"
# The star schema: facts and dimensions. dim_customers_current is a view of dim_customers
# that no fact joins to.
SELECT = ["model.shoplogs.fct_", "model.shoplogs.dim_"]
EXCLUDE = ["exact:model.shoplogs.dim_customers_current"]
# Markdown link definitions render as nothing: the markers stay out of the page.
BEGIN = "[//]: # (erd sha256:"
END = "[//]: # (/erd)"
MARKED = re.compile(re.escape(BEGIN) + r"(?P<sha>[0-9a-f]*)\)\n.*?" + re.escape(END), re.S)
ALT = "The star schema: facts, dimensions and the keys that join them"


class ErdError(RuntimeError):
    """The diagram cannot be drawn or placed; the message names the fix."""


def empty_catalog(manifest: dict) -> dict:
    """A catalog with no tables: dbterd then takes columns and types from the contracts."""
    meta = manifest["metadata"]
    return {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/catalog/v1.json",
            "dbt_version": meta["dbt_version"],
            "generated_at": meta["generated_at"],
            "invocation_id": meta.get("invocation_id"),
            "env": {},
        },
        "nodes": {},
        "sources": {},
        "errors": None,
    }


def canonical(dot: str) -> str:
    """dbterd's DOT with its table and edge statements sorted: the manifest's node order,
    which may change between parses, never changes the hash."""
    lines = [line for line in dot.splitlines() if line.strip()]
    header, body, footer = [], [], []
    block: list[str] = []
    for line in lines:
        if line == "}":
            footer.append(line)
        elif block or line.startswith('  "'):
            block.append(line)
            if line.rstrip().endswith("];"):
                body.append("\n".join(block))
                block = []
        else:
            header.append(line)
    tables = sorted(b for b in body if "->" not in b.splitlines()[0])
    edges = sorted(b for b in body if "->" in b.splitlines()[0])
    return "\n".join([*header, *tables, *edges, *footer]) + "\n"


def star_schema_dot(manifest_path: Path) -> str:
    """Graphviz DOT of the facts, dimensions and their relationship tests (dbterd)."""
    from dbterd.api import DbtErd  # heavy import: only when a docs build asks

    manifest = json.loads(manifest_path.read_text())
    with tempfile.TemporaryDirectory(prefix="erd-") as folder:
        shutil.copy(manifest_path, Path(folder) / "manifest.json")
        (Path(folder) / "catalog.json").write_text(json.dumps(empty_catalog(manifest)))
        dot = DbtErd(
            target="graphviz", artifacts_dir=folder, select=SELECT, exclude=EXCLUDE,
            entity_name_format="table",
        ).get_erd()  # fmt: skip
    return canonical(dot)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def render_svg(dot: str) -> str:
    """Graphviz's ``dot`` draws the DOT as SVG."""
    binary = shutil.which("dot")
    if binary is None:
        raise ErdError(
            "the star schema diagram is out of date and Graphviz's `dot` is not installed to "
            "redraw it: run `make install` (it installs Debian's graphviz), then `make docs`, "
            "and commit dbt_project/docs/overview.md"
        )
    result = subprocess.run([binary, "-Tsvg"], input=dot, capture_output=True, text=True,
                            check=False, timeout=60)  # fmt: skip
    if result.returncode != 0:
        raise ErdError(f"Graphviz could not draw the star schema: {result.stderr.strip()}")
    return result.stdout


def recorded_sha(overview: str) -> str | None:
    """The DOT hash the overview's diagram was drawn from; None without a diagram."""
    match = MARKED.search(overview)
    return match["sha"] if match else None


def diagram_block(dot: str, svg: str) -> str:
    encoded = base64.b64encode(svg.encode()).decode()
    return f"{BEGIN}{sha256(dot)})\n![{ALT}](data:image/svg+xml;base64,{encoded})\n{END}"


def with_diagram(overview: str, dot: str, svg: str) -> str:
    """The overview with its diagram block replaced by one drawn from ``dot``."""
    if not MARKED.search(overview):
        raise ErdError(
            f"{OVERVIEW} has no diagram block: put the lines `{BEGIN})` and `{END}` where "
            "the star schema diagram belongs"
        )
    return MARKED.sub(lambda _: diagram_block(dot, svg), overview)


def marts_fingerprint(manifest: dict) -> str:
    """A hash of what the diagram is drawn from: every model and test that is, or depends
    on, a fact or a dimension, as the manifest has it (less ``created_at``, which each parse
    sets anew), and dbterd's version. Wider than what dbterd reads, so a change it would
    draw always changes the fingerprint."""
    from importlib.metadata import version

    def in_star(unique_id: str) -> bool:
        return unique_id.startswith(tuple(SELECT))

    nodes = {
        unique_id: {k: v for k, v in node.items() if k != "created_at"}
        for unique_id, node in manifest["nodes"].items()
        if in_star(unique_id) or any(map(in_star, node.get("depends_on", {}).get("nodes", [])))
    }
    return sha256(json.dumps([version("dbterd"), nodes], sort_keys=True, default=str))


def drawn_from(cache: Path, fingerprint: str) -> str | None:
    """The DOT hash dbterd last drew from marts with this fingerprint, if it is known."""
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        return None
    return known.get("dot_sha256") if known.get("fingerprint") == fingerprint else None


def refresh(manifest_path: Path, overview_path: Path = OVERVIEW, svg_path: Path = SVG_FILE) -> bool:
    """Redraw the diagram if the marts changed since it was drawn; True if it was.

    dbterd takes seconds to import, so what it drew is remembered beside the manifest
    (``erd.json``): while the marts' fingerprint stays the same, so does the DOT."""
    overview = overview_path.read_text()
    drawn = recorded_sha(overview)
    cache = manifest_path.with_name("erd.json")
    fingerprint = marts_fingerprint(json.loads(manifest_path.read_text()))
    if drawn is not None and drawn_from(cache, fingerprint) == drawn:
        return False
    dot = star_schema_dot(manifest_path)
    cache.write_text(json.dumps({"fingerprint": fingerprint, "dot_sha256": sha256(dot)}))
    if drawn == sha256(dot):
        return False
    svg = render_svg(dot)
    overview_path.write_text(with_diagram(overview, dot, svg))
    svg_path.write_text(svg)
    return True
