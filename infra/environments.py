"""What differs between the AWS environments, in one place, and each stack's parameters.

Names are never set here: every template derives its names from ``shoplogs-<env>`` the same
way ``orchestration/settings.py`` does (``tests/infra/test_names.py`` checks they agree).
Values that only exist once an account is set up (the Snowflake integration's IAM user and
external id) come from the environment of ``make deploy``, never from the repository.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from infra import mwaa
from orchestration.settings import PROJECT, resource_names


@dataclass(frozen=True)
class Environment:
    name: str
    region: str
    vpc_cidr: str
    warehouse: str  # snowflake | redshift: what the MWAA bundle's startup script selects
    # The web servers' log format (docs/data-contract.md, "Formats"): the MWAA bundle's
    # startup script sets it as SHOPLOGS_WEB_FORMAT, for lines whose shipper names none.
    web_format: str
    create_redshift: bool
    landing_expire_days: int
    quarantine_expire_days: int
    processing_expire_days: int
    processed_infrequent_access_days: int
    noncurrent_version_expire_days: int
    access_log_expire_days: int
    firehose_buffer_seconds: int
    firehose_buffer_mbs: int
    log_retention_days: int
    emr_release_label: str
    serverless_max_vcpu: str
    serverless_max_memory: str
    redshift_base_capacity: int
    redshift_max_capacity: int
    airflow_version: str
    mwaa_class: str
    mwaa_max_workers: int
    # CloudFormation refuses to delete a protected stack: `make destroy` stops there.
    termination_protection: bool

    @property
    def prefix(self) -> str:
        return f"{PROJECT}-{self.name}"

    def stack_name(self, stack: str) -> str:
        return f"{self.prefix}-{stack}"


ENVIRONMENTS: dict[str, Environment] = {
    "dev": Environment(
        name="dev",
        region="eu-west-1",
        vpc_cidr="10.40.0.0/16",
        warehouse="snowflake",
        web_format="combined",
        create_redshift=True,
        landing_expire_days=7,
        quarantine_expire_days=14,
        processing_expire_days=7,
        processed_infrequent_access_days=30,
        noncurrent_version_expire_days=7,
        access_log_expire_days=30,
        firehose_buffer_seconds=300,
        firehose_buffer_mbs=64,
        log_retention_days=14,
        emr_release_label="emr-7.5.0",
        serverless_max_vcpu="16 vCPU",
        serverless_max_memory="64 GB",
        redshift_base_capacity=8,
        redshift_max_capacity=16,
        airflow_version=mwaa.AIRFLOW_VERSION,
        mwaa_class="mw1.small",
        mwaa_max_workers=2,
        termination_protection=False,
    ),
    "prod": Environment(
        name="prod",
        region="eu-west-1",
        vpc_cidr="10.41.0.0/16",
        warehouse="snowflake",
        web_format="combined",
        create_redshift=True,
        landing_expire_days=14,
        quarantine_expire_days=30,
        processing_expire_days=14,
        processed_infrequent_access_days=30,
        noncurrent_version_expire_days=30,
        access_log_expire_days=365,
        firehose_buffer_seconds=300,
        firehose_buffer_mbs=128,
        log_retention_days=90,
        emr_release_label="emr-7.5.0",
        serverless_max_vcpu="64 vCPU",
        serverless_max_memory="256 GB",
        redshift_base_capacity=8,
        redshift_max_capacity=64,
        airflow_version=mwaa.AIRFLOW_VERSION,
        mwaa_class="mw1.small",
        mwaa_max_workers=5,
        termination_protection=True,
    ),
}

# Deploy order: each stack's parameters may use the outputs of those before it.
STACKS = ("storage", "network", "ingestion", "processing", "warehouses", "orchestration")


# Parameters a template declares with Default "": empty is a valid value (the Snowflake
# integration's values before it exists, no Redshift, a dry run's bundle versions). Every other
# parameter empty means an earlier stack's output is missing (tests/infra/test_deploy_stubbed.py
# checks this set against the templates).
OPTIONAL_PARAMETERS = frozenset(
    {"SnowflakeIamUserArn", "SnowflakeExternalId", "RedshiftWorkgroupArn",
     "RequirementsVersion", "StartupScriptVersion"}
)  # fmt: skip


def planned_outputs(
    env: Environment, stack: str, account_id: str, region: str, partition: str = "aws"
) -> dict[str, str]:
    """The outputs ``stack`` will have once created, for a dry run into an account where it
    does not exist yet, so later stacks' change sets get real-looking parameters, not "".

    Names are the templates' own (``shoplogs-<env>-...``, as ``orchestration/settings.py``
    builds them); ids AWS assigns at creation (subnets, security groups, applications) cannot
    be known and are placeholders of the right shape; the key is named by its alias.
    """
    bucket, _ = resource_names(env.name, account_id)
    arn = f"arn:{partition}"
    by_stack = {
        "storage": {
            "LakeBucketName": bucket,
            "LakeBucketArn": f"{arn}:s3:::{bucket}",
            "LakeKeyArn": f"{arn}:kms:{region}:{account_id}:alias/{env.prefix}-lake",
            "AccessLogBucketArn": f"{arn}:s3:::{env.prefix}-access-logs-{account_id}",
            "MwaaBucketName": f"{env.prefix}-mwaa-{account_id}",
            "MwaaBucketArn": f"{arn}:s3:::{env.prefix}-mwaa-{account_id}",
            "LandingQueueArn": f"{arn}:sqs:{region}:{account_id}:{env.prefix}-landing-events",
        },
        "network": {
            "PrivateSubnetIds": ",".join(f"subnet-{'0' * 16}{z}" for z in "abc"),
            "MwaaSubnetIds": ",".join(f"subnet-{'0' * 16}{z}" for z in "ab"),
            "MwaaSecurityGroupId": f"sg-{'0' * 16}a",
            "RedshiftSecurityGroupId": f"sg-{'0' * 16}b",
        },
        "processing": {
            "ServerlessApplicationArn": (
                f"{arn}:emr-serverless:{region}:{account_id}:/applications/{'0' * 16}"
            ),
        },
    }
    return by_stack.get(stack, {})


def get(name: str) -> Environment:
    if name not in ENVIRONMENTS:
        raise KeyError(f"unknown environment {name!r}; choose one of {', '.join(ENVIRONMENTS)}")
    return ENVIRONMENTS[name]


def parameters(
    env: Environment,
    stack: str,
    outputs: Mapping[str, str],
    host_env: Mapping[str, str] = os.environ,
) -> dict[str, str]:
    """The CloudFormation parameters of ``stack``: this file's values plus earlier outputs.

    ``outputs`` holds every earlier stack's outputs by name (names are unique across stacks).
    """
    out = outputs.get
    common = {"Env": env.name}
    lake = {"LakeBucketArn": out("LakeBucketArn", ""), "LakeKeyArn": out("LakeKeyArn", "")}
    by_stack: dict[str, dict[str, object]] = {
        "storage": {
            "LandingExpireDays": env.landing_expire_days,
            "QuarantineExpireDays": env.quarantine_expire_days,
            "ProcessingExpireDays": env.processing_expire_days,
            "ProcessedInfrequentAccessDays": env.processed_infrequent_access_days,
            "NoncurrentVersionExpireDays": env.noncurrent_version_expire_days,
            "AccessLogExpireDays": env.access_log_expire_days,
        },
        "network": {"VpcCidr": env.vpc_cidr, "AccessLogBucketArn": out("AccessLogBucketArn", "")},
        "ingestion": {
            **lake,
            "BufferIntervalSeconds": env.firehose_buffer_seconds,
            "BufferSizeMBs": env.firehose_buffer_mbs,
            "LogRetentionDays": env.log_retention_days,
        },
        "processing": {
            **lake,
            "ReleaseLabel": env.emr_release_label,
            "ServerlessMaxVCpu": env.serverless_max_vcpu,
            "ServerlessMaxMemory": env.serverless_max_memory,
        },
        "warehouses": {
            **lake,
            "CreateRedshift": str(env.create_redshift).lower(),
            "RedshiftBaseCapacity": env.redshift_base_capacity,
            "RedshiftMaxCapacity": env.redshift_max_capacity,
            "RedshiftSubnetIds": out("PrivateSubnetIds", ""),
            "RedshiftSecurityGroupId": out("RedshiftSecurityGroupId", ""),
            # Known only after the Snowflake integration exists (infra/README.md, step 5).
            "SnowflakeIamUserArn": host_env.get("SNOWFLAKE_IAM_USER_ARN", ""),
            "SnowflakeExternalId": host_env.get("SNOWFLAKE_EXTERNAL_ID", ""),
        },
        "orchestration": {
            **lake,
            "AirflowVersion": env.airflow_version,
            "EnvironmentClass": env.mwaa_class,
            "MaxWorkers": env.mwaa_max_workers,
            "MwaaBucketArn": out("MwaaBucketArn", ""),
            "LandingQueueArn": out("LandingQueueArn", ""),
            "SubnetIds": out("MwaaSubnetIds", ""),
            "SecurityGroupId": out("MwaaSecurityGroupId", ""),
            "EmrServerlessApplicationArn": out("ServerlessApplicationArn", ""),
            "RedshiftWorkgroupArn": out("RedshiftWorkgroupArn", ""),
            "RequirementsVersion": out("RequirementsVersion", ""),
            "StartupScriptVersion": out("StartupScriptVersion", ""),
        },
    }
    if stack not in by_stack:
        raise KeyError(f"unknown stack {stack!r}; stacks: {', '.join(STACKS)}")
    return {key: str(value) for key, value in {**common, **by_stack[stack]}.items()}
