"""A moto server whose Firehose clock starts at a given instant and ticks from there.

    python -m local.moto_clock 2026-11-21T12:00:00 -H 127.0.0.1 -p 5000

Firehose stamps each object it writes with its arrival time (``landing/<stream>/YYYY/MM/DD/
HH/``), and a run claims what arrived on or before its date. moto is a separate process, so
a test cannot pin its clock from the inside; the tests start it through this module at noon
of a fixed day instead, so a suite started at 23:59 never sees its logs land on two days.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta


def ticking_from(start: datetime) -> datetime:
    """``start`` plus the real time elapsed since this process began (naive UTC, as moto's
    own ``utcnow``)."""
    return start.replace(tzinfo=None) + timedelta(seconds=time.monotonic() - _BEGAN)


_BEGAN = time.monotonic()


def main(argv: list[str]) -> None:
    start = datetime.fromisoformat(argv[0])
    import moto.firehose.models as firehose_models
    from moto.server import main as moto_main

    firehose_models.utcnow = lambda: ticking_from(start)
    moto_main(argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
