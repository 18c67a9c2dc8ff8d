"""`make airflow`'s stack shows the docs site: Cosmos's Airflow 3 plugin lists a dbt docs
view in the UI's Browse menu, and its link answers with the site the runs publish to
``Settings.site_dir / "docs"``."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from local.airflow_runner import running_airflow
from orchestration.runners.dbt import DOCS_VIEW_NAME
from orchestration.settings import load_settings

pytestmark = pytest.mark.integration

PAGE = "<html><head><title>dbt Docs</title></head><body>shop analytics, published</body></html>"


def fetch(url: str, token: str | None = None, body: dict | None = None) -> bytes:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as reply:
        return bytes(reply.read())


def external_views(url: str, token: str) -> list[dict[str, Any]]:
    plugins = json.loads(fetch(f"{url}/api/v2/plugins?limit=100", token))["plugins"]
    return [view for plugin in plugins for view in plugin.get("external_views", [])]


def test_the_ui_links_to_the_published_docs_site(tmp_path: Path) -> None:
    settings = replace(load_settings("local"), work_dir=tmp_path)
    site = settings.site_dir / "docs"
    site.mkdir(parents=True)
    (site / "index.html").write_text(PAGE)
    (site / "manifest.json").write_text(json.dumps({"nodes": {"model.shoplogs.fct_orders": {}}}))
    (site / "catalog.json").write_text(json.dumps({"nodes": {}}))
    with running_airflow(settings) as (url, user, password):
        token = json.loads(
            fetch(f"{url}/auth/token", body={"username": user, "password": password})
        )["access_token"]
        views = [view for view in external_views(url, token) if view["name"] == DOCS_VIEW_NAME]
        assert [view["category"] for view in views] == ["Browse"]
        page = fetch(url + views[0]["href"]).decode()
        assert "shop analytics, published" in page  # the site the runs publish, served
        manifest = json.loads(fetch(url + views[0]["href"].replace("dbt_docs_index.html",
                                                                   "manifest.json")))  # fmt: skip
        assert list(manifest["nodes"]) == ["model.shoplogs.fct_orders"]
