"""EMR on AWS's own terms: the cluster request, the network and the roles against the conditions
AWS documents for AmazonEMRServicePolicy_v2 and for encrypting the nodes' disks with the
lake's key (``aws_documented/emr_policies.json``, each part with its source page).

moto checks neither tags in conditions nor KMS grants, so a cluster that AWS refuses to launch
would start locally; these checks are what stands between the templates and that failure.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from infra.deploy import STARTUP_EXPORTS
from orchestration.runners import emr
from orchestration.settings import load_settings
from tests.infra.templates import load

DOCUMENTED = json.loads(
    (Path(__file__).parent / "aws_documented" / "emr_policies.json").read_text()
)
SERVICE_POLICY = DOCUMENTED["AmazonEMRServicePolicy_v2"]["Statement"]
SERVICE_POLICY_ARN = "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2"
# The KMS actions the documented wildcards stand for (AWS KMS's service authorization
# reference), so "kms:ReEncrypt*" is met only when both re-encrypt actions are allowed.
KMS_ACTIONS = [
    "kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey",
    "kms:GenerateDataKeyPair", "kms:GenerateDataKeyPairWithoutPlaintext",
    "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo",
]  # fmt: skip
# RunJobFlow's Instances fields that name security groups EMR would launch into.
SECURITY_GROUP_FIELDS = (
    "EmrManagedMasterSecurityGroup", "EmrManagedSlaveSecurityGroup",
    "ServiceAccessSecurityGroup", "AdditionalMasterSecurityGroups",
    "AdditionalSlaveSecurityGroups",
)  # fmt: skip


def tag_conditions(kind: str) -> Iterator[tuple[str, str, str, list[str]]]:
    """(sid, tag key, value, resource ARNs) of each statement conditioned on a tag of ``kind``
    (``aws:RequestTag`` or ``aws:ResourceTag``)."""
    for statement in SERVICE_POLICY:
        resources = statement["Resource"]
        for key, value in statement.get("Condition", {}).get("StringEquals", {}).items():
            if key.startswith(f"{kind}/"):
                arns = [resources] if isinstance(resources, str) else resources
                yield statement["Sid"], key.split("/", 1)[1], value, arns


def tags_of(properties: dict[str, Any]) -> dict[str, Any]:
    return {tag["Key"]: tag["Value"] for tag in properties.get("Tags", [])}


def cluster_request() -> dict[str, Any]:
    artifact = emr.Artifact("v1", "s3://b/job.py", "s3://b/preprocess.zip", "s3://b/boot.sh")
    return emr.job_flow_config(load_settings("dev"), "shoplogs_pipeline/2026-11-03", artifact)


def test_the_cluster_request_carries_every_tag_the_policy_asks_of_a_request() -> None:
    request_tags = {tag["Key"]: tag["Value"] for tag in cluster_request()["Tags"]}
    conditions = list(tag_conditions("aws:RequestTag"))
    assert conditions  # the documented statements were read
    for sid, key, value, _ in conditions:
        # EMR copies the cluster's tags onto the instances, volumes, launch templates,
        # network interfaces and security groups it creates (its v2 policy documentation).
        assert request_tags.get(key) == value, f"{sid} needs the request tag {key}={value}"


def emr_network() -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The network resources EMR uses, by ARN resource type: the subnets the settings hand
    to RunJobFlow (the stack's PrivateSubnetIds, exported as EMR_SUBNET_IDS), their VPC, and
    any security group the request names."""
    network = load("network")
    resources = network["Resources"]
    output = STARTUP_EXPORTS["EMR_SUBNET_IDS"]
    _, refs = network["Outputs"][output]["Value"]["Fn::Join"]
    subnets = [ref["Ref"] for ref in refs]
    vpcs = sorted({resources[s]["Properties"]["VpcId"]["Ref"] for s in subnets})
    instances = cluster_request()["Instances"]
    named = [instances[field] for field in SECURITY_GROUP_FIELDS if field in instances]
    groups = [g for g in named if isinstance(g, str)] + [g for n in named if isinstance(n, list)
                                                         for g in n]  # fmt: skip
    return {
        "subnet": [(s, resources[s]["Properties"]) for s in subnets],
        "vpc": [(v, resources[v]["Properties"]) for v in vpcs],
        # None named today: EMR creates its default groups in the VPC (so the VPC's tag).
        "security-group": [(g, resources[g]["Properties"]) for g in groups],
    }


