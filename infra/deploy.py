"""``make deploy`` / ``make destroy``: stand an environment up in AWS, or take it down.

    python -m infra.deploy deploy --env dev [--dry-run]
    python -m infra.deploy destroy --env dev [--stack <stack>]

Deploy lints the templates, then creates or updates each stack (``environments.STACKS``,
in order) through a CloudFormation change set, feeding each stack's outputs to the next;
before the orchestration stack it builds and uploads the artifacts (``ARTIFACTS``), so the
MWAA environment starts from the bundle just uploaded. A dry run prints every change set
and deletes it unexecuted. CloudFormation itself is the only state: nothing is written
locally, and a deploy run twice changes nothing the second time.

A change set that fails (other than "no changes") is deleted and reported with its reason;
the stack is not touched. A stack update that fails is rolled back by CloudFormation to
what it was, and the error carries the failed resources' reasons. A failed first create
leaves that one stack ROLLBACK_COMPLETE: the error says how to delete just it
(``destroy --stack``); the stacks deployed before it stay. In a dry run into an empty
account the later stacks get the names the earlier ones will have (``planned_outputs``).

Destroy deletes the stacks in reverse order after emptying the buckets they own, and only
if every stack and bucket carries this project's tags for the environment: otherwise it
stops before deleting anything and names what it refused.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError

from infra import environments
from infra.environments import OPTIONAL_PARAMETERS, Environment
from lake import layout
from orchestration.runners.emr import TAG_ENV, TAG_PROJECT
from orchestration.settings import PROJECT, REPO_ROOT

TEMPLATES = Path(__file__).resolve().parent / "cloudformation"
DIST = REPO_ROOT / "dist"
CAPABILITIES = ["CAPABILITY_NAMED_IAM"]
# How CloudFormation says a change set would change nothing (it marks it FAILED).
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
POLL_SECONDS = 15.0
# MWAA takes 20-40 minutes to create and Redshift Serverless a few; four hours is a hang.
MAX_POLLS = int(4 * 60 * 60 / POLL_SECONDS)
DONE_STATES = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
# Stacks whose outputs only MWAA's startup script needs (settings.py reads them).
STARTUP_EXPORTS = {
    "EMR_SERVERLESS_APPLICATION_ID": "ServerlessApplicationId",
    "EMR_SUBNET_IDS": "PrivateSubnetIds",
    "REDSHIFT_COPY_ROLE_ARN": "RedshiftCopyRoleArn",
}
# The shipper's own package; its wheel and systemd unit go to artifacts/agent/.
AGENT_PACKAGE = "shoplogs-agent"
AGENT_UNIT = REPO_ROOT / "agent" / "deploy" / "shoplogs-shipper.service"

Say = Callable[[str], None]
Sleep = Callable[[float], None]


class DeployError(RuntimeError):
    """A deploy or destroy step that stopped, with what happened and what to do."""


@dataclass(frozen=True)
class Change:
    action: str  # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str  # True | False | Conditional | "" (for Add/Remove)

    def __str__(self) -> str:
        replace = f" (replacement: {self.replacement})" if self.replacement else ""
        return f"  {self.action:<7} {self.logical_id} [{self.resource_type}]{replace}"


@dataclass
class Clients:
    """The boto3 clients deploy and destroy use; tests pass stubbed or local ones."""

    cfn: Any
    s3: Any
    # Only a dry run into an account without the stacks asks who the account is.
    sts: Any = None


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    say: Say = print
    sleep: Sleep = time.sleep
    dist: Path = DIST


# --- pure helpers -------------------------------------------------------------------------


def stack_tags(env: Environment) -> list[dict[str, str]]:
    """Stack tags; CloudFormation copies them onto every resource that takes tags."""
    return [{"Key": TAG_PROJECT, "Value": PROJECT}, {"Key": TAG_ENV, "Value": env.name}]


def is_ours(tags: Iterable[Mapping[str, str]], env: Environment) -> bool:
    found = {tag["Key"]: tag["Value"] for tag in tags}
    return found.get(TAG_PROJECT) == PROJECT and found.get(TAG_ENV) == env.name


def change_set_name(template: str, parameters: Mapping[str, str]) -> str:
    """Named by content, not by clock: the same deploy asks for the same change set."""
    digest = hashlib.sha256(template.encode() + json.dumps(parameters, sort_keys=True).encode())
    return f"{PROJECT}-deploy-{digest.hexdigest()[:16]}"


def is_no_change(reason: str) -> bool:
    return any(marker in reason for marker in NO_CHANGES)


def changes(described: Iterable[Mapping[str, Any]]) -> list[Change]:
    result = []
    for entry in described:
        resource = entry.get("ResourceChange", {})
        result.append(
            Change(
                action=resource.get("Action", "?"),
                logical_id=resource.get("LogicalResourceId", "?"),
                resource_type=resource.get("ResourceType", "?"),
                replacement=resource.get("Replacement", ""),
            )
        )
    return result


def stack_outputs(stack: Mapping[str, Any] | None) -> dict[str, str]:
    if not stack:
        return {}
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def startup_exports(outputs: Mapping[str, str]) -> str:
    """Lines appended to MWAA's startup.sh: the stacks' ids that settings.py reads."""
    lines = ["", "# From the CloudFormation stacks' outputs (infra/deploy.py)."]
    for variable, output in STARTUP_EXPORTS.items():
        if outputs.get(output):
            lines.append(f"export {variable}={shlex.quote(outputs[output])}")
    return "\n".join(lines) + "\n"


def template_body(stack: str) -> str:
    return (TEMPLATES / f"{stack}.yaml").read_text()


# --- CloudFormation edges -----------------------------------------------------------------


def describe_stack(cfn: Any, name: str) -> dict[str, Any] | None:
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return stacks[0] if stacks and stacks[0]["StackStatus"] != "DELETE_COMPLETE" else None


def poll(fetch: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool],
         sleep: Sleep, what: str) -> dict[str, Any]:  # fmt: skip
    for _ in range(MAX_POLLS):
        state = fetch()
        if done(state):
            return state
        sleep(POLL_SECONDS)
    raise DeployError(f"gave up waiting for {what}; look at it in the CloudFormation console")


def describe_change_set(cfn: Any, stack: str, name: str) -> dict[str, Any]:
    """The change set with all its changes (the API pages them)."""
    described = cfn.describe_change_set(StackName=stack, ChangeSetName=name)
    all_changes = list(described.get("Changes", []))
    while described.get("NextToken"):
        described = cfn.describe_change_set(
            StackName=stack, ChangeSetName=name, NextToken=described["NextToken"]
        )
        all_changes += described.get("Changes", [])
    return {**described, "Changes": all_changes}


def failure_reasons(cfn: Any, stack: str) -> str:
    events = cfn.describe_stack_events(StackName=stack).get("StackEvents", [])
    reasons = [
        f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
        for e in events
        if e.get("ResourceStatus", "").endswith("FAILED") and e.get("ResourceStatusReason")
    ]
    return "; ".join(reversed(reasons[:10])) or "no failure reason recorded"


def discard(cfn: Any, stack: str, change_set: str, new_stack: bool) -> None:
    """Delete a change set; a stack that only existed to hold it goes too."""
    cfn.delete_change_set(StackName=stack, ChangeSetName=change_set)
    if new_stack:
        cfn.delete_stack(StackName=stack)


def delete_one(name: str) -> str:
    """How to delete just ``name`` (``shoplogs-<env>-<stack>``), leaving the other stacks."""
    _, env, stack = name.split("-", 2)
    return (
        f"delete just this stack with `make destroy ENV={env} STACK={stack}` "
        f"(or `aws cloudformation delete-stack --stack-name {name}`) and deploy again; "
        f"the other stacks stay as they are"
    )


def check_parameters(name: str, parameters: Mapping[str, str]) -> None:
    """An empty parameter that must have a value means an earlier stack's output is missing:
    stop here, naming it, rather than let CloudFormation fail on it (``!Select`` of "")."""
    empty = [k for k, v in parameters.items() if v == "" and k not in OPTIONAL_PARAMETERS]
    if empty:
        raise DeployError(
            f"{name}: parameter(s) {', '.join(empty)} would be empty: they come from the outputs "
            f"of the stacks before it ({', '.join(environments.STACKS)}, deployed in that "
            f"order), and one of those has not been deployed or lacks the output"
        )


def check_deployable(name: str, stack: Mapping[str, Any] | None) -> None:
    status = stack["StackStatus"] if stack else ""
    if status == "ROLLBACK_COMPLETE":
        raise DeployError(
            f"{name} is ROLLBACK_COMPLETE (its first create failed; see its events). "
            f"CloudFormation cannot update it: {delete_one(name)}"
        )
    if status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        raise DeployError(f"{name} is busy ({status}); wait for it to finish and deploy again")


def deploy_stack(
    cfn: Any,
    name: str,
    template: str,
    parameters: Mapping[str, str],
    tags: list[dict[str, str]],
    options: Options,
) -> dict[str, str]:
    """Create or update ``name`` through one change set; returns the stack's outputs."""
    stack = describe_stack(cfn, name)
    check_deployable(name, stack)
    new_stack = stack is None or stack["StackStatus"] == "REVIEW_IN_PROGRESS"
    change_set = change_set_name(template, parameters)
    cfn.create_change_set(
        StackName=name,
        ChangeSetName=change_set,
        ChangeSetType="CREATE" if new_stack else "UPDATE",
        TemplateBody=template,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=CAPABILITIES,
        Tags=tags,
    )
    described = poll(
        lambda: describe_change_set(cfn, name, change_set),
        lambda d: d["Status"] not in ("CREATE_PENDING", "CREATE_IN_PROGRESS"),
        options.sleep,
        f"change set {change_set} of {name}",
    )
    reason = described.get("StatusReason", "")
    found = changes(described["Changes"])
    if (described["Status"] == "FAILED" and is_no_change(reason)) or (
        described["Status"] == "CREATE_COMPLETE" and not found and not new_stack
    ):
        discard(cfn, name, change_set, new_stack=False)
        options.say(f"{name}: no changes")
        return stack_outputs(stack)
    if described["Status"] != "CREATE_COMPLETE":
        discard(cfn, name, change_set, new_stack)
        raise DeployError(
            f"{name}: change set {described['Status']}: {reason or 'no reason given'}. "
            f"Nothing was executed; the stack was left as it was."
        )
    verb = "would change" if options.dry_run else "changes"
    options.say(f"{name}: {verb}\n" + "\n".join(str(c) for c in found))
    if options.dry_run:
        discard(cfn, name, change_set, new_stack)
        return stack_outputs(stack)
    return execute(cfn, name, change_set, options)


