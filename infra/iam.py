"""The IAM policies of the CloudFormation templates, as AWS would hold them once deployed.

``role_policies(place)`` reads infra/cloudformation/*.yaml, resolves the intrinsics the
policies use (``!Sub``, ``!Ref`` of parameters, pseudo parameters and resources, ``!GetAtt``
of known resources, ``!If``, ``!Join``, ``!Select``/``!Split``) for one environment, account,
region and bucket, and returns each role's inline and managed policy documents. AWS managed
policies are not in the templates: ``AWS_MANAGED`` holds small stand-ins (only what this
project's code relies on), so a local run can attach *something*; they are not AWS's text.

``allows(documents, action, resource)`` is the paper check: Allow/Deny statements with
action and resource wildcards, conditions ignored (as moto's enforcement ignores them).
The local stack (local/iam.py) creates these roles in moto and runs the pipeline with them.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

TEMPLATES = Path(__file__).resolve().parent / "cloudformation"
STACKS = ("storage", "network", "ingestion", "processing", "orchestration", "warehouses")

# Stand-ins for the AWS managed policies the roles attach (what the code needs of them).
AWS_MANAGED: dict[str, dict[str, Any]] = {
    "AmazonSSMManagedInstanceCore": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["ssm:UpdateInstanceInformation", "ssmmessages:*", "ec2messages:*"],
                "Resource": "*",
            }
        ],
    },
    "AmazonEMRServicePolicy_v2": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["ec2:*"], "Resource": "*"}],
    },
}


@dataclass(frozen=True)
class Place:
    """Where the stacks are deployed: what the templates' parameters resolve to."""

    env: str
    account_id: str
    region: str
    lake_bucket: str
    serverless_application_id: str = "00shoplogsapp"
    partition: str = "aws"

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        where = f"{self.region}:{self.account_id}" if region else f":{self.account_id}"
        return f"arn:{self.partition}:{service}:{where}:{resource}"

    def bucket_arn(self, bucket: str) -> str:
        return f"arn:{self.partition}:s3:::{bucket}"

    def parameters(self) -> dict[str, Any]:
        """The template parameters the policies read (infra/environments.py passes them in
        AWS from the storage and processing stacks' outputs)."""
        return {
            "AWS::AccountId": self.account_id,
            "AWS::Region": self.region,
            "AWS::Partition": self.partition,
            "AWS::NoValue": None,
            "Env": self.env,
            "LakeBucketArn": self.bucket_arn(self.lake_bucket),
            "LakeKeyArn": self.arn("kms", "key/00000000-0000-0000-0000-00000000lake"),
            "MwaaBucketArn": self.bucket_arn(f"shoplogs-{self.env}-mwaa-{self.account_id}"),
            "LandingQueueArn": self.arn("sqs", f"shoplogs-{self.env}-landing-events"),
            "EmrServerlessApplicationArn": self.arn(
                "emr-serverless", f"/applications/{self.serverless_application_id}"
            ),
            "RedshiftWorkgroupArn": self.arn(
                "redshift-serverless", f"workgroup/shoplogs-{self.env}"
            ),
        }


# --- reading the templates ------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form intrinsics (``!Sub`` -> ``{"Fn::Sub": ...}``)."""


def _intrinsic(loader: _Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _intrinsic)


def load(stack: str) -> dict[str, Any]:
    # Safe: _Loader is a SafeLoader that also reads CloudFormation's short-form intrinsics.
    loaded: dict[str, Any] = yaml.load((TEMPLATES / f"{stack}.yaml").read_text(), _Loader)
    return loaded


# --- resolving intrinsics ---------------------------------------------------------------------

_ARN_OF: dict[str, tuple[str, str, bool, str]] = {
    # resource type: (service, name property, regional, resource part with {name})
    "AWS::IAM::Role": ("iam", "RoleName", False, "role/{name}"),
    "AWS::IAM::ManagedPolicy": ("iam", "ManagedPolicyName", False, "policy/{name}"),
    "AWS::KinesisFirehose::DeliveryStream": ("firehose", "DeliveryStreamName", True,
                                             "deliverystream/{name}"),
    "AWS::Logs::LogGroup": ("logs", "LogGroupName", True, "log-group:{name}:*"),
    "AWS::SQS::Queue": ("sqs", "QueueName", True, "{name}"),
}  # fmt: skip


