"""A real local AWS endpoint: a moto server process on a free loopback port, provisioned
with the names infra/ gives the resources in AWS, and the shipping of log files into it.

The server speaks the AWS API over HTTP, so boto3, s3fs and DuckDB talk to it exactly as
they would to AWS; only the endpoint URL differs.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from lake import layout, zones
from local.progress import Every, say, shipped_line
from local.servers import start_on_free_port, stop
from orchestration.settings import Settings
from orchestration.stages import aws_client
from shoplogs_agent.files import ship_file
from shoplogs_agent.firehose import ShipStats

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

# Where `make run` and `make airflow` start local AWS when the port is free. dbt's profile
# names the endpoint, and dbt parses the whole project again (~5 s) whenever the profile
# changes: one port from run to run keeps its partial parse. Tests take any free port.
RUN_PORT = 4599


def _moto_command(
    port: int, clock_start: datetime | None = None, enforce_iam: bool = False
) -> list[str]:
    """moto's server through local/moto_stand_in.py (atomic conditional writes; Firehose's
    clock pinned at ``clock_start`` when given; IAM enforceable, see local/iam.py)."""
    clock = ["--clock-start", clock_start.isoformat()] if clock_start is not None else []
    iam = ["--enforce-iam"] if enforce_iam else []
    return [sys.executable, "-m", "local.moto_stand_in", *clock, *iam,
            "-H", "127.0.0.1", "-p", str(port)]  # fmt: skip


@contextmanager
def moto_server(
    log_file: Path | None = None,
    timeout: float = 20.0,
    clock_start: datetime | None = None,
    port: int = 0,
    enforce_iam: bool = False,
) -> Iterator[str]:
    """Start moto, yield its endpoint URL, and stop it however the block exits.

    ``clock_start``: Firehose's clock begins there (tests pin arrival days with it).
    ``port``: the port to use if it is free (``RUN_PORT``); else, and by default, any.
    ``enforce_iam``: the server can hold callers to their IAM policies once local/iam.py
    has created the roles and switched enforcement on."""
    if log_file:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    log = log_file.open("ab") if log_file else subprocess.DEVNULL
    root = str(Path(__file__).resolve().parents[1])  # for `-m local.moto_stand_in`
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    try:
        process, port = start_on_free_port(
            lambda chosen: _moto_command(chosen, clock_start, enforce_iam),
            lambda chosen: f"http://127.0.0.1:{chosen}/moto-api/",
            what="moto server", log=log, see=str(log_file or "its output"), preferred=port,
            env=env, timeout=timeout, ready=lambda status, _: status == 200,
        )  # fmt: skip
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(process)
    finally:
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
                    "Filter": {
                        "Key": {"FilterRules": [{"Name": "prefix", "Value": layout.LANDING}]}
                    },
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
                "Prefix": layout.landing_prefix(log_name),
                "ErrorOutputPrefix": layout.landing_errors_prefix(log_name),
                "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
                "CompressionFormat": "UNCOMPRESSED",
            },
        )


def provision_pseudonym_key(secretsmanager: Any, name: str) -> str:
    """The Spark job's pseudonymization secret, created with a random key if missing (as the
    processing stack generates it in AWS); its ARN. An existing one is kept: rotating it
    is a deliberate step (docs/data-contract.md, "Personal data")."""
    try:
        return str(secretsmanager.describe_secret(SecretId=name)["ARN"])
    except secretsmanager.exceptions.ResourceNotFoundException:
        pass
    created = secretsmanager.create_secret(
        Name=name,
        Description="shoplogs: HMAC key of the Spark job's client address pseudonyms",
        SecretString=secrets.token_urlsafe(48),
    )
    return str(created["ARN"])


def rotate_pseudonym_key(secretsmanager: Any, name: str) -> str:
    """A new current version of the secret (the old one becomes ``AWSPREVIOUS``), as
    ``aws secretsmanager put-secret-value`` rotates it in AWS; the new version's id."""
    put = secretsmanager.put_secret_value(SecretId=name, SecretString=secrets.token_urlsafe(48))
    return str(put["VersionId"])


def provision_local(settings: Settings) -> None:
    """Create the bucket, delivery streams, landing event queue and the pseudonymization
    secret (infra/'s names)."""
    s3 = aws_client(settings, "s3")
    provision_pseudonym_key(aws_client(settings, "secretsmanager"), settings.pseudonym_secret)
    provision(
        s3,
        aws_client(settings, "firehose"),
        settings.lake_bucket,
        {s.name: s.delivery_stream for s in settings.streams},
        settings.firehose_role_arn,
    )
    provision_landing_events(
        s3, aws_client(settings, "sqs"), settings.lake_bucket, settings.landing_queue_name
    )


def shipping_progress(stream: str, earlier_files: ShipStats) -> Callable[[ShipStats], None]:
    """Prints the stream's running count every few seconds while a file ships."""
    every = Every(seconds=2.0)

    def progress(this_file: ShipStats) -> None:
        if every.due():
            lines = earlier_files.lines_shipped + this_file.lines_shipped
            megabytes = (earlier_files.bytes_sent + this_file.bytes_sent) / 1e6
            say(shipped_line(stream, lines, megabytes))

    return progress


def ship_logs(settings: Settings, files: dict[str, list[Path]]) -> dict[str, ShipStats]:
    """Send each stream's log files through its Firehose delivery stream, with the agent's
    own code. Lines too large for a Firehose record go to quarantine with their reason."""
    firehose = aws_client(settings, "firehose")
    s3 = aws_client(settings, "s3")
    results: dict[str, ShipStats] = {}
    for stream_name, paths in files.items():
        stream = settings.stream(stream_name)
        total = ShipStats()
        progress = shipping_progress(stream_name, total)
        for path in paths:
            # The stream's format travels in its records, as a flow's logFormat in agent.json.
            stats = ship_file(firehose, stream.delivery_stream, path, progress=progress,
                              log_format=stream.log_format)  # fmt: skip
            zones.quarantine_lines(
                s3, settings.lake_bucket, stream.name, path.name, "record_too_large",
                stats.oversize_lines,
            )  # fmt: skip
            total.add(stats)
        results[stream_name] = total
    return results
