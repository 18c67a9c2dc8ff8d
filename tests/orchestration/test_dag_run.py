"""The pipeline DAG end to end under Airflow (`airflow dags test`), on the same small demo
as the direct end-to-end test, with the same expectations for the marts. The DAG runs from
an MWAA bundle's DAGs folder, read-only as MWAA's is: every write goes to the work dir."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import boto3
import pytest

from infra import mwaa_bundle
from lake import layout, zones
from local.airflow_runner import airflow_env
from local.demo import generate, log_files
from local.run import report_dir, run_pipeline_in_airflow
from orchestration.runners.dbt import build_manifest
from orchestration.settings import load_settings
from orchestration.summary import reconcile
from tests.expectations import SMALL_DEMO, assert_marts_hold_the_demo
from tests.read_only import read_only

pytestmark = pytest.mark.integration


def test_the_dag_builds_the_expected_marts_and_emits_their_assets(
    tmp_path: Path, own_aws_endpoint: str
) -> None:
    truth = generate(SMALL_DEMO, tmp_path / "logs")
    settings = replace(load_settings("local"), work_dir=tmp_path, lake_bucket="dag-e2e")
    settings = settings.with_endpoint(own_aws_endpoint)
    files = log_files(tmp_path / "logs")
    build_manifest(settings, tmp_path / "dbt.log")
    bundle = mwaa_bundle.build(tmp_path / "mwaa", env="prod", warehouse="snowflake")

    with read_only(bundle / "dags") as dags:
        report = run_pipeline_in_airflow(settings, files, bundle=dags)

    assert reconcile(report) == []
    for name, expected in truth.streams.items():
        assert report.streams[name].processed == expected.valid
        assert dict(report.streams[name].quarantined) == dict(expected.quarantined)
    assert_marts_hold_the_demo(settings.duckdb_path, truth)
    # The summary task published the run report to the lake, with the producer's test
    # results (kept by its Cosmos callback) and a sample per quarantine reason.
    s3 = boto3.client("s3", endpoint_url=own_aws_endpoint, region_name="us-east-1")
    run_date = date.fromisoformat(report.run_date)
    assert set(zones.list_keys(s3, "dag-e2e", layout.REPORTS)) >= {
        layout.REPORTS + name
        for name in (
            layout.REPORT_INDEX,
            layout.report_page(run_date),
            layout.report_data(run_date),
        )
    }
    assert len(report.tests) > 50 and {t.status for t in report.tests} == {"pass"}
    assert set(report.quarantine_samples["web"]) == set(truth.streams["web"].quarantined)
    assert "dag: dbt" in (report_dir(settings) / layout.REPORT_INDEX).read_text()
    listed = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "assets", "list", "-o", "json"],
        env=airflow_env(settings, bundle / "dags"), capture_output=True, text=True, check=True,
    )  # fmt: skip
    uris = {asset["uri"] for asset in json.loads(listed.stdout)}
    assert any(uri.endswith("/marts/fct_orders") for uri in uris), uris
