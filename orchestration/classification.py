"""Which columns of the dbt project hold personal data, read from the manifest's tags.

Every column that holds personal data carries ``config: {meta: {pii: direct | indirect}}``
in its YAML: *direct* identifies a person on its own (email, name, a raw IP address) and is
masked for analysts in the warehouse (``macros/privacy/``); *indirect* identifies a person
only with other data (a customer id, a visitor hash, a user agent, a city). ``pii: none``
records that a column whose name looks personal was reviewed and is not (a product's name).

``unclassified`` is the check: a column must be tagged when its name says personal data
(``NAME_PATTERNS``) or its lineage does, i.e. an upstream node (a ``ref`` or ``source`` of
its model) has a tagged column of the same name, or of a name the column declares it comes
from (``meta: {derived_from: [...]}``): dbt has no column lineage of its own. The check
reads the manifest ``dbt parse`` writes, and optionally a catalog (``dbt docs generate``),
whose columns are what the warehouse really holds: a column passed through by ``select *``
but missing from the YAML is caught there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

LEVELS = ("direct", "indirect")
REVIEWED = "none"
# Column names that say personal data, matched on the lower-case name.
NAME_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern))
    for label, pattern in (
        ("an email address", r"e_?mail"),
        ("a person's name", r"(^|_)(first_|last_|full_|given_|family_|sur|user_?)?name(_|$)"),
        ("an IP address", r"(^|_)ip(_|$)|ip_?addr|forwarded_for"),
        ("an address", r"address|(^|_)(street|postcode|postal_code|zip|city)(_|$)"),
        ("a phone number", r"phone|mobile|(^|_)fax(_|$)"),
        ("a user agent", r"user_?agent"),
        ("a login", r"remote_user|(^|_)(login|username)(_|$)"),
        ("a birth date", r"birth|(^|_)dob(_|$)"),
    )
)
CHECKED = ("model", "seed", "snapshot", "source")


@dataclass(frozen=True)
class Finding:
    """A column that holds personal data by its name or lineage and carries no tag."""

    node: str
    column: str
    reason: str

    def __str__(self) -> str:
        return f"{self.node}.{self.column}: {self.reason}"


def column_meta(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A column's meta, in dbt 1.10+'s ``config`` form or the older top-level one."""
    return {**(spec.get("meta") or {}), **((spec.get("config") or {}).get("meta") or {})}


def pii_level(spec: Mapping[str, Any]) -> str | None:
    """``direct``, ``indirect``, ``none`` (reviewed, not personal) or None (untagged)."""
    level = column_meta(spec).get("pii")
    return None if level is None else str(level).lower()


def name_says_personal(column: str) -> str | None:
    """What the column's name suggests it holds, or None."""
    for label, pattern in NAME_PATTERNS:
        if pattern.search(column.lower()):
            return label
    return None


def _nodes(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    project = manifest.get("metadata", {}).get("project_name")
    nodes = {**manifest.get("nodes", {}), **manifest.get("sources", {})}
    return {
        unique_id: node
        for unique_id, node in nodes.items()
        if node.get("resource_type") in CHECKED
        and (project is None or node.get("package_name") == project)
    }


def _catalog_columns(catalog: Mapping[str, Any] | None, unique_id: str) -> Iterable[str]:
    if not catalog:
        return ()
    entry = catalog.get("nodes", {}).get(unique_id) or catalog.get("sources", {}).get(unique_id)
    return (name.lower() for name in (entry or {}).get("columns", {}))


def columns_of(node: Mapping[str, Any], catalog: Mapping[str, Any] | None) -> dict[str, Any]:
    """The node's columns by lower-case name: the YAML's, plus any the catalog has."""
    columns = {name.lower(): spec for name, spec in node.get("columns", {}).items()}
    for name in _catalog_columns(catalog, node["unique_id"]):
        columns.setdefault(name, {})
    return columns


def tagged_columns(
    manifest: Mapping[str, Any], catalog: Mapping[str, Any] | None = None
) -> dict[str, dict[str, str]]:
    """Per node, its personal columns and their level (``direct`` / ``indirect``)."""
    result: dict[str, dict[str, str]] = {}
    for unique_id, node in _nodes(manifest).items():
        levels = {
            name: level
            for name, spec in columns_of(node, catalog).items()
            if (level := pii_level(spec)) in LEVELS
        }
        if levels:
            result[unique_id] = levels
    return result


def unclassified(
    manifest: Mapping[str, Any], catalog: Mapping[str, Any] | None = None
) -> list[Finding]:
    """Every column whose name or lineage says personal data without a pii tag, and every
    tag that is not one of the levels."""
    nodes = _nodes(manifest)
    tagged = tagged_columns(manifest, catalog)
    findings = []
    for unique_id, node in sorted(nodes.items()):
        parents = [p for p in node.get("depends_on", {}).get("nodes", []) if p in nodes]
        for name, spec in sorted(columns_of(node, catalog).items()):
            level = pii_level(spec)
            if level is not None and level not in (*LEVELS, REVIEWED):
                findings.append(Finding(unique_id, name, f"pii: {level} is not one of "
                                        f"{', '.join((*LEVELS, REVIEWED))}"))  # fmt: skip
                continue
            upstream = [name, *(c.lower() for c in column_meta(spec).get("derived_from", []))]
            inherited = [
                f"{parent}.{column}"
                for parent in parents
                for column in upstream
                if column in tagged.get(parent, {})
            ]
            if inherited and level not in LEVELS:
                reason = f"comes from personal column {', '.join(inherited)}; tag it pii"
                findings.append(Finding(unique_id, name, reason))
            elif level is None and (label := name_says_personal(name)):
                reason = f"its name says {label}; tag it pii: direct | indirect (or none)"
                findings.append(Finding(unique_id, name, reason))
    return findings