def test_the_subnets_vpc_and_security_groups_emr_uses_carry_the_policys_tag() -> None:
    network = emr_network()
    assert network["subnet"] and network["vpc"]
    conditions = list(tag_conditions("aws:ResourceTag"))
    checked = set()
    for sid, key, value, arns in conditions:
        for arn in arns:
            # ManageSecurityGroups names "*", but its actions only act on security groups.
            kind = "security-group" if arn == "*" else arn.split(":")[5].split("/")[0]
            for logical_id, properties in network.get(kind, []):
                checked.add(kind)
                assert tags_of(properties).get(key) == value, (
                    f"{sid}: {kind} {logical_id} (network.yaml) needs the tag {key}={value}"
                )
    assert {"subnet", "vpc"} <= checked


# --- KMS: what the roles may do with the lake key ---------------------------------------------


def role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Every Allow statement of ``role``: its inline policies and the managed policies it
    attaches (this template's own, and the documented service policy)."""
    resources = template["Resources"]
    properties = resources[role]["Properties"]
    statements = [
        s for p in properties.get("Policies", []) for s in p["PolicyDocument"]["Statement"]
    ]
    for arn in properties.get("ManagedPolicyArns", []):
        if isinstance(arn, dict) and "Ref" in arn:
            statements += resources[arn["Ref"]]["Properties"]["PolicyDocument"]["Statement"]
        elif arn == {"Fn::Sub": SERVICE_POLICY_ARN}:
            statements += SERVICE_POLICY
    return [s for s in statements if s["Effect"] == "Allow"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allows(statement: dict[str, Any], action: str, resource: Any, met: dict[str, Any]) -> bool:
    """Whether ``statement`` allows ``action`` on ``resource`` when the only conditions that
    hold are ``met`` (operator -> {key: value})."""
    actions = [a.lower() for a in as_list(statement["Action"])]
    if not any(fnmatch.fnmatchcase(action.lower(), pattern) for pattern in actions):
        return False
    if not any(r == resource or r == "*" for r in as_list(statement["Resource"])):
        return False
    for operator, pairs in statement.get("Condition", {}).items():
        if any(met.get(operator, {}).get(key) != value for key, value in pairs.items()):
            return False
    return True


def concrete(documented: list[str]) -> list[str]:
    return [a for pattern in documented for a in KMS_ACTIONS if fnmatch.fnmatchcase(a, pattern)]


def missing_kms(statements: list[dict[str, Any]], documented: list[str],
                met: dict[str, Any] | None = None) -> list[str]:  # fmt: skip
    key = {"Ref": "LakeKeyArn"}
    return [
        action
        for action in concrete(documented)
        if not any(allows(s, action, key, met or {}) for s in statements)
    ]


def test_the_key_policy_lets_iam_policies_grant_the_lake_key() -> None:
    # The roles' own statements are enough only because the key policy delegates to IAM.
    statements = load("storage")["Resources"]["LakeKey"]["Properties"]["KeyPolicy"]["Statement"]
    root = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    assert any(
        s["Effect"] == "Allow" and s["Principal"] == {"AWS": root} and s["Action"] == "kms:*"
        and "Condition" not in s
        for s in statements
    )  # fmt: skip


def test_the_emr_service_role_may_launch_volumes_encrypted_with_the_lake_key() -> None:
    processing = load("processing")
    encryption = processing["Resources"]["SecurityConfiguration"]["Properties"]
    local_disks = encryption["SecurityConfiguration"]["EncryptionConfiguration"][
        "AtRestEncryptionConfiguration"]["LocalDiskEncryptionConfiguration"]  # fmt: skip
    assert local_disks["EnableEbsEncryption"] is True
    assert local_disks["AwsKmsKey"] == {"Ref": "LakeKeyArn"}
    ebs = DOCUMENTED["ebs_encryption"]
    # EC2 creates the volume's grant for an AWS resource, so that condition holds; no other.
    assert missing_kms(role_statements(processing, "EmrServiceRole"), ebs["actions"],
                       ebs["CreateGrant_condition"]) == []  # fmt: skip


def test_the_node_role_is_a_key_user_of_the_lake_key_for_local_disks() -> None:
    processing = load("processing")
    documented = DOCUMENTED["emr_local_disk_encryption"]["actions"]
    assert missing_kms(role_statements(processing, "EmrEc2Role"), documented) == []


def test_the_service_role_may_pass_the_node_role_the_managed_policy_does_not_cover() -> None:
    processing = load("processing")
    node_role = processing["Resources"]["EmrEc2Role"]["Properties"]["RoleName"]
    [managed] = [s for s in SERVICE_POLICY if s["Sid"] == "PassRoleForEC2"]
    name = node_role["Fn::Sub"].replace("${Env}", "dev")
    assert not fnmatch.fnmatchcase(f"arn:aws:iam::1:role/{name}", managed["Resource"])
    met = {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    node_arn = {"Fn::GetAtt": ["EmrEc2Role", "Arn"]}
    assert any(
        allows(s, "iam:PassRole", node_arn, met)
        for s in role_statements(processing, "EmrServiceRole")
    )
