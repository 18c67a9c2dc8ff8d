"""Every AWS call the shipped code makes is allowed by the policy of the role that makes it in
AWS, checked on paper against the templates' own policies (infra/iam.py).

This is the check for what the local endpoint cannot enforce (EMR steps, EMR Serverless,
Secrets Manager through Airflow's backend, Redshift Serverless credentials, the Spark job's
S3A reads and writes on EMR). An AST scan finds every boto3 operation called in orchestration/,
lake/, spark/ and agent/; each must have a row in ``CALLS`` (what the call touches), and each
row must be allowed. Conditions (tags, s3:prefix, kms:ViaService) are not evaluated here.
"""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name

from infra import iam
from lake import layout
from orchestration.settings import REPO_ROOT

PLACE = iam.Place("dev", "123456789012", "us-east-1", "shoplogs-dev-lake-123456789012")
DAY = date(2026, 11, 3)
MWAA, SHIPPER = "shoplogs-dev-mwaa", "shoplogs-dev-shipper"
JOB_ROLES = ("shoplogs-dev-emr-ec2", "shoplogs-dev-emr-serverless")
# The services the shipped code calls through boto3.
SERVICES = ("s3", "firehose", "emr", "emr-serverless", "glue", "sqs", "secretsmanager")
# Where the code of each folder runs in AWS, and so whose credentials it holds.
FOLDER_ROLES = {"orchestration": (MWAA,), "lake": (MWAA,), "agent": (SHIPPER,),
                "spark": JOB_ROLES}  # fmt: skip
# Project functions named like a botocore operation (not AWS calls).
NOT_CALLS = {"list_keys"}
# Operations whose IAM action is not `<signing name>:<Operation>` (AWS's service
# authorization reference).
IAM_ACTIONS = {
    "s3:HeadObject": ("s3:GetObject",),
    "s3:CopyObject": ("s3:GetObject", "s3:PutObject"),
    "s3:ListObjectsV2": ("s3:ListBucket",),
}
# Calls made by the Airflow provider on the DAG's behalf (operators, sensors, triggers,
# the secrets backend), which no scan of this repository sees.
PROVIDER_CALLS = {
    "EmrHook.create_job_flow": ("elasticmapreduce:RunJobFlow", "iam:PassRole"),
    "EmrAddStepsOperator": ("elasticmapreduce:AddJobFlowSteps",),
    "EmrStepSensor": ("elasticmapreduce:DescribeStep",),
    "EmrServerlessStartJobOperator": (
        "emr-serverless:GetApplication", "emr-serverless:StartApplication",
        "emr-serverless:StartJobRun", "emr-serverless:GetJobRun",
        "emr-serverless:CancelJobRun", "iam:PassRole",
    ),
    "SqsSensorTrigger": ("sqs:ReceiveMessage", "sqs:DeleteMessage"),
    "SecretsManagerBackend": ("secretsmanager:GetSecretValue",),
    "redshift IAM login": ("redshift-serverless:GetCredentials",),
}  # fmt: skip


def lake(key: str) -> str:
    return f"arn:aws:s3:::{PLACE.lake_bucket}/{key}"