def execute(cfn: Any, name: str, change_set: str, options: Options) -> dict[str, str]:
    cfn.execute_change_set(StackName=name, ChangeSetName=change_set)
    final = poll(
        lambda: cfn.describe_stacks(StackName=name)["Stacks"][0],
        lambda s: not s["StackStatus"].endswith("_IN_PROGRESS"),
        options.sleep,
        f"stack {name}",
    )
    status = final["StackStatus"]
    if status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED"):
        raise DeployError(
            f"{name}: its first create failed and ended {status}: "
            f"{failure_reasons(cfn, name)}. A stack in that state cannot be created again "
            f"until it is deleted: {delete_one(name)}."
        )
    if status not in DONE_STATES:
        raise DeployError(
            f"{name} ended {status}: {failure_reasons(cfn, name)}. "
            f"CloudFormation rolled the stack back to what it was before this deploy."
        )
    options.say(f"{name}: {final['StackStatus']}")
    return stack_outputs(final)


# --- artifacts ------------------------------------------------------------------------------


@dataclass
class ArtifactContext:
    env: Environment
    s3: Any
    outputs: Mapping[str, str]
    options: Options


ArtifactStep = Callable[[ArtifactContext], dict[str, str]]


def upload_spark_job(ctx: ArtifactContext) -> dict[str, str]:
    """job.py, preprocess.zip and the EMR bootstrap script under artifacts/spark/<version>/."""
    from orchestration.runners import emr

    artifact = emr.upload_artifact(ctx.s3, ctx.outputs["LakeBucketName"])
    ctx.options.say(f"spark job {artifact.version}: {artifact.job_uri}")
    return {"SparkArtifactVersion": artifact.version}


