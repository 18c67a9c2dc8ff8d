"""Every name the templates build agrees with what orchestration/settings.py expects, and
the parameters infra/environments.py passes fit each template exactly."""

from __future__ import annotations

import json

import pytest

from infra import environments, mwaa_bundle
from lake import layout
from orchestration.runners import emr
from orchestration.settings import LOCAL_ACCOUNT_ID, REPO_ROOT, Settings, load_settings
from tests.infra.templates import PSEUDO, load, resolve, resource


@pytest.fixture(params=sorted(environments.ENVIRONMENTS))
def env_settings(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for variable in ("LAKE_BUCKET", "EMR_SERVICE_ROLE", "EMR_INSTANCE_PROFILE",
                     "EMR_SERVERLESS_ROLE_ARN", "AWS_ACCOUNT_ID"):  # fmt: skip
        monkeypatch.delenv(variable, raising=False)
    return load_settings(request.param)


def names(settings: Settings) -> dict[str, str]:
    return {**PSEUDO, "AWS::AccountId": settings.account_id, "Env": settings.env}


def name_of(settings: Settings, stack: str, logical_id: str, prop: str) -> str:
    return str(resolve(resource(load(stack), logical_id)[prop], names(settings)))


def role_arn(settings: Settings, role: str) -> str:
    return f"arn:aws:iam::{settings.account_id}:role/{role}"


def test_storage_names(env_settings: Settings) -> None:
    assert env_settings.account_id == LOCAL_ACCOUNT_ID
    assert name_of(env_settings, "storage", "LakeBucket", "BucketName") == env_settings.lake_bucket
    queue = name_of(env_settings, "storage", "LandingEventsQueue", "QueueName")
    assert queue == env_settings.landing_queue_name


def test_the_landing_notification_covers_what_firehose_writes(env_settings: Settings) -> None:
    bucket = resource(load("storage"), "LakeBucket")
    [notification] = bucket["NotificationConfiguration"]["QueueConfigurations"]
    [rule] = notification["Filter"]["S3Key"]["Rules"]
    assert (rule["Name"], rule["Value"]) == ("prefix", "landing/")
    assert notification["Queue"] == {"Fn::GetAtt": ["LandingEventsQueue", "Arn"]}


def test_lifecycle_rules_cover_the_zones_and_the_emr_log_location(env_settings: Settings) -> None:
    rules = {
        r["Prefix"]: r
        for r in resource(load("storage"), "LakeBucket")["LifecycleConfiguration"]["Rules"]
        if "Prefix" in r
    }
    assert "ExpirationInDays" in rules["landing/"] and "ExpirationInDays" in rules["quarantine/"]
    assert rules["processed/"]["Transitions"][0]["StorageClass"] == "STANDARD_IA"
    assert "ExpirationInDays" not in rules["processed/"]
    log_prefix = emr.log_uri(env_settings).removeprefix(f"s3://{env_settings.lake_bucket}/")
    assert log_prefix in rules


def test_delivery_streams_match_the_settings(env_settings: Settings) -> None:
    template = load("ingestion")
    streams = {
        str(resolve(body["Properties"]["DeliveryStreamName"], names(env_settings))): body
        for body in template["Resources"].values()
        if body["Type"] == "AWS::KinesisFirehose::DeliveryStream"
    }
    assert sorted(streams) == sorted(s.delivery_stream for s in env_settings.streams)
    for stream in env_settings.streams:
        destination = streams[stream.delivery_stream]["Properties"]
        config = destination["ExtendedS3DestinationConfiguration"]
        assert config["Prefix"] == f"landing/{stream.name}/"
        assert config["ErrorOutputPrefix"].startswith("quarantine/")
        assert config["CompressionFormat"] == "GZIP"
    firehose_role = name_of(env_settings, "ingestion", "FirehoseRole", "RoleName")
    assert role_arn(env_settings, firehose_role) == env_settings.firehose_role_arn


def test_the_install_document_configures_the_same_streams_and_files(env_settings: Settings) -> None:
    document = resource(load("ingestion"), "InstallShipperDocument")["Content"]
    [step] = document["mainSteps"]
    [config_command] = [
        c
        for c in step["inputs"]["runCommand"]
        if isinstance(c, dict) and "cat > /etc/shoplogs/agent.json" in str(c)
    ]
    text = str(resolve(config_command, names(env_settings)))
    config = json.loads(text.split("<<'JSON'\n", 1)[1].split("\nJSON", 1)[0])
    assert [f["deliveryStream"] for f in config["flows"]] == [
        s.delivery_stream for s in env_settings.streams
    ]
    assert config["quarantine.bucket"] == env_settings.lake_bucket
    shipped = json.loads((REPO_ROOT / "agent" / "deploy" / "agent.json").read_text())
    assert [f["filePattern"] for f in config["flows"]] == [
        f["filePattern"] for f in shipped["flows"]
    ]
    # hostId is left to its default, the host's name; every other setting is the example's.
    assert set(config) == set(shipped) - {"hostId"}


def test_emr_names_match_the_settings(env_settings: Settings) -> None:
    assert env_settings.emr is not None
    expected = env_settings.emr
    assert (
        name_of(env_settings, "processing", "EmrServiceRole", "RoleName") == expected.service_role
    )
    profile = name_of(env_settings, "processing", "EmrEc2InstanceProfile", "InstanceProfileName")
    assert profile == expected.instance_profile
    security = name_of(env_settings, "processing", "SecurityConfiguration", "Name")
    assert security == expected.security_configuration
    serverless = name_of(env_settings, "processing", "EmrServerlessRole", "RoleName")
    assert role_arn(env_settings, serverless) == expected.serverless_execution_role_arn
    release = environments.get(env_settings.env).emr_release_label
    assert release == expected.release_label


def test_glue_database_matches_the_settings(env_settings: Settings) -> None:
    database = resource(load("warehouses"), "GlueDatabase")["DatabaseInput"]
    assert resolve(database["Name"], names(env_settings)) == env_settings.glue_database


def test_mwaa_reads_connections_where_the_bundle_says(env_settings: Settings) -> None:
    options = dict(resource(load("orchestration"), "Environment")["AirflowConfigurationOptions"])
    resolved = {k: str(resolve(v, names(env_settings))) for k, v in options.items()}
    expected = mwaa_bundle.airflow_configuration(env_settings.env, env_settings.lake_bucket)
    for json_option in ("secrets.backend_kwargs", "cosmos.dbt_docs_projects"):
        assert json.loads(resolved.pop(json_option)) == json.loads(expected.pop(json_option))
    assert resolved == expected


def test_the_ui_docs_view_reads_the_prefix_the_pipeline_publishes_to(
    env_settings: Settings,
) -> None:
    options = dict(resource(load("orchestration"), "Environment")["AirflowConfigurationOptions"])
    projects = json.loads(str(resolve(options["cosmos.dbt_docs_projects"], names(env_settings))))
    assert projects == {
        "shoplogs": {
            "dir": f"s3://{env_settings.lake_bucket}/{layout.DOCS}",
            "conn_id": "aws_default",
            "name": "dbt docs: shop analytics",
        }
    }
    # and MWAA's role may write and read it
    role = resource(load("orchestration"), "ExecutionRole")
    statements = [
        statement
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    granted = [
        str(resolve(arn, {**names(env_settings), "LakeBucketArn": "arn:aws:s3:::lake"}))
        for statement in statements
        if {"s3:GetObject", "s3:PutObject"} <= set(statement.get("Action", []))
        for arn in statement["Resource"]
    ]
    assert f"arn:aws:s3:::lake/{layout.DOCS}*" in granted
    assert f"arn:aws:s3:::lake/{layout.REPORTS}*" in granted  # the summary task publishes it


@pytest.mark.parametrize("stack", environments.STACKS)
@pytest.mark.parametrize("env_name", sorted(environments.ENVIRONMENTS))
def test_environment_parameters_fit_each_template(env_name: str, stack: str) -> None:
    declared = load(stack)["Parameters"]
    given = environments.parameters(environments.get(env_name), stack, {}, host_env={})
    assert sorted(given) == sorted(declared)
    for key, spec in declared.items():
        if "AllowedValues" in spec:
            assert given[key] in spec["AllowedValues"], (key, given[key])


def test_an_unknown_environment_or_stack_is_named() -> None:
    with pytest.raises(KeyError, match=r"'qa'.*dev, prod"):
        environments.get("qa")
    with pytest.raises(KeyError, match="'db'"):
        environments.parameters(environments.get("dev"), "db", {}, host_env={})
