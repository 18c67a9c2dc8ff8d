"""The local endpoint holds each piece of the pipeline to its role's policy from the templates:
the deployer provisions, the shipper's instance role ships through Firehose (which delivers
to landing/ itself), the MWAA execution role claims and promotes, the Spark job role writes
the run's output. Without the state/ grant (the defect the first deploy would have hit)
promote is denied, and the denial names the role, the action and the resource."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra import iam as policies
from lake import layout, zones
from local import iam
from local.aws import moto_server, provision
from orchestration.settings import LOCAL_ACCOUNT_ID, Settings, load_settings
from shoplogs_agent.files import ship_file

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 3)
MWAA, SHIPPER, JOB = "shoplogs-dev-mwaa", "shoplogs-dev-shipper", "shoplogs-dev-emr-serverless"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server(clock_start=datetime(2026, 11, 3, 12, tzinfo=UTC), enforce_iam=True) as url:
        yield url


@pytest.fixture(scope="module")
def settings(endpoint: str) -> Settings:
    return load_settings("dev").with_endpoint(endpoint)


@pytest.fixture(scope="module")
def held(endpoint: str, settings: Settings) -> dict[str, iam.Credentials]:
    place = policies.Place("dev", LOCAL_ACCOUNT_ID, settings.region, settings.lake_bucket)
    return iam.enforce(endpoint, place)


@pytest.fixture(scope="module")
def lake(settings: Settings, held: dict[str, iam.Credentials]) -> str:
    """The bucket and the web stream's delivery stream, provisioned by the deployer."""
    streams = {"web": settings.stream("web").delivery_stream}
    provision(client(settings, held, iam.DEPLOYER, "s3"),
              client(settings, held, iam.DEPLOYER, "firehose"), settings.lake_bucket,
              streams, settings.firehose_role_arn)  # fmt: skip
    return settings.lake_bucket


def client(settings: Settings, held: dict[str, iam.Credentials], who: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=settings.aws_endpoint_url,
                        region_name=settings.region, **held[who].client_kwargs())  # fmt: skip


def test_each_role_does_its_part_and_no_more(
    settings: Settings, held: dict[str, iam.Credentials], lake: str, tmp_path: Path
) -> None:
    bucket = lake
    log = tmp_path / "access.log"
    log.write_text('127.0.0.1 - - [03/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1\n')
    shipped = ship_file(client(settings, held, SHIPPER, "firehose"),
                        settings.stream("web").delivery_stream, log)  # fmt: skip
    assert shipped.lines_shipped == 1

    mwaa = client(settings, held, MWAA, "s3")
    assert zones.claim(mwaa, bucket, DAY)  # Firehose delivered to landing/ itself
    job = client(settings, held, JOB, "s3")
    session = layout.output_prefix(DAY) + layout.state_prefix("web_sessions", DAY) + "a.parquet"
    job.put_object(Bucket=bucket, Key=session, Body=b"sessions")
    with pytest.raises(ClientError, match="AccessDenied"):  # the job role publishes nothing
        job.put_object(Bucket=bucket, Key=layout.state_prefix("web_sessions", DAY) + "x", Body=b"")
    assert layout.state_prefix("web_sessions", DAY) + "a.parquet" in zones.promote(
        mwaa, bucket, DAY
    )


@pytest.fixture
def without_state_grant(settings: Settings, held: dict[str, iam.Credentials]) -> Iterator[None]:
    """The MWAA role's task policy less its state/ resource, for one test."""
    deployer = client(settings, held, iam.DEPLOYER, "iam")
    kept = deployer.get_role_policy(RoleName=MWAA, PolicyName="pipeline-tasks")["PolicyDocument"]
    document = json.loads(json.dumps(kept))
    for statement in document["Statement"]:
        if isinstance(statement.get("Resource"), list):
            statement["Resource"] = [r for r in statement["Resource"] if "/state/" not in r]
    deployer.put_role_policy(RoleName=MWAA, PolicyName="pipeline-tasks",
                             PolicyDocument=json.dumps(document))  # fmt: skip
    yield
    deployer.put_role_policy(RoleName=MWAA, PolicyName="pipeline-tasks",
                             PolicyDocument=json.dumps(kept))  # fmt: skip


@pytest.mark.usefixtures("without_state_grant")
def test_without_the_state_grant_promote_is_denied_naming_role_action_and_resource(
    settings: Settings, held: dict[str, iam.Credentials], lake: str
) -> None:
    bucket = lake
    day = date(2026, 11, 4)  # a run date of its own
    job = client(settings, held, JOB, "s3")
    output = layout.output_prefix(day) + layout.state_prefix("web_sessions", day) + "b.parquet"
    job.put_object(Bucket=bucket, Key=output, Body=b"sessions")
    with pytest.raises(ClientError) as denied:
        zones.promote(client(settings, held, MWAA, "s3"), bucket, day)
    message = str(denied.value)
    assert "AccessDenied" in message and "assumed-role/shoplogs-dev-mwaa/" in message
    assert "s3:PutObject" in message and f"{bucket}/state/web_sessions/" in message
