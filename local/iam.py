"""The local endpoint holds every caller to the IAM policies of the CloudFormation templates.

On a moto server started with ``enforce_iam`` (local/aws.py), ``enforce`` creates, while
moto still lets anyone in: a deployer user (an admin: what ``make deploy`` runs as) and
every role of infra/iam.py with its inline and managed policies; then it switches moto's
enforcement on (moto's ``/moto-api/reset-auth``, the runtime form of
``INITIAL_NO_AUTH_ACTION_COUNT``). From then on only these principals' credentials work,
and each call is checked against the caller's policies.

In AWS a service assumes each role (airflow.amazonaws.com, ec2.amazonaws.com, ...); here the
deployer does, so the roles' trust policies name the deployer instead. What moto cannot
enforce is listed in local/moto_stand_in.py and checked on paper by tests/infra/test_iam_calls.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import requests

from infra import iam
from local.aws import LOCAL_CREDENTIALS

DEPLOYER = "shoplogs-deployer"
ADMIN = {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}  # fmt: skip


@dataclass(frozen=True)
class Credentials:
    """What a principal's code holds: boto3's keyword arguments for it."""

    principal: str
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"aws_access_key_id": self.access_key_id,
                  "aws_secret_access_key": self.secret_access_key}  # fmt: skip
        return kwargs | ({"aws_session_token": self.session_token} if self.session_token else {})

    def environment(self) -> dict[str, str]:
        """The same as environment variables (for a subprocess such as spark-submit)."""
        env = {"AWS_ACCESS_KEY_ID": self.access_key_id,
               "AWS_SECRET_ACCESS_KEY": self.secret_access_key}  # fmt: skip
        return env | ({"AWS_SESSION_TOKEN": self.session_token} if self.session_token else {})


def _trusting(principal_arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal_arn},
                       "Action": "sts:AssumeRole"}],
    }  # fmt: skip


def create_deployer(iam_client: Any) -> Credentials:
    iam_client.create_user(UserName=DEPLOYER)
    iam_client.put_user_policy(UserName=DEPLOYER, PolicyName="administrator",
                               PolicyDocument=json.dumps(ADMIN))  # fmt: skip
    key = iam_client.create_access_key(UserName=DEPLOYER)["AccessKey"]
    return Credentials(DEPLOYER, key["AccessKeyId"], key["SecretAccessKey"])


def create_role(iam_client: Any, role: iam.Role, trusted: str) -> None:
    """The role with its template policies; managed ones become customer policies named
    after the ARN's last part (moto has AWS's own only as far as it ships them)."""
    iam_client.create_role(
        RoleName=role.name, AssumeRolePolicyDocument=json.dumps(_trusting(trusted))
    )
    for name, document in role.inline.items():
        iam_client.put_role_policy(RoleName=role.name, PolicyName=name,
                                   PolicyDocument=json.dumps(document))  # fmt: skip
    for arn, document in role.managed.items():
        name = arn.rsplit("/", 1)[-1]
        existing = {
            p["PolicyName"]: p["Arn"] for p in iam_client.list_policies(Scope="Local")["Policies"]
        }
        policy_arn = (
            existing.get(name)
            or iam_client.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))[
                "Policy"
            ]["Arn"]
        )
        iam_client.attach_role_policy(RoleName=role.name, PolicyArn=policy_arn)


def switch_on(endpoint: str) -> None:
    """From the next call on, every call is authenticated and checked (moto's reset-auth)."""
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()


def assume(endpoint: str, region: str, deployer: Credentials, role_arn: str) -> Credentials:
    sts = boto3.client("sts", endpoint_url=endpoint, region_name=region, **deployer.client_kwargs())
    session = role_arn.rsplit("/", 1)[-1]
    got = sts.assume_role(RoleArn=role_arn, RoleSessionName=session)["Credentials"]
    return Credentials(role_arn, got["AccessKeyId"], got["SecretAccessKey"], got["SessionToken"])


def enforce(endpoint: str, place: iam.Place) -> dict[str, Credentials]:
    """Create the deployer and the templates' roles, switch enforcement on, and return the
    credentials of each (``DEPLOYER`` and every role name)."""
    # Any key works until enforcement is on: the local stack's usual one.
    bootstrap: dict[str, Any] = {name.lower(): value for name, value in LOCAL_CREDENTIALS.items()}
    iam_client = boto3.client("iam", endpoint_url=endpoint, region_name=place.region, **bootstrap)
    deployer = create_deployer(iam_client)
    deployer_arn = f"arn:aws:iam::{place.account_id}:user/{DEPLOYER}"
    roles = iam.role_policies(place)
    for role in roles.values():
        create_role(iam_client, role, deployer_arn)
    switch_on(endpoint)
    held = {DEPLOYER: deployer}
    for name in roles:
        arn = f"arn:aws:iam::{place.account_id}:role/{name}"
        held[name] = assume(endpoint, place.region, deployer, arn)
    return held


# Who runs each stage of local/run.py in AWS: the deployer provisions, the shipper's
# instance role ships, the Spark job role does the job's own S3 reads and writes (the local
# runner's staging stands in for them), the MWAA execution role runs every other task.
def stage_roles(env: str) -> dict[str, str]:
    return {
        "local aws": DEPLOYER,
        "ship": f"shoplogs-{env}-shipper",
        "spark": f"shoplogs-{env}-emr-serverless",
    }


@dataclass(frozen=True)
class Roles:
    """The credentials of every principal, and which one each stage holds."""

    held: dict[str, Credentials]
    env: str

    def of_stage(self, stage: str) -> Credentials:
        return self.held[stage_roles(self.env).get(stage, f"shoplogs-{self.env}-mwaa")]

    @contextmanager
    def holding(self, credentials: Credentials) -> Iterator[None]:
        """The process's AWS credentials are ``credentials`` inside the block (boto3, s3fs,
        DuckDB and subprocesses such as spark-submit all read them from the environment)."""
        names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
        before = {name: os.environ.get(name) for name in names}
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.update(credentials.environment())
        # boto3's default session keeps the first credentials it found for the life of the
        # process: without a fresh one, boto3.client() would go on using those.
        boto3.DEFAULT_SESSION = None
        try:
            yield
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            boto3.DEFAULT_SESSION = None