def build_agent_wheel(dist: Path, run: Callable[..., Any] = subprocess.run) -> Path:
    """Build the shipper's wheel with uv (the package is a member of this repository)."""
    uv = REPO_ROOT / ".tools" / "bin" / "uv"
    dist.mkdir(parents=True, exist_ok=True)
    command = [str(uv if uv.exists() else "uv"), "build", "--package", AGENT_PACKAGE,
               "--wheel", "-o", str(dist)]  # fmt: skip
    run(command, cwd=REPO_ROOT, check=True)
    wheels = sorted(dist.glob("*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        raise DeployError(f"`{' '.join(command)}` wrote no wheel into {dist}")
    return wheels[-1]


def upload_shipper_wheel(ctx: ArtifactContext) -> dict[str, str]:
    """The shipper wheel and its systemd unit under artifacts/agent/, where the hosts'
    install document (SSM) finds them."""
    wheel = build_agent_wheel(ctx.options.dist / "agent")
    bucket = ctx.outputs["LakeBucketName"]
    for path in (wheel, AGENT_UNIT):
        key = layout.AGENT_ARTIFACTS + path.name
        ctx.s3.upload_file(str(path), bucket, key)
        ctx.options.say(f"shipper: {layout.uri(bucket, key)}")
    return {}


def sync_folder(s3: Any, bucket: str, folder: Path, prefix: str) -> int:
    """Make ``s3://bucket/prefix`` hold exactly ``folder``'s files (a removed DAG goes)."""
    wanted = {
        prefix + path.relative_to(folder).as_posix(): path
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    for key, path in wanted.items():
        s3.upload_file(str(path), bucket, key)
    stale = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        stale += [o["Key"] for o in page.get("Contents", []) if o["Key"] not in wanted]
    for start in range(0, len(stale), 1000):
        batch = [{"Key": key} for key in stale[start : start + 1000]]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    return len(wanted)


def upload_mwaa_bundle(ctx: ArtifactContext) -> dict[str, str]:
    """``make mwaa-bundle``'s output into the MWAA bucket; returns the object versions the
    orchestration stack pins, so a new requirements.txt or startup.sh updates MWAA."""
    from infra import mwaa_bundle

    out = mwaa_bundle.build(ctx.options.dist / "mwaa", ctx.env.name, ctx.env.warehouse,
                            ctx.outputs.get("LakeBucketName"), ctx.env.web_format)  # fmt: skip
    startup = out / "startup.sh"
    startup.write_text(startup.read_text() + startup_exports(ctx.outputs))
    bucket = ctx.outputs["MwaaBucketName"]
    count = sync_folder(ctx.s3, bucket, out / "dags", "dags/")
    versions = {}
    for name, output in (("requirements.txt", "RequirementsVersion"),
                         ("startup.sh", "StartupScriptVersion")):  # fmt: skip
        with (out / name).open("rb") as body:
            response = ctx.s3.put_object(Bucket=bucket, Key=name, Body=body)
        versions[output] = response.get("VersionId", "")
    ctx.options.say(f"MWAA bundle: {count} DAG-folder files, requirements.txt, startup.sh")
    return versions


# What `make deploy` uploads, in order. Each step returns outputs later stacks may use.
ARTIFACTS: dict[str, ArtifactStep] = {
    "spark-job": upload_spark_job,
    "shipper-wheel": upload_shipper_wheel,
    "mwaa-bundle": upload_mwaa_bundle,
}


# --- deploy and destroy ---------------------------------------------------------------------


def lint(templates: Iterable[Path] | None = None) -> None:
    """cfn-lint every template first: a template error must not reach CloudFormation."""
    paths = [str(p) for p in (templates or sorted(TEMPLATES.glob("*.yaml")))]
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), *paths], capture_output=True, text=True)
    if result.returncode != 0:
        raise DeployError(f"cfn-lint found problems; fix them first:\n{result.stdout}")