BUCKET = f"arn:aws:s3:::{PLACE.lake_bucket}"
CLUSTER = PLACE.arn("elasticmapreduce", "cluster/j-1ABC")
APP = PLACE.parameters()["EmrServerlessApplicationArn"]
RUN = layout.run_prefix(DAY)
# What each task writes and reads, key by key (lake/layout.py's names).
MWAA_WRITES = [
    layout.claim_marker("landing/web/2026/11/03/10/x"), layout.run_lock(DAY),
    layout.raw_key(DAY, "landing/web/2026/11/03/10/x"), layout.manifest_key(DAY),
    layout.dbt_results_key(DAY), layout.processed_prefix("orders", DAY) + "a.parquet",
    layout.claim_erasure(DAY, "ab" * 32),  # the claim's count of erased customers' lines
    layout.quarantine_prefix("web", DAY) + "a.json", layout.quarantined_object(DAY, RUN + "raw/x"),
    layout.state_prefix("web_sessions", DAY) + "a.parquet", layout.REPORTS + "index.html",
    layout.REPORTS + layout.report_data(DAY), layout.DOCS + "index.html",
    layout.spark_artifact_prefix("v1") + "job.py",
    # make erase / the erase DAG: the register, the audit record, the rewritten zones
    layout.register_entry("ab" * 32), layout.erasure_audit("ab" * 32, "2026-11-03T10:00:00"),
    "landing/customers/2026/11/03/10/x", layout.landing_errors_prefix("orders") + "x",
    layout.FIREHOSE_ERRORS + "orders/x.gz", layout.EMR_LOGS + "j-1ABC/steps/s-1/stderr.gz",
    layout.EMR_SERVERLESS_LOGS + "applications/00app/jobs/00run/stdout.gz",
]  # fmt: skip
MWAA_READS = [
    *MWAA_WRITES, "landing/web/2026/11/03/10/x",
    layout.output_prefix(DAY) + layout.stats_prefix(DAY) + "web.json",
    layout.output_prefix(DAY) + layout.state_prefix("web_sessions", DAY) + "a.parquet",
]  # fmt: skip
MWAA_DELETES = [*MWAA_WRITES, "landing/web/2026/11/03/10/x", layout.output_prefix(DAY) + "x"]
JOB_READS = [
    layout.spark_artifact_prefix("v1") + "job.py", layout.raw_prefix(DAY) + "web/x",
    layout.state_prefix("web_sessions", date(2026, 11, 2)) + "a.parquet",
    layout.register_entry("ab" * 32),  # erased customers stay erased in every run
]  # fmt: skip
JOB_WRITES = [
    layout.output_prefix(DAY) + layout.processed_prefix("orders", DAY) + "a.parquet",
    layout.output_prefix(DAY) + layout.state_prefix("web_sessions", DAY) + "a.parquet",
]

# (role, IAM action) -> the resources the code acts on with it.
CALLS: dict[tuple[str, str], list[str]] = {
    (MWAA, "s3:ListBucket"): [BUCKET],
    (MWAA, "s3:GetObject"): [lake(k) for k in MWAA_READS],
    (MWAA, "s3:PutObject"): [lake(k) for k in MWAA_WRITES],
    (MWAA, "s3:DeleteObject"): [lake(k) for k in MWAA_DELETES],
    (MWAA, "glue:CreateDatabase"): [PLACE.arn("glue", "catalog"),
                                    PLACE.arn("glue", "database/shoplogs_dev")],
    **{(MWAA, f"glue:{op}"): [PLACE.arn("glue", "catalog"),
                              PLACE.arn("glue", "database/shoplogs_dev"),
                              PLACE.arn("glue", "table/shoplogs_dev/orders")]
       for op in ("CreateTable", "UpdateTable", "CreatePartition", "UpdatePartition")},
    (MWAA, "elasticmapreduce:ListClusters"): ["*"],
    (MWAA, "elasticmapreduce:RunJobFlow"): ["*"],
    **{(MWAA, f"elasticmapreduce:{op}"): [CLUSTER]
       for op in ("DescribeCluster", "TerminateJobFlows", "AddJobFlowSteps", "DescribeStep")},
    **{(MWAA, f"emr-serverless:{op}"): [APP]
       for op in ("GetApplication", "StartApplication", "StartJobRun")},
    **{(MWAA, f"emr-serverless:{op}"): [f"{APP}/jobruns/00run"]
       for op in ("GetJobRun", "CancelJobRun")},
    (MWAA, "iam:PassRole"): [PLACE.arn("iam", f"role/{r}", region=False) for r in JOB_ROLES],
    **{(MWAA, f"sqs:{op}"): [PLACE.parameters()["LandingQueueArn"]]
       for op in ("ReceiveMessage", "DeleteMessage")},
    (MWAA, "secretsmanager:GetSecretValue"): [
        PLACE.arn("secretsmanager", "secret:shoplogs/dev/connections/aws_default-AbCdEf"),
        PLACE.arn("secretsmanager", "secret:shoplogs/dev/variables/spark_runner-AbCdEf"),
    ],
    (MWAA, "redshift-serverless:GetCredentials"): [PLACE.parameters()["RedshiftWorkgroupArn"]],
    **{(role, "s3:GetObject"): [lake(k) for k in JOB_READS] for role in JOB_ROLES},
    **{(role, "s3:PutObject"): [lake(k) for k in JOB_WRITES] for role in JOB_ROLES},
    **{(role, "s3:DeleteObject"): [lake(k) for k in JOB_WRITES] for role in JOB_ROLES},
    **{(role, "s3:ListBucket"): [BUCKET] for role in JOB_ROLES},
    # The job's pseudonymization key (job.py --pseudonym-secret; AWS appends -<6 chars>).
    **{(role, "secretsmanager:GetSecretValue"): [
        PLACE.arn("secretsmanager", "secret:shoplogs/dev/spark/pseudonym-key-AbCdEf")
    ] for role in JOB_ROLES},
    # EMR Serverless writes the driver's logs with the job role, where the runner says.
    ("shoplogs-dev-emr-serverless", "s3:PutObject:logs"): [
        lake(layout.EMR_SERVERLESS_LOGS + "applications/00app/jobs/00run/stdout.gz")
    ],
    (SHIPPER, "firehose:PutRecordBatch"): [
        PLACE.arn("firehose", f"deliverystream/shoplogs-dev-{s}") for s in layout.STREAMS
    ],
    (SHIPPER, "s3:PutObject"): [lake(layout.shipper_rejects("web", "access.log", "ab12"))],
}  # fmt: skip


