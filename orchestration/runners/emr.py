"""Transient EMR clusters for the Spark job: artifacts, cluster and step definitions, and
the rules for which clusters this project may reuse or terminate.

Pure builders plus thin boto3 edges; the DAG wires them to the amazon provider's operators.

Safety rules, enforced here and tested:
- a cluster is reused only if *this project* created it (tags) for *the same run*, so a
  retried run picks its own cluster up instead of starting a second one;
- a cluster tagged ``shoplogs:persistent=true``, or without the project's tags, is never
  reused and never terminated.
"""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from lake import layout
from orchestration.runners.spark_job import job_arguments
from orchestration.settings import PROJECT, REPO_ROOT, Settings

log = logging.getLogger(__name__)

TAG_PROJECT = f"{PROJECT}:project"
TAG_ENV = f"{PROJECT}:env"
TAG_RUN = f"{PROJECT}:run"
TAG_PERSISTENT = f"{PROJECT}:persistent"
# AmazonEMRServicePolicy_v2 (the EMR service role's policy) creates instances, volumes, launch
# templates and security groups only with this tag in the request; EMR copies it onto them.
EMR_MANAGED_POLICY_TAG = {"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"}
ACTIVE_STATES = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"]
SPARK_DIR = REPO_ROOT / "spark"
# What the job imports besides PySpark: its transforms, and the lake's layout, stats, wire
# format and erasure rules (standard library only).
LAKE_MODULES = ("__init__.py", "layout.py", "stats.py", "wire.py", "erasure.py")


@dataclass(frozen=True)
class Artifact:
    """The job code as shipped to S3, addressed by the hash of its content."""

    version: str
    job_uri: str
    py_files_uri: str
    bootstrap_uri: str


def job_modules(spark_dir: Path, lake_dir: Path) -> list[tuple[str, Path]]:
    """(name in the zip, file) of every module the job imports."""
    modules = [(f"preprocess/{p.name}", p) for p in sorted((spark_dir / "preprocess").glob("*.py"))]
    return modules + [(f"lake/{name}", lake_dir / name) for name in LAKE_MODULES]


def package_job(
    spark_dir: Path = SPARK_DIR, lake_dir: Path = REPO_ROOT / "lake"
) -> tuple[str, dict[str, bytes]]:
    """The files EMR needs, and a version that changes whenever any of them changes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in job_modules(spark_dir, lake_dir):
            # A fixed timestamp keeps the zip byte-identical for identical code.
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            archive.writestr(info, path.read_bytes())
    files = {
        "job.py": (spark_dir / "job.py").read_bytes(),
        "modules.zip": buffer.getvalue(),
        "bootstrap.sh": (spark_dir / "emr" / "bootstrap.sh").read_bytes(),
    }
    digest = hashlib.sha256()
    for name, content in sorted(files.items()):
        digest.update(name.encode() + b"\0" + content)
    return digest.hexdigest()[:12], files


def upload_artifact(s3: Any, bucket: str, spark_dir: Path = SPARK_DIR) -> Artifact:
    """Upload the job under its content version; the same code is uploaded once."""
    version, files = package_job(spark_dir)
    prefix = layout.spark_artifact_prefix(version)
    for name, content in files.items():
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=content)
    base = layout.uri(bucket, prefix)
    return Artifact(version, base + "job.py", base + "modules.zip", base + "bootstrap.sh")


def run_key(dag_id: str, run_date: date) -> str:
    return f"{dag_id}/{run_date.isoformat()}"


def cluster_tags(settings: Settings, key: str) -> list[dict[str, str]]:
    return [
        {"Key": TAG_PROJECT, "Value": PROJECT},
        {"Key": TAG_ENV, "Value": settings.env},
        {"Key": TAG_RUN, "Value": key},
        {"Key": TAG_PERSISTENT, "Value": "false"},
        EMR_MANAGED_POLICY_TAG,
    ]


def cluster_name(settings: Settings, key: str) -> str:
    """The run's cluster name: what ``find_reusable_cluster`` looks for in ListClusters."""
    return f"{PROJECT}-{settings.env}-{key.replace('/', '-')}"


def log_uri(settings: Settings) -> str:
    return layout.uri(settings.lake_bucket, layout.EMR_LOGS)


