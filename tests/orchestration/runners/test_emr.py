"""Transient EMR: definitions, and the rules for reusing and terminating clusters, against a
moto server (in this process, so tests can move steps along as EMR would)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from lake import layout
from local.servers import free_port
from orchestration.runners import emr
from orchestration.settings import Settings, load_settings

RUN = date(2026, 11, 3)
KEY = emr.run_key("shoplogs_pipeline", RUN)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def settings(endpoint: str) -> Settings:
    return replace(load_settings("dev"), lake_bucket="emr-tests").with_endpoint(endpoint)


@pytest.fixture
def aws(endpoint: str) -> dict[str, Any]:
    kwargs = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    s3 = boto3.client("s3", **kwargs)
    s3.create_bucket(Bucket="emr-tests")
    return {"s3": s3, "emr": boto3.client("emr", **kwargs)}


def artifact() -> emr.Artifact:
    return emr.Artifact("v1", "s3://b/job.py", "s3://b/preprocess.zip", "s3://b/bootstrap.sh")


def test_cluster_definition_has_the_safeguards(settings: Settings) -> None:
    config = emr.job_flow_config(settings, KEY, artifact())
    assert config["StepConcurrencyLevel"] == 3
    assert config["AutoTerminationPolicy"]["IdleTimeout"] == 1800
    assert config["BootstrapActions"][0]["ScriptBootstrapAction"]["Path"] == "s3://b/bootstrap.sh"
    assert config["LogUri"] == "s3://emr-tests/emr-logs/"
    assert config["SecurityConfiguration"] == "shoplogs-dev-emr"  # encryption at rest
    fleets = {f["InstanceFleetType"]: f for f in config["Instances"]["InstanceFleets"]}
    task = fleets["TASK"]
    assert task["TargetSpotCapacity"] > 0 and "TargetOnDemandCapacity" not in task
    spot = task["LaunchSpecifications"]["SpotSpecification"]
    assert spot["TimeoutAction"] == "SWITCH_TO_ON_DEMAND"
    assert fleets["MASTER"]["TargetOnDemandCapacity"] == 1  # the primary is never spot
    tags = {t["Key"]: t["Value"] for t in config["Tags"]}
    assert tags == {"shoplogs:project": "shoplogs", "shoplogs:env": "dev",
                    "shoplogs:run": KEY, "shoplogs:persistent": "false",
                    # what AmazonEMRServicePolicy_v2 requires (test_emr_managed_policy.py)
                    "for-use-with-amazon-emr-managed-policies": "true"}  # fmt: skip


def test_one_step_per_stream_runs_the_same_entrypoint_as_local(settings: Settings) -> None:
    steps = emr.spark_steps(settings, artifact(), RUN)
    assert [s["Name"] for s in steps] == [f"preprocess {s} 2026-11-03" for s in layout.STREAMS]
    args = steps[2]["HadoopJarStep"]["Args"]
    assert args[:5] == ["spark-submit", "--deploy-mode", "cluster", "--py-files",
                        "s3://b/preprocess.zip"]  # fmt: skip
    assert args[5:] == [
        "s3://b/job.py",
        "--input", "s3://emr-tests/processing/dt=2026-11-03/raw",
        "--output", "s3://emr-tests/processing/dt=2026-11-03/output",
        "--run-date", "2026-11-03",
        "--streams", "web",
        "--lake", "s3://emr-tests",
        # the web stream's pseudonymization key, which the job role may read (infra/)
        "--pseudonym-secret", "shoplogs/dev/spark/pseudonym-key",
    ]  # fmt: skip
    assert "--pseudonym-secret" not in steps[0]["HadoopJarStep"]["Args"]  # customers


def test_the_web_step_passes_the_configured_web_format(settings: Settings) -> None:
    nginx = '$remote_addr - - [$time_local] "$request" $status $body_bytes_sent $request_time'
    web = replace(settings.stream("web"), log_format=nginx)
    configured = replace(settings, streams=(*settings.streams[:2], web))
    steps = emr.spark_steps(configured, artifact(), RUN)
    assert steps[2]["HadoopJarStep"]["Args"][-2:] == ["--web-format", nginx]
    assert "--web-format" not in steps[0]["HadoopJarStep"]["Args"]  # customers
    driver = emr.serverless_job_driver(configured, artifact(), RUN)
    assert driver["sparkSubmit"]["entryPointArguments"][-2:] == ["--web-format", nginx]


def test_the_artifact_is_versioned_by_content(tmp_path: Path, aws: dict[str, Any]) -> None:
    version, files = emr.package_job()
    assert emr.package_job()[0] == version  # same code, same version
    copy = tmp_path / "spark"
    (copy / "preprocess").mkdir(parents=True)
    (copy / "emr").mkdir()
    for name, content in [("job.py", files["job.py"]), ("emr/bootstrap.sh", files["bootstrap.sh"])]:
        (copy / name).write_bytes(content)
    for path in (emr.SPARK_DIR / "preprocess").glob("*.py"):
        (copy / "preprocess" / path.name).write_bytes(path.read_bytes())
    assert emr.package_job(copy)[0] == version
    (copy / "preprocess" / "web.py").write_text("# changed\n")
    assert emr.package_job(copy)[0] != version
    uploaded = emr.upload_artifact(aws["s3"], "emr-tests")
    assert uploaded.job_uri == f"s3://emr-tests/artifacts/spark/{version}/job.py"
    keys = aws["s3"].list_objects_v2(Bucket="emr-tests", Prefix="artifacts/")["Contents"]
    assert {k["Key"].rsplit("/", 1)[-1] for k in keys} == set(files)


def start(emr_client: Any, settings: Settings, tags: list[dict[str, str]]) -> str:
    config = emr.job_flow_config(settings, KEY, artifact())
    return str(emr_client.run_job_flow(**{**config, "Tags": tags})["JobFlowId"])


def test_only_this_projects_cluster_for_this_run_is_reused(
    settings: Settings, aws: dict[str, Any]
) -> None:
    client = aws["emr"]
    ours = emr.cluster_tags(settings, KEY)
    other_run = emr.cluster_tags(settings, emr.run_key("shoplogs_pipeline", date(2026, 11, 2)))
    persistent = [*ours[:3], {"Key": "shoplogs:persistent", "Value": "true"}]
    foreign = [{"Key": "team", "Value": "analytics"}]
    for tags in (foreign, persistent, other_run):
        start(client, settings, tags)
    assert emr.find_reusable_cluster(client, settings, KEY) is None
    mine = start(client, settings, ours)
    assert emr.find_reusable_cluster(client, settings, KEY) == mine


class OwnClustersOnly:
    """The EMR client as the MWAA execution role sees it: DescribeCluster is allowed only on
    clusters tagged with this project and environment (orchestration.yaml, UseOwnClusters);
    moto's enforcement ignores such conditions, so this applies it."""

    def __init__(self, client: Any, settings: Settings) -> None:
        self.client, self.settings, self.described = client, settings, []

    def get_paginator(self, name: str) -> Any:
        return self.client.get_paginator(name)

    def describe_cluster(self, ClusterId: str) -> dict[str, Any]:
        self.described.append(ClusterId)
        cluster = self.client.describe_cluster(ClusterId=ClusterId)
        tags = {t["Key"]: t["Value"] for t in cluster["Cluster"].get("Tags", [])}
        if (tags.get(emr.TAG_PROJECT), tags.get(emr.TAG_ENV)) != ("shoplogs", self.settings.env):
            error = {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}
            raise ClientError(error, "DescribeCluster")  # type: ignore[arg-type]
        return dict(cluster)