def iam_actions() -> dict[str, tuple[str, ...]]:
    """boto3 method name -> the IAM actions it needs, for the services the code calls."""
    session = botocore.session.get_session()
    actions: dict[str, tuple[str, ...]] = {}
    for service in SERVICES:
        model = session.get_service_model(service)
        for operation in model.operation_names:
            action = f"{model.signing_name}:{operation}"
            actions[xform_name(operation)] = IAM_ACTIONS.get(action, (action,))
    return actions


def calls_in_code() -> set[tuple[str, str, str]]:
    """(role, IAM action, where) of every boto3 operation the shipped code calls."""
    actions, found = iam_actions(), set()
    for folder, roles in FOLDER_ROLES.items():
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                method = node.func.attr
                if method in ("get_paginator", "get_waiter") and node.args:
                    method = getattr(node.args[0], "value", method)
                if method in NOT_CALLS or method not in actions:
                    continue
                where = f"{Path(path).relative_to(REPO_ROOT)}:{node.lineno}"
                found |= {(role, action, where) for role in roles for action in actions[method]}
    return found


@pytest.fixture(scope="module")
def roles() -> dict[str, iam.Role]:
    return iam.role_policies(PLACE)


def test_the_scan_finds_the_calls_it_must() -> None:
    found = {(role, action) for role, action, _ in calls_in_code()}
    assert (MWAA, "elasticmapreduce:DescribeCluster") in found
    assert (MWAA, "s3:ListBucket") in found  # list_objects_v2 through a paginator
    assert (SHIPPER, "firehose:PutRecordBatch") in found


def test_every_call_in_the_code_has_a_row() -> None:
    missing = sorted(f"{where}: {role} {action}" for role, action, where in calls_in_code()
                     if (role, action) not in CALLS)  # fmt: skip
    assert not missing, "calls with no row in CALLS (add what they touch):\n" + "\n".join(missing)


def test_every_provider_call_has_a_row() -> None:
    missing = [(caller, action) for caller, actions in PROVIDER_CALLS.items()
               for action in actions if (MWAA, action) not in CALLS]  # fmt: skip
    assert not missing


@pytest.mark.parametrize(
    ("role", "action"), sorted(CALLS), ids=[f"{r}/{a}" for r, a in sorted(CALLS)]
)
def test_the_role_may_make_the_call(roles: dict[str, iam.Role], role: str, action: str) -> None:
    iam_action = action.removesuffix(":logs")
    denied = [r for r in CALLS[(role, action)] if not iam.allows(roles[role].documents,
                                                                 iam_action, r)]  # fmt: skip
    assert not denied, f"{role} may not {iam_action} on: {denied}"


def test_removing_the_state_grant_denies_promote(roles: dict[str, iam.Role]) -> None:
    """The check has teeth: without the state/ grant, promote's write is denied."""
    target = lake(layout.state_prefix("web_sessions", DAY) + "a.parquet")
    documents = roles[MWAA].documents
    assert iam.allows(documents, "s3:PutObject", target)
    stripped = [
        {**d, "Statement": [{**s, "Resource": [r for r in s["Resource"] if "/state/" not in r]}
                            if isinstance(s.get("Resource"), list) else s
                            for s in d["Statement"]]}
        for d in documents
    ]  # fmt: skip
    assert not iam.allows(stripped, "s3:PutObject", target)


def test_the_runner_logs_where_the_application_logs() -> None:
    """The Serverless log prefix the runner passes is the application's own (which the job
    role may write), not a second one."""
    app = iam.load("processing")["Resources"]["ServerlessApplication"]["Properties"]
    log_uri = app["MonitoringConfiguration"]["S3MonitoringConfiguration"]["LogUri"]
    assert log_uri["Fn::Sub"][0] == "s3://${Bucket}/" + layout.EMR_SERVERLESS_LOGS
