"""moto's server as the local stand-in for AWS, with two things real AWS guarantees:

    python -m local.moto_stand_in [--clock-start 2026-11-21T12:00:00] -H 127.0.0.1 -p 5000

- **Atomic conditional writes.** S3 applies ``If-None-Match``/``If-Match`` puts atomically:
  of two runs claiming one landing object at once, exactly one wins (lake/zones.py relies
  on it). moto checks the condition and then writes, unlocked, in a threaded server, so
  under load both could win. Every S3 put is serialized here.
- **A pinned Firehose clock** (``--clock-start``). Firehose stamps each object with its
  arrival time (``landing/<stream>/YYYY/MM/DD/HH/``) and a run claims what arrived on or
  before its date. moto is a separate process, so a test cannot pin its clock from the
  inside; the tests start it at noon of a fixed day instead, so a suite started at 23:59
  never sees its logs land on two days.
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


def main(argv: list[str]) -> None:
    serialize_s3_puts()
    if argv[:1] == ["--clock-start"]:
        import moto.firehose.models as firehose_models

        start = datetime.fromisoformat(argv[1])
        firehose_models.utcnow = lambda: ticking_from(start)
        argv = argv[2:]
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