@dataclass(frozen=True)
class _Scope:
    template: dict[str, Any]
    place: Place
    names: dict[str, Any]

    def resource_arn(self, logical_id: str) -> str:
        declared = self.template["Resources"][logical_id]
        kind = declared["Type"]
        if kind == "AWS::S3::Bucket":
            return self.place.bucket_arn(self.resolve(declared["Properties"]["BucketName"]))
        service, prop, regional, part = _ARN_OF[kind]
        name = self.resolve(declared["Properties"][prop])
        return self.place.arn(service, part.format(name=name), region=regional)

    def ref(self, name: str) -> Any:
        if name in self.names:
            return self.names[name]
        declared = self.template["Resources"][name]
        if declared["Type"] == "AWS::IAM::ManagedPolicy":
            return self.resource_arn(name)
        prop = {"AWS::IAM::Role": "RoleName", "AWS::S3::Bucket": "BucketName"}[declared["Type"]]
        return self.resolve(declared["Properties"][prop])

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if attribute != "Arn":
            raise KeyError(f"!GetAtt {logical_id}.{attribute}: only .Arn is modelled here")
        return self.resource_arn(logical_id)

    def sub(self, text: str, local: dict[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match[1]
            if name in local:
                return str(local[name])
            if "." in name and name.split(".", 1)[0] in self.template.get("Resources", {}):
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resolve(self, value: Any) -> Any:  # noqa: C901 - one branch per intrinsic
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not None]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Fn::", "Ref", "Condition")):
            return {
                k: r for k, r in ((k, self.resolve(v)) for k, v in value.items()) if r is not None
            }
        [(fn, arg)] = value.items()
        if fn == "Ref":
            return self.ref(arg)
        if fn == "Condition":
            return self.condition(arg)
        if fn == "Fn::GetAtt":
            return self.get_att(*arg)
        if fn == "Fn::Sub":
            text, local = (arg, {}) if isinstance(arg, str) else arg
            return self.sub(text, {k: self.resolve(v) for k, v in local.items()})
        if fn == "Fn::If":
            name, then, otherwise = arg
            return self.resolve(then if self.condition(name) else otherwise)
        if fn == "Fn::Join":
            return str(arg[0]).join(str(v) for v in self.resolve(arg[1]))
        if fn == "Fn::Select":
            return self.resolve(arg[1])[int(arg[0])]
        if fn == "Fn::Split":
            return str(self.resolve(arg[1])).split(arg[0])
        if fn == "Fn::Equals":
            return self.resolve(arg[0]) == self.resolve(arg[1])
        if fn == "Fn::Not":
            return not self.resolve(arg[0])
        if fn == "Fn::ImportValue":
            return self.names[f"Import:{self.resolve(arg)}"]
        raise KeyError(f"{fn}: not an intrinsic the policies use; model it in infra/iam.py")


# --- the roles ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    """A role as deployed: its name, trust policy, and every policy document it holds."""

    stack: str
    logical_id: str
    name: str
    trust: dict[str, Any]
    inline: dict[str, dict[str, Any]]  # policy name -> document
    managed: dict[str, dict[str, Any]]  # policy ARN -> document

    @property
    def documents(self) -> list[dict[str, Any]]:
        return [*self.inline.values(), *self.managed.values()]


def _managed(scope: _Scope, arns: list[str]) -> dict[str, dict[str, Any]]:
    """The documents of the managed policies a role attaches: the template's own, or the
    stand-in of an AWS managed one."""
    owned = {
        scope.resource_arn(logical_id): scope.resolve(declared["Properties"]["PolicyDocument"])
        for logical_id, declared in scope.template["Resources"].items()
        if declared["Type"] == "AWS::IAM::ManagedPolicy"
    }
    return {arn: owned.get(arn) or AWS_MANAGED[arn.rsplit("/", 1)[-1]] for arn in arns}


def stack_roles(stack: str, place: Place) -> dict[str, Role]:
    template = load(stack)
    defaults = {
        k: v["Default"] for k, v in template.get("Parameters", {}).items() if "Default" in v
    }
    scope = _Scope(template, place, {**defaults, **place.parameters()})
    roles = {}
    for logical_id, declared in template.get("Resources", {}).items():
        if declared["Type"] != "AWS::IAM::Role":
            continue
        props = scope.resolve(declared["Properties"])
        roles[props["RoleName"]] = Role(
            stack=stack,
            logical_id=logical_id,
            name=props["RoleName"],
            trust=props["AssumeRolePolicyDocument"],
            inline={p["PolicyName"]: p["PolicyDocument"] for p in props.get("Policies", [])},
            managed=_managed(scope, props.get("ManagedPolicyArns", [])),
        )
    return roles


def role_policies(place: Place) -> dict[str, Role]:
    """Every role of every stack, by role name (``shoplogs-<env>-mwaa``, ...)."""
    return {name: role for stack in STACKS for name, role in stack_roles(stack, place).items()}


# --- the paper check ------------------------------------------------------------------------------


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _matches(patterns: list[str], value: str) -> bool:
    # IAM wildcards: * and ?; actions compare case-insensitively.
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _statement_applies(statement: dict[str, Any], action: str, resource: str) -> bool:
    actions = [a.lower() for a in _listed(statement.get("Action"))]
    not_actions = [a.lower() for a in _listed(statement.get("NotAction"))]
    if actions and not _matches(actions, action.lower()):
        return False
    if not_actions and _matches(not_actions, action.lower()):
        return False
    if "Resource" in statement:
        return _matches(_listed(statement["Resource"]), resource)
    return not _matches(_listed(statement.get("NotResource")), resource)


def allows(documents: list[dict[str, Any]], action: str, resource: str) -> bool:
    """Whether the documents allow ``action`` on ``resource`` (no explicit deny, one allow).
    Conditions are not evaluated."""
    statements = [s for d in documents for s in _listed_statements(d)]
    applying = [s for s in statements if _statement_applies(s, action, resource)]
    if any(s["Effect"] == "Deny" for s in applying):
        return False
    return any(s["Effect"] == "Allow" for s in applying)


def _listed_statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statement = document.get("Statement", [])
    return [statement] if isinstance(statement, dict) else list(statement)