def test_another_teams_running_cluster_does_not_fail_the_plan(
    settings: Settings, aws: dict[str, Any]
) -> None:
    client, key = aws["emr"], emr.run_key("shoplogs_pipeline", date(2026, 11, 4))
    config = emr.job_flow_config(settings, key, artifact())
    foreign = [{"Key": "team", "Value": "analytics"}]
    theirs = client.run_job_flow(**{**config, "Name": "analytics-adhoc", "Tags": foreign})
    same_name = client.run_job_flow(**{**config, "Tags": foreign})[
        "JobFlowId"
    ]  # named like ours, but not ours to describe
    bound = OwnClustersOnly(client, settings)
    assert emr.find_reusable_cluster(bound, settings, key) is None
    assert same_name in bound.described
    mine = client.run_job_flow(**{**config, "Tags": emr.cluster_tags(settings, key)})["JobFlowId"]
    assert emr.find_reusable_cluster(bound, settings, key) == mine
    assert theirs["JobFlowId"] not in bound.described


def test_clusters_not_ours_are_never_terminated(settings: Settings, aws: dict[str, Any]) -> None:
    client = aws["emr"]
    persistent = start(
        client,
        settings,
        [*emr.cluster_tags(settings, KEY)[:3], {"Key": "shoplogs:persistent", "Value": "true"}],
    )
    foreign = start(client, settings, [{"Key": "team", "Value": "analytics"}])
    mine = start(client, settings, emr.cluster_tags(settings, KEY))
    assert emr.terminate_if_ours(client, settings, persistent) is False
    assert emr.terminate_if_ours(client, settings, foreign) is False
    assert emr.terminate_if_ours(client, settings, mine) is True

    def state(cluster_id: str) -> str:
        return str(client.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"])

    assert state(mine) in {"TERMINATING", "TERMINATED"}
    assert state(persistent) == state(foreign) == "WAITING"


EMR_STAGE_DAG = """
from datetime import datetime, timezone
from airflow.sdk import DAG
from orchestration.tasks import pipeline

with DAG("{dag_id}", schedule=None, start_date=datetime(2026, 11, 1, tzinfo=timezone.utc)):
    pipeline.{group}("2026-11-03")
"""


def use_moto_from_airflow(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    connection = {"conn_type": "aws", "login": "testing", "password": "testing",
                  "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}  # fmt: skip
    for name, value in {
        "SHOPLOGS_ENV": "dev", "LAKE_BUCKET": "emr-tests", "AWS_ENDPOINT_URL": endpoint,
        "EMR_POKE_SECONDS": "1", "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection),
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        check=True, capture_output=True,
    )  # fmt: skip


def stage_dag(group: str, dag_id: str) -> Any:
    """dag.test() runs DAGs from the DAGs folder: put one Spark stage alone in a DAG there."""
    from airflow.dag_processing.dagbag import DagBag

    dag_file = Path(os.environ["AIRFLOW_HOME"]) / "dags" / f"{dag_id}.py"
    dag_file.parent.mkdir(exist_ok=True)
    dag_file.write_text(EMR_STAGE_DAG.format(dag_id=dag_id, group=group))
    return DagBag(dag_folder=str(dag_file)).get_dag(dag_id)


def advance_steps(outcome: str, stop: threading.Event) -> None:
    """Play EMR: every step that appears finishes with ``outcome``."""
    from moto.emr.models import emr_backends

    backend = emr_backends["123456789012"]["us-east-1"]
    while not stop.wait(0.2):
        for cluster in list(backend.clusters.values()):
            for step in cluster.steps:
                step.state = outcome


@pytest.mark.integration
@pytest.mark.parametrize("outcome", ["COMPLETED", "FAILED"])
def test_the_emr_stage_terminates_its_cluster_on_success_and_on_failure(
    endpoint: str, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, outcome: str
) -> None:
    use_moto_from_airflow(monkeypatch, endpoint)
    dag = stage_dag("emr_task_group", f"emr_stage_{outcome.lower()}")
    before = {c["Id"] for c in aws["emr"].list_clusters()["Clusters"]}
    stop = threading.Event()
    player = threading.Thread(target=advance_steps, args=(outcome, stop), daemon=True)
    player.start()
    try:
        run = dag.test(logical_date=datetime(2026, 11, 3, tzinfo=UTC))
    finally:
        stop.set()
    assert run.state == ("success" if outcome == "COMPLETED" else "failed")
    created = [c for c in aws["emr"].list_clusters()["Clusters"] if c["Id"] not in before]
    assert len(created) == 1
    assert created[0]["Status"]["State"] in {"TERMINATING", "TERMINATED"}
    steps = aws["emr"].list_steps(ClusterId=created[0]["Id"])["Steps"]
    assert sorted(s["Name"] for s in steps) == sorted(
        f"preprocess {s} 2026-11-03" for s in layout.STREAMS
    )


@pytest.mark.integration
def test_the_emr_serverless_stage_runs_the_job_on_the_application(
    endpoint: str, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    serverless = boto3.client("emr-serverless", endpoint_url=endpoint, region_name="us-east-1")
    app = serverless.create_application(name="shoplogs-dev", releaseLabel="emr-7.5.0",
                                        type="SPARK")["applicationId"]  # fmt: skip
    serverless.stop_application(applicationId=app)  # as auto-stop leaves it between runs
    use_moto_from_airflow(monkeypatch, endpoint)
    monkeypatch.setenv("EMR_SERVERLESS_APPLICATION_ID", app)
    dag = stage_dag("emr_serverless_task_group", "emr_serverless_stage")
    run = dag.test(logical_date=datetime(2026, 11, 3, tzinfo=UTC))
    assert run.state == "success"
    # The operator started it (the MWAA role may: tests/infra/test_iam_calls.py).
    assert serverless.get_application(applicationId=app)["application"]["state"] == "STARTED"
    [job] = serverless.list_job_runs(applicationId=app)["jobRuns"]
    detail = serverless.get_job_run(applicationId=app, jobRunId=job["id"])["jobRun"]
    submit = detail["jobDriver"]["sparkSubmit"]
    assert submit["entryPoint"].endswith("/job.py")
    arguments = submit["entryPointArguments"]
    options = dict(zip(arguments[::2], arguments[1::2], strict=True))
    assert arguments[:2] == ["--input", options["--input"]]
    assert options["--streams"] == "customers,orders,web"
    assert options["--lake"] == "s3://emr-tests"
    assert options["--pseudonym-secret"].endswith("/spark/pseudonym-key")
