"""A real local AWS endpoint: a moto server process on a free loopback port.

The server speaks the AWS API over HTTP, so boto3, s3fs and DuckDB talk to it exactly as
they would to AWS; only the endpoint URL differs.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _moto_command(port: int) -> list[str]:
    executable = Path(sys.executable).with_name("moto_server")
    binary = str(executable) if executable.exists() else shutil.which("moto_server")
    if not binary:
        raise RuntimeError("moto_server is not installed; run `make install` first")
    return [binary, "-H", "127.0.0.1", "-p", str(port)]


@contextmanager
def moto_server(log_file: Path | None = None, timeout: float = 20.0) -> Iterator[str]:
    """Start moto, yield its endpoint URL, and stop it however the block exits."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    if log_file:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    log = log_file.open("ab") if log_file else subprocess.DEVNULL
    process = subprocess.Popen(_moto_command(port), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"moto server did not start on {endpoint} (exit code "
                        f"{process.poll()}); see {log_file or 'its output'}"
                    ) from exc
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        if log_file:
            log.close()  # type: ignore[union-attr]


def provision_landing_events(s3: Any, sqs: Any, bucket: str, queue_name: str) -> str:
    """An SQS queue that hears about every object created under ``landing/``: what starts
    the pipeline DAG (its asset watcher reads the queue)."""
    queue_url = str(sqs.create_queue(QueueName=queue_name)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn["Attributes"]["QueueArn"],
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "landing/"}]}},
                }
            ]
        },
    )
    return queue_url


def _check_destination(firehose: Any, stream: str, bucket: str) -> None:
    described = firehose.describe_delivery_stream(DeliveryStreamName=stream)
    destinations = described["DeliveryStreamDescription"]["Destinations"]
    arns = {d.get("ExtendedS3DestinationDescription", {}).get("BucketARN") for d in destinations}
    if f"arn:aws:s3:::{bucket}" not in arns:
        raise ValueError(
            f"delivery stream {stream} already exists and delivers to {sorted(map(str, arns))}, "
            f"not to bucket {bucket}; use a fresh local endpoint or the stream's bucket"
        )


def provision(
    s3: Any, firehose: Any, bucket: str, delivery_streams: dict[str, str], role_arn: str
) -> None:
    """Create the lake bucket and one DirectPut delivery stream per log, if missing.

    The delivery streams write to ``landing/<stream>/``; Firehose itself appends the
    ``YYYY/MM/DD/HH/`` arrival-time prefix, as it does in AWS.
    """
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)
    streams = set(firehose.list_delivery_streams(Limit=100)["DeliveryStreamNames"])
    for log_name, stream in delivery_streams.items():
        if stream in streams:
            _check_destination(firehose, stream, bucket)
            continue
        firehose.create_delivery_stream(
            DeliveryStreamName=stream,
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": role_arn,
                "BucketARN": f"arn:aws:s3:::{bucket}",
                "Prefix": f"landing/{log_name}/",
                "ErrorOutputPrefix": f"landing-errors/{log_name}/",
                "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
                "CompressionFormat": "UNCOMPRESSED",
            },
        )
