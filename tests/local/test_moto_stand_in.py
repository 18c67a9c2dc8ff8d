"""The local AWS keeps the S3 guarantee the lake's claims rely on: of several conditional
writes of one key at once, exactly one succeeds.

moto checks a put's condition, then writes; a busy machine can switch threads in between.
Here moto runs in this process with a pause in that gap, so the race happens every time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.s3.models import S3Backend
from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer

from local.moto_stand_in import serialize_s3_puts
from local.servers import free_port

pytestmark = pytest.mark.integration

WRITERS = 4


@pytest.fixture
def slow_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    write = S3Backend.put_object

    def pausing(self: Any, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.05)  # between the condition's check and the write
        return write(self, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "put_object", pausing)
    monkeypatch.setattr(S3Response, "put_object", S3Response.put_object)  # undone after
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def winners(endpoint: str, bucket: str) -> int:
    """How many of several writers racing to create one key succeed (in-process moto keeps
    its state between tests: each test uses a bucket of its own)."""
    config = Config(max_pool_connections=WRITERS, retries={"max_attempts": 0})
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=config)
    s3.create_bucket(Bucket=bucket)
    won: list[int] = []
    start = threading.Barrier(WRITERS)

    def writer(number: int) -> None:
        start.wait()
        try:
            s3.put_object(Bucket=bucket, Key="marker", Body=b"%d" % number, IfNoneMatch="*")
        except s3.exceptions.ClientError as exc:
            assert exc.response["Error"]["Code"] == "PreconditionFailed"
            return
        won.append(number)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(won)


def test_only_one_of_simultaneous_conditional_writes_wins(slow_moto: str) -> None:
    serialize_s3_puts()
    assert winners(slow_moto, "serialized") == 1


def test_plain_moto_lets_several_win_which_is_why_the_stand_in_serializes(
    slow_moto: str,
) -> None:
    assert winners(slow_moto, "plain") > 1
