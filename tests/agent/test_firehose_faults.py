"""Fault injection on the local Firehose endpoint (moto): partial failures, throttling and
timeouts are injected into a real boto3 client through botocore's event hooks. Whatever
happens, every line lands exactly once."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

from lake import zones
from local.aws import provision
from shoplogs_agent.firehose import RetryPolicy, ship_buffer

pytestmark = pytest.mark.integration


class Faults:
    """Each call in turn: a timeout, a throttle, then a partial failure of every third record,
    then the same again, until ``calls`` faults were injected."""

    def __init__(self, client: Any, calls: int) -> None:
        self.left = calls
        self.step = 0
        self.dropped: list[int] = []
        events = client.meta.events
        events.register("provide-client-params.firehose.PutRecordBatch", self.drop_some)
        events.register("before-send.firehose.PutRecordBatch", self.fail_call)
        events.register("after-call.firehose.PutRecordBatch", self.report_dropped)

    def _kind(self) -> str:
        return ["timeout", "throttle", "partial"][self.step % 3] if self.left else "none"

    def fail_call(self, request: Any, **_: Any) -> AWSResponse | None:
        kind = self._kind()
        if kind == "timeout":
            self.step, self.left = self.step + 1, self.left - 1
            raise ReadTimeoutError(endpoint_url=request.url)
        if kind == "throttle":
            self.step, self.left = self.step + 1, self.left - 1
            body = json.dumps({"__type": "ServiceUnavailableException", "message": "Slow down."})
            return AWSResponse(request.url, 400, {}, _Raw(body.encode()))
        return None

    def drop_some(self, params: dict[str, Any], **_: Any) -> None:
        self.dropped = []
        if self._kind() == "partial" and len(params["Records"]) > 1:
            self.dropped = list(range(0, len(params["Records"]), 3))
            params["Records"] = [r for i, r in enumerate(params["Records"])
                                 if i not in self.dropped]  # fmt: skip

    def report_dropped(self, parsed: dict[str, Any], **_: Any) -> None:
        if not self.dropped:
            return
        self.step, self.left = self.step + 1, self.left - 1
        results = iter(parsed["RequestResponses"])
        total = len(parsed["RequestResponses"]) + len(self.dropped)
        parsed["RequestResponses"] = [
            {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "injected"}
            if i in self.dropped else next(results)
            for i in range(total)
        ]  # fmt: skip
        parsed["FailedPutCount"] = len(self.dropped)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def test_partial_failures_throttling_and_timeouts_lose_and_double_nothing(
    s3: Any, firehose: Any, aws_endpoint: str
) -> None:
    provision(s3, firehose, "faults-lake", {"web": "faults-web"}, "arn:aws:iam::1:role/x")
    client = boto3.client("firehose", endpoint_url=aws_endpoint, region_name="us-east-1")
    faults = Faults(client, calls=9)
    lines = [f"line {i:05d} {'x' * 200}\n".encode() for i in range(40_000)]
    policy = RetryPolicy(attempts=12, base_seconds=0.01)
    stats = ship_buffer(client, "faults-web", b"".join(lines), policy, sleep=lambda _: None)
    # Every fault was injected; botocore absorbs some throttles and timeouts itself, the
    # partial failures (3 of the 9) always come back to the shipper's own retry.
    assert faults.left == 0 and stats.retries >= 3
    delivered = [
        line + b"\n"
        for key in zones.list_keys(s3, "faults-lake", "landing/")
        for line in s3.get_object(Bucket="faults-lake", Key=key)["Body"].read().splitlines()
    ]
    assert sorted(delivered) == sorted(lines)  # each line once: none lost, none doubled
    assert stats.lines_shipped == 40_000
