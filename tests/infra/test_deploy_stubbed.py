"""The deployer against botocore-stubbed clients: the paths moto cannot show (a change set
CloudFormation rejects, an update it rolls back, resources it has no model for) and the
refusals of destroy. Every call the deployer makes must be one the test expects."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from infra import deploy, environments
from tests.infra.templates import PSEUDO, load, resolve

DEV = environments.get("dev")
CREATED = datetime(2026, 11, 1, tzinfo=UTC)
OURS = [{"Key": "shoplogs:project", "Value": "shoplogs"}, {"Key": "shoplogs:env", "Value": "dev"}]
NO_CHANGES = (
    "The submitted information didn't contain changes. "
    "Submit different information to create a change set."
)


@pytest.fixture
def cfn() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("cloudformation", region_name="eu-west-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


@pytest.fixture
def s3() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("s3", region_name="eu-west-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def stack(name: str, status: str, outputs: dict[str, str] | None = None, **extra: Any) -> dict:
    return {
        "StackName": name,
        "StackId": f"arn:aws:cloudformation:eu-west-1:000000000000:stack/{name}/1",
        "CreationTime": CREATED,
        "StackStatus": status,
        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in (outputs or {}).items()],
        **extra,
    }


def missing(stub: Stubber, name: str) -> None:
    stub.add_client_error(
        "describe_stacks",
        service_error_code="ValidationError",
        service_message=f"Stack with id {name} does not exist",
        expected_params={"StackName": name},
    )


def existing(stub: Stubber, name: str, status: str = "UPDATE_COMPLETE", **kw: Any) -> None:
    stub.add_response(
        "describe_stacks", {"Stacks": [stack(name, status, **kw)]}, {"StackName": name}
    )


def change_set(status: str, reason: str = "", changes: list | None = None) -> dict:
    return {"Status": status, "StatusReason": reason, "Changes": changes or []}


def expect_change_set(stub: Stubber, name: str, kind: str, parameters: Any = ANY) -> None:
    stub.add_response(
        "create_change_set",
        {"Id": "cs-1"},
        {
            "StackName": name,
            "ChangeSetName": ANY,
            "ChangeSetType": kind,
            "TemplateBody": ANY,
            "Parameters": parameters,
            "Capabilities": ["CAPABILITY_NAMED_IAM"],
            "Tags": OURS,
        },
    )


def add_change(logical_id: str, kind: str = "AWS::S3::Bucket", action: str = "Add") -> dict:
    return {
        "Type": "Resource",
        "ResourceChange": {"Action": action, "LogicalResourceId": logical_id, "ResourceType": kind},
    }


def run_storage(cfn: Any, said: list[str], dry_run: bool = False) -> dict[str, str]:
    options = deploy.Options(dry_run=dry_run, say=said.append, sleep=lambda _: None)
    parameters = environments.parameters(DEV, "storage", {}, host_env={})
    return deploy.deploy_stack(
        cfn, "shoplogs-dev-storage", deploy.template_body("storage"), parameters,
        deploy.stack_tags(DEV), options,
    )  # fmt: skip


def test_a_failed_change_set_leaves_the_stack_as_it_was_and_says_why(cfn: Any) -> None:
    client, stub = cfn
    name = "shoplogs-dev-storage"
    existing(stub, name, outputs={"LakeBucketName": "kept"})
    expect_change_set(stub, name, "UPDATE")
    reason = "Parameters: [LandingExpireDays] must have values"
    stub.add_response("describe_change_set", change_set("FAILED", reason))
    stub.add_response("delete_change_set", {}, {"StackName": name, "ChangeSetName": ANY})
    with pytest.raises(deploy.DeployError) as failure:
        run_storage(client, [])
    assert reason in str(failure.value)
    assert "left as it was" in str(failure.value)
    # No execute_change_set and no delete_stack were stubbed: calling either fails the test.


def test_a_rejected_first_change_set_removes_the_empty_stack_it_made(cfn: Any) -> None:
    client, stub = cfn
    name = "shoplogs-dev-storage"
    missing(stub, name)
    expect_change_set(stub, name, "CREATE")
    stub.add_response("describe_change_set", change_set("FAILED", "Template error: bad ref"))
    stub.add_response("delete_change_set", {}, {"StackName": name, "ChangeSetName": ANY})
    stub.add_response("delete_stack", {}, {"StackName": name})
    with pytest.raises(deploy.DeployError, match="Template error: bad ref"):
        run_storage(client, [])


def test_no_changes_is_not_a_failure(cfn: Any) -> None:
    client, stub = cfn
    name = "shoplogs-dev-storage"
    existing(stub, name, outputs={"LakeBucketName": "b"})
    expect_change_set(stub, name, "UPDATE")
    stub.add_response("describe_change_set", change_set("FAILED", NO_CHANGES))
    stub.add_response("delete_change_set", {}, {"StackName": name, "ChangeSetName": ANY})
    said: list[str] = []
    assert run_storage(client, said) == {"LakeBucketName": "b"}
    assert said == [f"{name}: no changes"]


def test_a_dry_run_prints_the_changes_and_executes_nothing(cfn: Any) -> None:
    client, stub = cfn
    name = "shoplogs-dev-storage"
    existing(stub, name)
    expect_change_set(stub, name, "UPDATE")
    stub.add_response("describe_change_set", {"Status": "CREATE_PENDING", "Changes": []})
    modify = add_change("LakeBucket", action="Modify")
    modify["ResourceChange"]["Replacement"] = "False"
    stub.add_response("describe_change_set", change_set("CREATE_COMPLETE", changes=[modify]))
    stub.add_response("delete_change_set", {}, {"StackName": name, "ChangeSetName": ANY})
    said: list[str] = []
    run_storage(client, said, dry_run=True)
    assert said == [
        f"{name}: would change\n  Modify  LakeBucket [AWS::S3::Bucket] (replacement: False)"
    ]


def test_an_update_cloudformation_rolls_back_is_reported_with_its_reasons(cfn: Any) -> None:
    client, stub = cfn
    name = "shoplogs-dev-storage"
    existing(stub, name)
    expect_change_set(stub, name, "UPDATE")
    stub.add_response(
        "describe_change_set", change_set("CREATE_COMPLETE", changes=[add_change("X")])
    )
    stub.add_response("execute_change_set", {}, {"StackName": name, "ChangeSetName": ANY})
    existing(stub, name, "UPDATE_ROLLBACK_IN_PROGRESS")
    existing(stub, name, "UPDATE_ROLLBACK_COMPLETE")
    event = {
        "StackId": "s", "EventId": "e", "StackName": name, "Timestamp": CREATED,
        "LogicalResourceId": "LakeBucket", "ResourceStatus": "UPDATE_FAILED",
        "ResourceStatusReason": "shoplogs-dev-lake-000000000000 already exists",
    }  # fmt: skip
    stub.add_response("describe_stack_events", {"StackEvents": [event]}, {"StackName": name})
    with pytest.raises(deploy.DeployError) as failure:
        run_storage(client, [])
    message = str(failure.value)
    assert "UPDATE_ROLLBACK_COMPLETE" in message and "already exists" in message
    assert "rolled the stack back" in message


def test_a_stack_left_in_rollback_complete_is_named_with_the_fix(cfn: Any) -> None:
    client, stub = cfn
    existing(stub, "shoplogs-dev-storage", "ROLLBACK_COMPLETE")
    with pytest.raises(deploy.DeployError, match="make destroy") as failure:
        run_storage(client, [])
    assert "`make destroy ENV=dev STACK=storage`" in str(failure.value)  # that stack only


def test_each_stack_gets_the_outputs_of_the_ones_before(cfn: Any) -> None:
    client, stub = cfn
    storage_out = {"AccessLogBucketArn": "arn:aws:s3:::logs", "LakeBucketName": "lake"}
    existing(stub, "shoplogs-dev-storage", outputs=storage_out)
    expect_change_set(stub, "shoplogs-dev-storage", "UPDATE")
    stub.add_response("describe_change_set", change_set("FAILED", NO_CHANGES))
    stub.add_response("delete_change_set", {}, {"StackName": ANY, "ChangeSetName": ANY})
    missing(stub, "shoplogs-dev-network")
    expected = [
        {"ParameterKey": "Env", "ParameterValue": "dev"},
        {"ParameterKey": "VpcCidr", "ParameterValue": DEV.vpc_cidr},
        {"ParameterKey": "AccessLogBucketArn", "ParameterValue": "arn:aws:s3:::logs"},
    ]
    expect_change_set(stub, "shoplogs-dev-network", "CREATE", expected)
    stub.add_response(
        "describe_change_set", change_set("CREATE_COMPLETE", changes=[add_change("Vpc")])
    )
    stub.add_response("execute_change_set", {}, {"StackName": ANY, "ChangeSetName": ANY})
    existing(stub, "shoplogs-dev-network", "CREATE_COMPLETE", outputs={"VpcId": "vpc-1"})
    uploaded: list[str] = []

    def artifact(ctx: deploy.ArtifactContext) -> dict[str, str]:
        uploaded.append(ctx.outputs["LakeBucketName"])
        return {}

    outputs = deploy.deploy(
        DEV, deploy.Clients(cfn=client, s3=None),
        deploy.Options(say=lambda _: None, sleep=lambda _: None),
        stacks=("storage", "network"), artifacts={"probe": artifact}, host_env={},
    )  # fmt: skip
    assert outputs == {**storage_out, "VpcId": "vpc-1"}
    assert uploaded == ["lake"]  # artifacts go up once the stacks that hold them exist


def destroy_plan_stubs(stub: Stubber, storage_tags: list[dict[str, str]]) -> None:
    for stack_key in reversed(environments.STACKS[1:]):
        missing(stub, DEV.stack_name(stack_key))
    existing(stub, "shoplogs-dev-storage", "UPDATE_COMPLETE", Tags=storage_tags)


def resources(*buckets: str) -> dict:
    return {
        "StackResourceSummaries": [
            {"LogicalResourceId": f"B{i}", "PhysicalResourceId": bucket,
             "ResourceType": "AWS::S3::Bucket", "LastUpdatedTimestamp": CREATED,
             "ResourceStatus": "CREATE_COMPLETE"}
            for i, bucket in enumerate(buckets)
        ]
    }  # fmt: skip


def test_destroy_leaves_an_untagged_bucket_alone_and_deletes_nothing(cfn: Any, s3: Any) -> None:
    (cfn_client, cfn_stub), (s3_client, s3_stub) = cfn, s3
    destroy_plan_stubs(cfn_stub, OURS)
    cfn_stub.add_response(
        "list_stack_resources", resources("lake", "someone-elses"), {"StackName": ANY}
    )
    s3_stub.add_response("get_bucket_tagging", {"TagSet": OURS}, {"Bucket": "lake"})
    s3_stub.add_client_error(
        "get_bucket_tagging", "NoSuchTagSet", expected_params={"Bucket": "someone-elses"}
    )
    with pytest.raises(deploy.DeployError) as refused:
        deploy.destroy(DEV, deploy.Clients(cfn_client, s3_client), deploy.Options(say=print))
    assert "bucket someone-elses lacks the tags" in str(refused.value)
    assert "nothing was deleted" in str(refused.value)
    # No list_object_versions, delete_objects or delete_stack was stubbed.


def test_destroy_refuses_a_stack_without_the_project_tags(cfn: Any, s3: Any) -> None:
    (cfn_client, cfn_stub), (s3_client, _) = cfn, s3
    destroy_plan_stubs(cfn_stub, [{"Key": "shoplogs:env", "Value": "prod"}])
    with pytest.raises(deploy.DeployError, match="stack shoplogs-dev-storage lacks the tags"):
        deploy.destroy(DEV, deploy.Clients(cfn_client, s3_client), deploy.Options(say=print))


def test_destroy_refuses_a_protected_stack(cfn: Any, s3: Any) -> None:
    (cfn_client, cfn_stub), (s3_client, _) = cfn, s3
    for stack_key in reversed(environments.STACKS[1:]):
        missing(cfn_stub, DEV.stack_name(stack_key))
    existing(cfn_stub, "shoplogs-dev-storage", Tags=OURS, EnableTerminationProtection=True)
    cfn_stub.add_response("list_stack_resources", resources(), {"StackName": ANY})
    with pytest.raises(deploy.DeployError, match="termination protection"):
        deploy.destroy(DEV, deploy.Clients(cfn_client, s3_client), deploy.Options(say=print))


def test_destroy_empties_every_version_then_deletes_the_stack(cfn: Any, s3: Any) -> None:
    (cfn_client, cfn_stub), (s3_client, s3_stub) = cfn, s3
    destroy_plan_stubs(cfn_stub, OURS)
    cfn_stub.add_response("list_stack_resources", resources("lake"), {"StackName": ANY})
    s3_stub.add_response("get_bucket_tagging", {"TagSet": OURS}, {"Bucket": "lake"})
    versions = {
        "Versions": [{"Key": "processed/a.parquet", "VersionId": "v1"}],
        "DeleteMarkers": [{"Key": "landing/x.gz", "VersionId": "v2"}],
    }
    s3_stub.add_response("list_object_versions", versions, {"Bucket": "lake"})
    objects = [{"Key": "processed/a.parquet", "VersionId": "v1"},
               {"Key": "landing/x.gz", "VersionId": "v2"}]  # fmt: skip
    s3_stub.add_response(
        "delete_objects", {}, {"Bucket": "lake", "Delete": {"Objects": objects, "Quiet": True}}
    )
    cfn_stub.add_response("delete_stack", {}, {"StackName": "shoplogs-dev-storage"})
    existing(cfn_stub, "shoplogs-dev-storage", "DELETE_IN_PROGRESS")
    missing(cfn_stub, "shoplogs-dev-storage")
    said: list[str] = []
    deleted = deploy.destroy(
        DEV,
        deploy.Clients(cfn_client, s3_client),
        deploy.Options(say=said.append, sleep=lambda _: None),
    )
    assert deleted == ["shoplogs-dev-storage"]
    assert said == ["emptying lake: 2 objects", "shoplogs-dev-storage: deleted"]


def test_change_set_names_follow_the_content_not_the_clock() -> None:
    first = deploy.change_set_name("body", {"Env": "dev"})
    assert first == deploy.change_set_name("body", {"Env": "dev"})
    assert first != deploy.change_set_name("body", {"Env": "prod"})


def test_startup_exports_quote_what_the_stacks_return() -> None:
    exports = deploy.startup_exports(
        {"ServerlessApplicationId": "00abc", "PrivateSubnetIds": "subnet-1,subnet-2"}
    )
    assert "export EMR_SERVERLESS_APPLICATION_ID=00abc\n" in exports
    assert "export EMR_SUBNET_IDS=subnet-1,subnet-2\n" in exports
    assert "REDSHIFT_COPY_ROLE_ARN" not in exports  # no Redshift: nothing to export


def test_lint_stops_the_deploy_on_a_broken_template(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      Nope: 1\n"
    )
    with pytest.raises(deploy.DeployError, match="cfn-lint found problems"):
        deploy.lint([broken])


# --- a newcomer's first deploy ----------------------------------------------------------------

ACCOUNT = "123456789012"


@pytest.fixture
def sts() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("sts", region_name="eu-west-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def whoami(stub: Stubber) -> None:
    identity = {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/newcomer", "UserId": "U"}
    stub.add_response("get_caller_identity", identity, {})


def looked_at_only(stub: Stubber, name: str, parameters: Any = ANY) -> None:
    """A dry run's new stack: its change set is described, then it and the stack go."""
    missing(stub, name)
    expect_change_set(stub, name, "CREATE", parameters)
    stub.add_response(
        "describe_change_set", change_set("CREATE_COMPLETE", changes=[add_change("X")])
    )
    stub.add_response("delete_change_set", {}, {"StackName": name, "ChangeSetName": ANY})
    stub.add_response("delete_stack", {}, {"StackName": name})


