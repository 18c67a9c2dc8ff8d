"""The moto servers' Firehose clock: noon of the day the test session started, ticking.

Objects land under ``landing/<stream>/YYYY/MM/DD/HH/`` stamped by that clock, so every
object a test ships arrives on ``ARRIVAL_DAY`` whatever the hour the suite runs at (a suite
takes minutes, not twelve hours); tests that need a run date take it from here or from the
run's own choice, never from ``now()``.
"""

from datetime import UTC, datetime

ARRIVAL = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
ARRIVAL_DAY = ARRIVAL.date()