def pinned_bundle_versions(cfn: Any, env: Environment) -> dict[str, str]:
    """A dry run uploads nothing: it compares against the bundle versions MWAA runs now."""
    stack = describe_stack(cfn, env.stack_name("orchestration")) or {}
    keep = {"RequirementsVersion", "StartupScriptVersion"}
    return {
        p["ParameterKey"]: p.get("ParameterValue", "")
        for p in stack.get("Parameters", [])
        if p["ParameterKey"] in keep
    }


def deploy(
    env: Environment,
    clients: Clients,
    options: Options,
    stacks: Iterable[str] = environments.STACKS,
    artifacts: Mapping[str, ArtifactStep] = ARTIFACTS,
    host_env: Mapping[str, str] = os.environ,
) -> dict[str, str]:
    """Deploy ``stacks`` in order, the artifacts before the orchestration stack. Each stack is
    created or updated, and waited for, before the next one's parameters are computed from the
    outputs so far; a failure stops there and leaves the stacks already deployed."""
    outputs: dict[str, str] = {}
    deployed: list[str] = []
    try:
        for stack in stacks:
            if stack == "orchestration":
                outputs.update(upload_artifacts(env, clients, options, outputs, artifacts))
            outputs.update(deploy_one(env, clients, options, stack, outputs, host_env))
            deployed.append(env.stack_name(stack))
        if "orchestration" not in stacks:
            outputs.update(upload_artifacts(env, clients, options, outputs, artifacts))
    except DeployError as exc:
        if deployed and not options.dry_run:
            left = ", ".join(deployed)
            raise DeployError(f"{exc}\nDeployed before it, left as they are: {left}") from exc
        raise
    return outputs