def as_parameters(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def test_a_dry_run_into_an_empty_account_gives_later_stacks_the_names_not_empty_strings(
    cfn: Any, sts: Any
) -> None:
    (client, stub), (sts_client, sts_stub) = cfn, sts
    looked_at_only(stub, "shoplogs-dev-storage")
    whoami(sts_stub)
    lake = f"arn:aws:s3:::shoplogs-dev-lake-{ACCOUNT}"
    key = f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/shoplogs-dev-lake"
    # processing.yaml splits LakeBucketArn (!Select [5, !Split [":", ...]]): "" fails there.
    expected = environments.parameters(
        DEV, "processing", {"LakeBucketArn": lake, "LakeKeyArn": key}, host_env={}
    )
    looked_at_only(stub, "shoplogs-dev-processing", as_parameters(expected))
    whoami(sts_stub)
    missing(stub, "shoplogs-dev-orchestration")  # the bundle versions MWAA runs now: none
    said: list[str] = []
    outputs = deploy.deploy(
        DEV, deploy.Clients(cfn=client, s3=None, sts=sts_client),
        deploy.Options(dry_run=True, say=said.append, sleep=lambda _: None),
        stacks=("storage", "processing"), artifacts={}, host_env={},
    )  # fmt: skip
    assert outputs["LakeBucketArn"] == lake and outputs["LakeKeyArn"] == key
    assert outputs["ServerlessApplicationArn"].startswith(
        f"arn:aws:emr-serverless:eu-west-1:{ACCOUNT}:/applications/"
    )
    assert any("no such stack yet" in line for line in said)


def test_planned_names_are_the_ones_the_templates_and_settings_build() -> None:
    from orchestration.settings import resource_names

    planned = environments.planned_outputs(DEV, "storage", ACCOUNT, "eu-west-1")
    bucket, _ = resource_names("dev", ACCOUNT)
    assert planned["LakeBucketArn"] == f"arn:aws:s3:::{bucket}"
    storage = load("storage")["Resources"]
    names = {"Env": "dev", "AWS::AccountId": ACCOUNT, **PSEUDO}
    for output, logical_id in [("LakeBucketArn", "LakeBucket"), ("MwaaBucketArn", "MwaaBucket"),
                               ("AccessLogBucketArn", "AccessLogBucket")]:  # fmt: skip
        built = resolve(storage[logical_id]["Properties"]["BucketName"], names)
        assert planned[output] == f"arn:aws:s3:::{built}"
    queue = resolve(storage["LandingEventsQueue"]["Properties"]["QueueName"], names)
    assert planned["LandingQueueArn"].endswith(f":{ACCOUNT}:{queue}")
    alias = resolve(storage["LakeKeyAlias"]["Properties"]["AliasName"], names)
    assert planned["LakeKeyArn"].endswith(f":{ACCOUNT}:{alias}")


def test_optional_parameters_are_exactly_the_ones_templates_default_to_empty() -> None:
    defaults_empty = {
        key
        for stack in environments.STACKS
        for key, declared in load(stack).get("Parameters", {}).items()
        if declared.get("Default") == ""
    }
    assert defaults_empty == environments.OPTIONAL_PARAMETERS


def test_a_stack_missing_an_earlier_output_is_not_sent_to_cloudformation(cfn: Any) -> None:
    client, stub = cfn
    # A storage stack without the outputs processing needs (e.g. made by an older template).
    existing(stub, "shoplogs-dev-storage", outputs={"LakeBucketName": "lake"})
    expect_change_set(stub, "shoplogs-dev-storage", "UPDATE")
    stub.add_response("describe_change_set", change_set("FAILED", NO_CHANGES))
    stub.add_response("delete_change_set", {}, {"StackName": ANY, "ChangeSetName": ANY})
    with pytest.raises(deploy.DeployError) as stopped:
        deploy.deploy(
            DEV, deploy.Clients(cfn=client, s3=None),
            deploy.Options(say=lambda _: None, sleep=lambda _: None),
            stacks=("storage", "processing"), artifacts={}, host_env={},
        )  # fmt: skip
    message = str(stopped.value)
    assert "shoplogs-dev-processing: parameter(s) LakeBucketArn, LakeKeyArn would be empty" in (
        message
    )
    assert "left as they are: shoplogs-dev-storage" in message
    # No describe_stacks or create_change_set of processing was stubbed: none was made.


def test_a_failed_first_create_names_the_one_stack_to_delete_and_leaves_the_others(
    cfn: Any,
) -> None:
    client, stub = cfn
    existing(stub, "shoplogs-dev-storage", outputs={"AccessLogBucketArn": "arn:aws:s3:::logs"})
    expect_change_set(stub, "shoplogs-dev-storage", "UPDATE")
    stub.add_response("describe_change_set", change_set("FAILED", NO_CHANGES))
    stub.add_response("delete_change_set", {}, {"StackName": ANY, "ChangeSetName": ANY})
    name = "shoplogs-dev-network"
    missing(stub, name)
    expect_change_set(stub, name, "CREATE")
    stub.add_response(
        "describe_change_set", change_set("CREATE_COMPLETE", changes=[add_change("Vpc")])
    )
    stub.add_response("execute_change_set", {}, {"StackName": name, "ChangeSetName": ANY})
    existing(stub, name, "ROLLBACK_IN_PROGRESS")
    existing(stub, name, "ROLLBACK_COMPLETE")
    event = {
        "StackId": "s", "EventId": "e", "StackName": name, "Timestamp": CREATED,
        "LogicalResourceId": "NatGateway", "ResourceStatus": "CREATE_FAILED",
        "ResourceStatusReason": "The maximum number of addresses has been reached.",
    }  # fmt: skip
    stub.add_response("describe_stack_events", {"StackEvents": [event]}, {"StackName": name})
    with pytest.raises(deploy.DeployError) as failure:
        deploy.deploy(
            DEV, deploy.Clients(cfn=client, s3=None),
            deploy.Options(say=lambda _: None, sleep=lambda _: None),
            stacks=("storage", "network"), artifacts={}, host_env={},
        )  # fmt: skip
    message = str(failure.value)
    assert "maximum number of addresses" in message
    assert "`make destroy ENV=dev STACK=network`" in message
    assert f"aws cloudformation delete-stack --stack-name {name}" in message
    assert "left as they are: shoplogs-dev-storage" in message
    assert "rolled the stack back to what it was" not in message  # there was nothing before
    # No delete_stack was stubbed: the failure deleted nothing, storage included.


def test_destroy_of_one_stack_deletes_only_that_stack(cfn: Any, s3: Any) -> None:
    (cfn_client, cfn_stub), (s3_client, _) = cfn, s3
    name = "shoplogs-dev-network"
    existing(cfn_stub, name, "ROLLBACK_COMPLETE", Tags=OURS)
    cfn_stub.add_response("list_stack_resources", resources(), {"StackName": name})
    cfn_stub.add_response("delete_stack", {}, {"StackName": name})
    missing(cfn_stub, name)
    deleted = deploy.destroy(
        DEV, deploy.Clients(cfn_client, s3_client),
        deploy.Options(say=lambda _: None, sleep=lambda _: None), stacks=["network"],
    )  # fmt: skip
    assert deleted == [name]  # and no other stack was described, let alone deleted


def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    found_elsewhere = (
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE",
    )  # fmt: skip
    for variable in found_elsewhere:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role either
    monkeypatch.setattr(deploy, "lint", lambda: None)  # cfn-lint is not what this is about


def test_without_credentials_make_deploy_says_what_is_missing_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_aws_credentials(monkeypatch, tmp_path)
    assert deploy.main(["deploy", "--env", "dev", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("deploy FAILED: no usable AWS credentials")
    assert "aws configure" in err
    assert "AWS_ENDPOINT_URL=http://127.0.0.1:5000" in err and "moto_server" in err
    assert "Traceback" not in err and len(err.splitlines()) < 10


def test_an_unreachable_local_endpoint_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from local.servers import free_port

    no_aws_credentials(monkeypatch, tmp_path)
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    assert deploy.main(["destroy", "--env", "dev"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"destroy FAILED: cannot reach AWS_ENDPOINT_URL={endpoint}")
