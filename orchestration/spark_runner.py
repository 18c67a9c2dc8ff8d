"""Run the Spark job for one logical date. Runners differ only in where Spark runs.

Every runner has the same contract: read ``processing/dt=<run>/raw/`` and leave the job's
output under ``processing/dt=<run>/output/`` in the lake bucket. The ``local`` runner stages
through a scratch folder because local Spark has no S3 connector (the hadoop-aws jars are
not on PyPI); on EMR the job reads and writes ``s3://`` directly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

from ingestion.zones import list_keys, run_prefix
from orchestration.settings import SPARK_JOB, Settings


class SparkJobError(RuntimeError):
    pass


def spark_submit_command(input_uri: str, output_uri: str, run_date: date) -> list[str]:
    """The local spark-submit call: the same job.py and arguments an EMR step passes."""
    spark_submit = Path(sys.executable).with_name("spark-submit")
    return [
        str(spark_submit),
        "--master",
        "local[2]",
        "--driver-memory",
        "2g",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        "spark.sql.shuffle.partitions=4",
        str(SPARK_JOB),
        "--input",
        input_uri,
        "--output",
        output_uri,
        "--run-date",
        run_date.isoformat(),
    ]


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


def run_local(settings: Settings, s3: Any, run_date: date, log_file: Path) -> None:
    """Stage the run's raw objects locally, spark-submit the job, upload its output."""
    scratch = settings.work_dir / "spark" / f"dt={run_date.isoformat()}"
    shutil.rmtree(scratch, ignore_errors=True)
    prefix = run_prefix(run_date)
    _download(s3, settings.lake_bucket, prefix + "raw/", scratch / "input")
    command = spark_submit_command(str(scratch / "input"), str(scratch / "output"), run_date)
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("wb") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0:
        tail = log_file.read_text(errors="replace").splitlines()[-15:]
        raise SparkJobError(
            f"Spark job failed (exit {result.returncode}) for run date {run_date}; "
            f"full log: {log_file}\n" + "\n".join(tail)
        )
    _upload(s3, settings.lake_bucket, scratch / "output", prefix + "output/")


def run_spark(settings: Settings, s3: Any, run_date: date, log_file: Path) -> None:
    """The in-process runners; EMR and EMR Serverless run as Airflow operators instead."""
    if settings.spark_runner != "local":
        raise SparkJobError(
            f"SPARK_RUNNER={settings.spark_runner!r} runs through the Airflow DAG "
            "(orchestration/dags); run_local supports SPARK_RUNNER=local only"
        )
    run_local(settings, s3, run_date, log_file)