def job_flow_config(settings: Settings, key: str, artifact: Artifact) -> dict[str, Any]:
    """``RunJobFlow`` arguments for a transient cluster that runs one pipeline run."""
    assert settings.emr is not None
    emr = settings.emr
    spot_types = ["m6g.xlarge", "m6g.2xlarge", "r6g.xlarge", "m5.xlarge"]
    instances: dict[str, Any] = {
        "InstanceFleets": [
            {
                "Name": "primary",
                "InstanceFleetType": "MASTER",
                "TargetOnDemandCapacity": 1,
                "InstanceTypeConfigs": [{"InstanceType": "m6g.xlarge"}],
            },
            {
                "Name": "core",
                "InstanceFleetType": "CORE",
                "TargetOnDemandCapacity": 1,
                "InstanceTypeConfigs": [{"InstanceType": "m6g.xlarge"}],
            },
            {
                # Task nodes hold no HDFS data, so losing a spot node only costs a retry.
                "Name": "task-spot",
                "InstanceFleetType": "TASK",
                "TargetSpotCapacity": 4,
                "InstanceTypeConfigs": [{"InstanceType": t} for t in spot_types],
                "LaunchSpecifications": {
                    "SpotSpecification": {
                        "TimeoutDurationMinutes": 10,
                        "TimeoutAction": "SWITCH_TO_ON_DEMAND",
                        "AllocationStrategy": "capacity-optimized",
                    }
                },
            },
        ],
        # Steps are added after creation; the DAG terminates the cluster when they end.
        "KeepJobFlowAliveWhenNoSteps": True,
        "TerminationProtected": False,
    }
    if emr.subnet_ids:
        instances["Ec2SubnetIds"] = list(emr.subnet_ids)
    return {
        "Name": cluster_name(settings, key),
        "ReleaseLabel": emr.release_label,
        "Applications": [{"Name": "Spark"}],
        "LogUri": log_uri(settings),
        "Instances": instances,
        "StepConcurrencyLevel": len(layout.STREAMS),
        # Backstop: should every other safeguard fail, an idle cluster still goes away.
        "AutoTerminationPolicy": {"IdleTimeout": emr.idle_timeout_seconds},
        "BootstrapActions": [
            {
                "Name": "install job dependencies",
                "ScriptBootstrapAction": {"Path": artifact.bootstrap_uri, "Args": []},
            }
        ],
        "Configurations": [
            {
                "Classification": "spark-defaults",
                "Properties": {"spark.sql.sources.partitionOverwriteMode": "dynamic"},
            }
        ],
        "ServiceRole": emr.service_role,
        "JobFlowRole": emr.instance_profile,
        "SecurityConfiguration": emr.security_configuration,
        "VisibleToAllUsers": True,
        "Tags": cluster_tags(settings, key),
    }


def emr_job_arguments(settings: Settings, run_date: date, streams: tuple[str, ...]) -> list[str]:
    """job.py's arguments for ``streams`` on EMR: the lake's ``s3://`` URIs."""

    def folder(prefix: str) -> str:
        return layout.uri(settings.lake_bucket, prefix).rstrip("/")

    web = "web" in streams
    return job_arguments(
        folder(layout.raw_prefix(run_date)),
        folder(layout.output_prefix(run_date)),
        run_date,
        streams=streams,
        lake=folder(""),
        pseudonym_secret=settings.pseudonym_secret if web else "",
        web_format=settings.stream("web").log_format if web else "",
    )


def spark_steps(settings: Settings, artifact: Artifact, run_date: date) -> list[dict[str, Any]]:
    """One step per stream, so the cluster runs them side by side (StepConcurrencyLevel)."""
    return [
        {
            "Name": f"preprocess {stream} {run_date.isoformat()}",
            "ActionOnFailure": "CONTINUE",  # the DAG decides; a failed step must not hang others
            "HadoopJarStep": {
                "Jar": "command-runner.jar",
                "Args": [
                    "spark-submit",
                    "--deploy-mode",
                    "cluster",
                    "--py-files",
                    artifact.py_files_uri,
                    artifact.job_uri,
                    *emr_job_arguments(settings, run_date, (stream,)),
                ],
            },
        }
        for stream in layout.STREAMS
    ]


def serverless_job_driver(settings: Settings, artifact: Artifact, run_date: date) -> dict[str, Any]:
    return {
        "sparkSubmit": {
            "entryPoint": artifact.job_uri,
            "entryPointArguments": emr_job_arguments(settings, run_date, layout.STREAMS),
            "sparkSubmitParameters": f"--py-files {artifact.py_files_uri}",
        }
    }


def _tags(cluster: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in cluster.get("Tags", [])}


def is_ours(cluster: dict[str, Any], settings: Settings) -> bool:
    """Created by this project in this environment, and not marked persistent."""
    tags = _tags(cluster)
    return (
        tags.get(TAG_PROJECT) == PROJECT
        and tags.get(TAG_ENV) == settings.env
        and tags.get(TAG_PERSISTENT, "false").lower() != "true"
    )


def _describe_if_allowed(emr: Any, cluster_id: str) -> dict[str, Any] | None:
    """The cluster, or None where the role may not describe it: the execution role may
    describe only this environment's tagged clusters, so a denial means "not ours"."""
    try:
        return dict(emr.describe_cluster(ClusterId=cluster_id)["Cluster"])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("AccessDenied", "AccessDeniedException"):
            log.info("cluster %s: not ours to describe (%s)", cluster_id, error)
            return None
        raise


def find_reusable_cluster(emr: Any, settings: Settings, key: str) -> str | None:
    """An active cluster this project created for the same run, if a retry left one.

    Only clusters named as this run's are described: the region may hold other teams'
    clusters, which the execution role may not describe (and need not)."""
    name = cluster_name(settings, key)
    paginator = emr.get_paginator("list_clusters")
    for page in paginator.paginate(ClusterStates=ACTIVE_STATES):
        for summary in page.get("Clusters", []):
            if summary.get("Name") != name:
                continue
            cluster = _describe_if_allowed(emr, summary["Id"])
            if cluster and is_ours(cluster, settings) and _tags(cluster).get(TAG_RUN) == key:
                return str(cluster["Id"])
    return None


def terminate_if_ours(emr: Any, settings: Settings, cluster_id: str) -> bool:
    """Terminate ``cluster_id`` only if the tags say this project may; say what was done."""
    cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    if not is_ours(cluster, settings):
        log.warning(
            "not terminating %s: not created by %s or marked persistent", cluster_id, PROJECT
        )
        return False
    emr.terminate_job_flows(JobFlowIds=[cluster_id])
    log.info("terminated EMR cluster %s", cluster_id)
    return True


def step_log_locations(settings: Settings, cluster_id: str, step_ids: list[str]) -> list[str]:
    return [f"{log_uri(settings)}{cluster_id}/steps/{step_id}/" for step_id in step_ids]