def deploy_one(
    env: Environment,
    clients: Clients,
    options: Options,
    stack: str,
    outputs: Mapping[str, str],
    host_env: Mapping[str, str],
) -> dict[str, str]:
    """One stack, from the outputs of those before it; returns its outputs."""
    name = env.stack_name(stack)
    parameters = environments.parameters(env, stack, outputs, host_env)
    check_parameters(name, parameters)
    body = template_body(stack)
    got = deploy_stack(clients.cfn, name, body, parameters, stack_tags(env), options)
    if options.dry_run and not got:
        # Nothing was created, so there is nothing to read: the next stacks get the names.
        got = planned(env, clients, stack, options)
    if env.termination_protection and not options.dry_run:
        clients.cfn.update_termination_protection(EnableTerminationProtection=True, StackName=name)
    return got


def planned(env: Environment, clients: Clients, stack: str, options: Options) -> dict[str, str]:
    """A dry run's stand-in for the outputs of a stack that does not exist yet (its change
    set was only looked at): the names it will have, in the account the credentials are in."""
    if not environments.planned_outputs(env, stack, "", ""):  # which stacks have any is fixed
        return {}
    identity = clients.sts.get_caller_identity()
    partition = identity["Arn"].split(":")[1]
    region = clients.cfn.meta.region_name
    outputs = environments.planned_outputs(env, stack, identity["Account"], region, partition)
    options.say(f"  (no such stack yet: {', '.join(outputs)} planned for the stacks after it)")
    return outputs


def upload_artifacts(
    env: Environment,
    clients: Clients,
    options: Options,
    outputs: Mapping[str, str],
    artifacts: Mapping[str, ArtifactStep],
) -> dict[str, str]:
    if options.dry_run:
        options.say(f"would upload: {', '.join(artifacts)}")
        return pinned_bundle_versions(clients.cfn, env)
    produced: dict[str, str] = {}
    for step in artifacts.values():
        produced.update(step(ArtifactContext(env, clients.s3, {**outputs, **produced}, options)))
    return produced


def stack_buckets(cfn: Any, name: str) -> list[str]:
    resources = cfn.list_stack_resources(StackName=name).get("StackResourceSummaries", [])
    return sorted(
        r["PhysicalResourceId"]
        for r in resources
        if r["ResourceType"] == "AWS::S3::Bucket" and r.get("PhysicalResourceId")
    )


def bucket_tags(s3: Any, bucket: str) -> list[dict[str, str]] | None:
    """The bucket's tags, [] if it has none, None if it no longer exists."""
    try:
        return list(s3.get_bucket_tagging(Bucket=bucket)["TagSet"])
    except s3.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchTagSet":
            return []
        if code in ("NoSuchBucket", "404"):
            return None
        raise


