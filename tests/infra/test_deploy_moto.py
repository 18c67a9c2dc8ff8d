"""The deployer against the local AWS endpoint (moto server), for what moto's CloudFormation
models: the storage stack's buckets and queue, re-deploys, dry runs, the Spark artifact
upload, and destroy emptying a versioned bucket. (moto skips Firehose, Glue, secrets, MWAA
and Redshift resources, and computes no outputs for change-set stacks: those paths are in
test_deploy_stubbed.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from infra import deploy, environments
from orchestration.settings import load_settings

pytestmark = pytest.mark.integration

DEV = environments.get("dev")


@pytest.fixture
def clients(aws_endpoint: str) -> deploy.Clients:
    region = "us-east-1"
    return deploy.Clients(
        cfn=boto3.client("cloudformation", endpoint_url=aws_endpoint, region_name=region),
        s3=boto3.client("s3", endpoint_url=aws_endpoint, region_name=region),
        sts=boto3.client("sts", endpoint_url=aws_endpoint, region_name=region),
    )


def run(clients: deploy.Clients, said: list[str], dry_run: bool = False) -> dict[str, str]:
    options = deploy.Options(dry_run=dry_run, say=said.append, sleep=lambda _: None)
    return deploy.deploy(DEV, clients, options, stacks=("storage",), artifacts={}, host_env={})


def tags(s3: Any, bucket: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}


def test_deploy_redeploy_upload_and_destroy_on_the_local_endpoint(
    clients: deploy.Clients, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LAKE_BUCKET", raising=False)
    settings = load_settings("dev")
    said: list[str] = []

    run(clients, said, dry_run=True)
    assert said[0].startswith("shoplogs-dev-storage: would change")
    assert "Add     LakeBucket [AWS::S3::Bucket]" in said[0]
    assert deploy.describe_stack(clients.cfn, "shoplogs-dev-storage") is None  # nothing made

    run(clients, said)
    buckets = {b["Name"] for b in clients.s3.list_buckets()["Buckets"]}
    assert settings.lake_bucket in buckets
    assert tags(clients.s3, settings.lake_bucket)["shoplogs:env"] == "dev"
    sqs = boto3.client("sqs", endpoint_url=aws_endpoint, region_name="us-east-1")
    assert sqs.get_queue_url(QueueName=settings.landing_queue_name)["QueueUrl"]

    said.clear()
    run(clients, said)
    assert said == ["shoplogs-dev-storage: no changes"]

    artifact = deploy.ArtifactContext(
        DEV, clients.s3, {"LakeBucketName": settings.lake_bucket},
        deploy.Options(say=said.append, dist=tmp_path),
    )  # fmt: skip
    assert deploy.upload_spark_job(artifact)["SparkArtifactVersion"]
    deploy.upload_shipper_wheel(artifact)
    listed = clients.s3.list_objects_v2(Bucket=settings.lake_bucket, Prefix="artifacts/agent/")
    shipped = sorted(o["Key"].removeprefix("artifacts/agent/") for o in listed["Contents"])
    # What the hosts' install document (ingestion.yaml) fetches: one wheel and the unit.
    unit, wheel = shipped
    assert unit == "shoplogs-shipper.service"
    assert wheel.startswith("shoplogs_agent-") and wheel.endswith("-py3-none-any.whl")
    clients.s3.put_object(Bucket=settings.lake_bucket, Key="landing/web/x.gz", Body=b"1")
    clients.s3.put_object(Bucket=settings.lake_bucket, Key="landing/web/x.gz", Body=b"2")
    clients.s3.create_bucket(Bucket="someone-elses-bucket")

    deleted = deploy.destroy(DEV, clients, deploy.Options(say=said.append, sleep=lambda _: None))
    assert deleted == ["shoplogs-dev-storage"]
    buckets = {b["Name"] for b in clients.s3.list_buckets()["Buckets"]}
    assert settings.lake_bucket not in buckets
    assert "someone-elses-bucket" in buckets
    assert deploy.describe_stack(clients.cfn, "shoplogs-dev-storage") is None


def test_make_deploy_dry_run_goes_through_every_stack_and_creates_nothing(
    aws_endpoint: str, clients: deploy.Clients, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    before = clients.cfn.describe_stacks()["Stacks"]
    assert deploy.main(["deploy", "--env", "dev", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for stack in environments.STACKS:
        assert f"shoplogs-dev-{stack}: would change" in out
    assert "would upload: spark-job, shipper-wheel, mwaa-bundle" in out
    assert clients.cfn.describe_stacks()["Stacks"] == before
