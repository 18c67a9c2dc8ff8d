"""Run the Spark job for one logical date on local Spark.

Every runner (this one, EMR, EMR Serverless) has the same contract: read the run's raw
objects and leave the job's output under the run's output prefix in the lake bucket. The
local runner stages through a scratch folder because local Spark has no S3 connector (the
hadoop-aws jars are not on PyPI); on EMR the job reads and writes ``s3://`` directly.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from lake import layout
from lake.zones import list_keys
from orchestration.runners.spark_job import job_arguments
from orchestration.runners.spark_session import LOCAL_CONF, run_in_session
from orchestration.settings import REPO_ROOT, SPARK_JOB, Settings
from orchestration.tools import ToolFailed, run_tool

# A local job over a few MB of raw objects is over in seconds: there the JIT's optimizing
# compiler (C2) only takes CPU from the job (~48 s of CPU -> ~25 s for the small demo).
# Larger inputs keep the JVM's default, under which long jobs run faster.
SHORT_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
SHORT_JVM_MAX_INPUT_BYTES = 64 * 1024 * 1024


def job_env(settings: Settings, input_bytes: int, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of a local spark-submit over ``input_bytes`` of raw objects, started
    from ``environ`` (whose own ``SPARK_SUBMIT_OPTS``, if any, is kept)."""
    short = input_bytes <= SHORT_JVM_MAX_INPUT_BYTES
    return {**({"SPARK_SUBMIT_OPTS": SHORT_JVM} if short else {}), **session_env(settings, environ)}


def session_env(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """What a local job's process needs on top of ``environ``: the run's AWS endpoint and
    region, this interpreter for PySpark, and the repo on the import path."""
    return {
        **environ,
        # The job reads its pseudonymization key from Secrets Manager: the run's endpoint.
        **({"AWS_ENDPOINT_URL": settings.aws_endpoint_url} if settings.aws_endpoint_url else {}),
        "AWS_DEFAULT_REGION": settings.region,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        # The job imports lake.layout and lake.stats; on EMR they travel in its --py-files.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), environ.get("PYTHONPATH")])),
    }


def spark_submit_command(arguments: list[str]) -> list[str]:
    """The local spark-submit call of job.py with its ``arguments`` (``spark_job``)."""
    spark_submit = Path(sys.executable).with_name("spark-submit")
    conf = [arg for key, value in LOCAL_CONF.items() for arg in ("--conf", f"{key}={value}")]
    return [str(spark_submit), *conf, str(SPARK_JOB), *arguments]


def _download(s3: Any, bucket: str, prefix: str, target: Path) -> None:
    for key in list_keys(s3, bucket, prefix):
        path = target / key.removeprefix(prefix)
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(path))


def _upload(s3: Any, bucket: str, source: Path, prefix: str) -> None:
    for stale in list_keys(s3, bucket, prefix):
        s3.delete_object(Bucket=bucket, Key=stale)
    for path in sorted(source.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            s3.upload_file(str(path), bucket, prefix + path.relative_to(source).as_posix())


def run_spark(settings: Settings, s3: Any, run_date: date, log_file: Path) -> None:
    """Stage the run's raw objects locally, spark-submit the job, upload its output.

    EMR and EMR Serverless run as Airflow operators instead (``orchestration.tasks``).
    """
    if settings.spark_runner != "local":
        raise ToolFailed(
            f"SPARK_RUNNER={settings.spark_runner!r} runs through the Airflow DAG "
            "(orchestration/dags); this runner supports SPARK_RUNNER=local only"
        )
    scratch = settings.work_dir / "spark" / layout.partition(run_date)
    shutil.rmtree(scratch, ignore_errors=True)
    _download(s3, settings.lake_bucket, layout.raw_prefix(run_date), scratch / "input")
    # What the previous run left open: only the newest state before this run is read.
    state = layout.state_dataset("web_sessions")
    names = {key.removeprefix(state).split("/", 1)[0]
             for key in list_keys(s3, settings.lake_bucket, state)}  # fmt: skip
    previous = layout.previous_partition(sorted(names), run_date)
    if previous:
        folder = f"{state}{previous}/"
        _download(s3, settings.lake_bucket, folder, scratch / "lake" / folder)
    # The erasure register the job consults (lake/erasure.py).
    register = layout.ERASURE_REGISTER
    _download(s3, settings.lake_bucket, register, scratch / "lake" / register)
    arguments = job_arguments(
        str(scratch / "input"),
        str(scratch / "output"),
        run_date,
        lake=str(scratch / "lake"),
        pseudonym_secret=settings.pseudonym_secret,
        web_format=settings.stream("web").log_format,
    )
    what = f"Spark job for run date {run_date}"
    if settings.spark_session_dir:  # the same job and arguments, in the warm session
        env = session_env(settings, os.environ)
        run_in_session(settings.spark_session_dir, arguments, what=what, log_file=log_file,
                       env=env)  # fmt: skip
    else:
        input_bytes = sum(f.stat().st_size for f in (scratch / "input").rglob("*") if f.is_file())
        env = job_env(settings, input_bytes, os.environ)
        run_tool(spark_submit_command(arguments), what=what, log_file=log_file, env=env)
    _upload(s3, settings.lake_bucket, scratch / "output", layout.output_prefix(run_date))
