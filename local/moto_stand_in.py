"""moto's server as the local stand-in for AWS, with what real AWS guarantees:

    python -m local.moto_stand_in [--clock-start 2026-11-21T12:00] [--enforce-iam] -H HOST -p PORT

- **Atomic conditional writes.** S3 applies ``If-None-Match``/``If-Match`` puts atomically:
  of two runs claiming one landing object at once, exactly one wins (lake/zones.py relies
  on it). moto checks the condition and then writes, unlocked, in a threaded server, so
  under load both could win. Every S3 put is serialized here.
- **A pinned Firehose clock** (``--clock-start``). Firehose stamps each object with its
  arrival time (``landing/<stream>/YYYY/MM/DD/HH/``) and a run claims what arrived on or
  before its date. moto is a separate process, so a test cannot pin its clock from the
  inside; the tests start it at noon of a fixed day instead, so a suite started at 23:59
  never sees its logs land on two days.
- **IAM as the local stack can hold it** (``--enforce-iam``; local/iam.py turns enforcement
  on once the roles exist). moto checks each call's action against the caller's policies,
  and the resource only for S3 and SQS (other services ask with ``*``). Here a ``*``
  resource matches every statement (those services are checked by action), identity-policy
  conditions are not evaluated (moto has no request context for them: tests/infra/
  test_iam_calls.py reads them on paper), and a denial names the principal (so the role),
  the action and the resource.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import datetime, timedelta
from typing import Any

_BEGAN = time.monotonic()


def ticking_from(start: datetime) -> datetime:
    """``start`` plus the real time elapsed since this process began (naive UTC, as moto's
    own ``utcnow``)."""
    return start.replace(tzinfo=None) + timedelta(seconds=time.monotonic() - _BEGAN)


def serialize_s3_puts() -> None:
    from moto.s3.responses import S3Response

    lock = threading.Lock()
    put = S3Response.put_object

    def put_object(self: Any) -> Any:
        with lock:
            return put(self)

    S3Response.put_object = put_object  # type: ignore[method-assign]


def enforce_iam_as_locally_held() -> None:
    from moto.core.exceptions import AccessDeniedError
    from moto.iam import access_control
    from moto.s3.exceptions import S3AccessDeniedError, S3ClientError

    statement = access_control.IAMPolicyStatement
    matches, conditions = statement._check_element_matches, statement._check_conditions

    def element_matches(self: Any, element: str, value: str) -> bool:
        return (element == "Resource" and value == "*") or matches(self, element, value)

    def check_conditions(self: Any, incoming: dict[str, str] | None) -> bool:
        return True if incoming is None else conditions(self, incoming)

    permitted = access_control.IAMRequestBase.check_action_permitted

    def check_action_permitted(self: Any, resource: str) -> None:
        try:
            permitted(self, resource)
        except (AccessDeniedError, S3AccessDeniedError) as denied:
            message = (
                f"{self._access_key.arn} is not authorized to perform: {self._action} "
                f"on resource: {resource}"
            )
            if isinstance(denied, S3AccessDeniedError):
                raise S3ClientError("AccessDenied", message) from denied
            raise AccessDeniedError(
                user_arn=self._access_key.arn, action=f"{self._action} on resource: {resource}"
            ) from denied

    statement._check_element_matches = element_matches  # type: ignore[method-assign,assignment]
    statement._check_conditions = check_conditions  # type: ignore[method-assign,assignment]
    access_control.IAMRequestBase.check_action_permitted = check_action_permitted  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    serialize_s3_puts()
    if "--enforce-iam" in argv:
        enforce_iam_as_locally_held()
        argv = [a for a in argv if a != "--enforce-iam"]
    if argv[:1] == ["--clock-start"]:
        import moto.firehose.models as firehose_models

        start = datetime.fromisoformat(argv[1])
        firehose_models.utcnow = lambda: ticking_from(start)
        argv = argv[2:]
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