def plan_destroy(
    env: Environment, clients: Clients, stacks: Iterable[str] = environments.STACKS
) -> list[tuple[str, list[str]]]:
    """Stacks to delete (reverse deploy order) with the buckets to empty first; refuses,
    before anything is deleted, if a stack or bucket is not this environment's."""
    plan, refused = [], []
    for stack in reversed([s for s in environments.STACKS if s in set(stacks)]):
        name = env.stack_name(stack)
        described = describe_stack(clients.cfn, name)
        if described is None:
            continue
        if not is_ours(described.get("Tags", []), env):
            refused.append(
                f"stack {name} lacks the tags {TAG_PROJECT}={PROJECT}, {TAG_ENV}={env.name}"
            )
            continue
        if described.get("EnableTerminationProtection"):
            refused.append(f"stack {name} has termination protection (turn it off by hand)")
        buckets = []
        for bucket in stack_buckets(clients.cfn, name):
            tags = bucket_tags(clients.s3, bucket)
            if tags is not None and not is_ours(tags, env):
                refused.append(
                    f"bucket {bucket} lacks the tags {TAG_PROJECT}={PROJECT}, {TAG_ENV}={env.name}"
                )
            elif tags is not None:
                buckets.append(bucket)
        plan.append((name, buckets))
    if refused:
        raise DeployError("destroy refused, nothing was deleted: " + "; ".join(refused))
    return plan


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker (the lake bucket is versioned)."""
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        entries = page.get("Versions", []) + page.get("DeleteMarkers", [])
        batch = [{"Key": e["Key"], "VersionId": e["VersionId"]} for e in entries]
        for start in range(0, len(batch), 1000):
            s3.delete_objects(
                Bucket=bucket, Delete={"Objects": batch[start : start + 1000], "Quiet": True}
            )
        deleted += len(batch)
    return deleted


def wait_deleted(cfn: Any, name: str, sleep: Sleep) -> dict[str, Any]:
    return poll(
        lambda: describe_stack(cfn, name) or {"StackStatus": "DELETED"},
        lambda s: not s["StackStatus"].endswith("_IN_PROGRESS"),
        sleep,
        f"deleting {name}",
    )


def destroy(
    env: Environment, clients: Clients, options: Options,
    stacks: Iterable[str] = environments.STACKS,
) -> list[str]:  # fmt: skip
    """Empty and delete what deploy created for ``env`` (or only ``stacks`` of it, e.g. the
    one whose first create failed); returns the stacks deleted."""
    plan = plan_destroy(env, clients, stacks)
    for name, buckets in plan:
        for bucket in buckets:
            options.say(f"emptying {bucket}: {empty_bucket(clients.s3, bucket)} objects")
        clients.cfn.delete_stack(StackName=name)
        final = wait_deleted(clients.cfn, name, options.sleep)
        if final["StackStatus"] not in ("DELETED", "DELETE_COMPLETE"):
            raise DeployError(
                f"{name} ended {final['StackStatus']}: {failure_reasons(clients.cfn, name)}"
            )
        options.say(f"{name}: deleted")
    return [name for name, _ in plan]


def aws_clients(env: Environment) -> Clients:
    import boto3

    # AWS_REGION overrides the environment's region; AWS_ENDPOINT_URL is honoured by boto3.
    session = boto3.Session(region_name=os.environ.get("AWS_REGION", env.region))
    return Clients(
        cfn=session.client("cloudformation"), s3=session.client("s3"), sts=session.client("sts")
    )


LOCAL_ENDPOINT_HELP = """\
To try it without an AWS account, point it at a local endpoint (a moto server):
    .venv/bin/moto_server -p 5000 &
    AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_ACCESS_KEY_ID=testing \\
        AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 make deploy ENV=dev DRY_RUN=1
(infra/README.md, "Trying a deploy locally")."""


def aws_access_problem(exc: Exception, host_env: Mapping[str, str] = os.environ) -> str | None:
    """What is missing when boto3 cannot reach AWS at all, and how to fix it; None for any
    other error (those keep their traceback: they are bugs, not setup)."""
    from botocore import exceptions

    if isinstance(exc, exceptions.NoCredentialsError | exceptions.PartialCredentialsError):
        return (
            f"no usable AWS credentials ({exc}). boto3 looks in AWS_ACCESS_KEY_ID / "
            f"AWS_SECRET_ACCESS_KEY, then AWS_PROFILE and ~/.aws/credentials / ~/.aws/config "
            f"(`aws configure`, `aws sso login`), then the instance's role. A first deploy needs "
            f"an identity that may create IAM roles, VPCs, MWAA and Redshift.\n"
            + LOCAL_ENDPOINT_HELP
        )
    if isinstance(exc, exceptions.EndpointConnectionError):
        endpoint = host_env.get("AWS_ENDPOINT_URL", "")
        where = f"AWS_ENDPOINT_URL={endpoint}" if endpoint else "the AWS endpoint"
        return f"cannot reach {where} ({exc}); is it running?\n" + LOCAL_ENDPOINT_HELP
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["deploy", "destroy"])
    parser.add_argument("--env", required=True, choices=sorted(environments.ENVIRONMENTS))
    parser.add_argument("--dry-run", action="store_true", help="print change sets, execute none")
    parser.add_argument(
        "--stack", choices=environments.STACKS, help="destroy: only this stack (the others stay)"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    env = environments.get(args.env)
    options = Options(dry_run=args.dry_run)
    try:
        if args.command == "deploy":
            lint()
            deploy(env, aws_clients(env), options)
        else:
            stacks = [args.stack] if args.stack else environments.STACKS
            destroy(env, aws_clients(env), options, stacks)
    except DeployError as exc:
        print(f"{args.command} FAILED: {exc}", file=sys.stderr)
        return 1
    except BotoCoreError as exc:  # raised before any request reached AWS
        problem = aws_access_problem(exc)
        if problem is None:
            raise
        print(f"{args.command} FAILED: {problem}", file=sys.stderr)
        return 1
    print(f"{args.command} {env.name}: done{' (dry run)' if args.dry_run else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
