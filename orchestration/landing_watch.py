"""When new landing objects start a pipeline run: the DAG's asset watcher, debounced.

Firehose flushes each of the three streams every few minutes, and S3 sends an SQS message for
every object. Provider's ``SqsSensorTrigger`` turns each batch it receives into an asset event,
so the DAG ran, and started a transient EMR cluster, all day long. ``DebouncedSqsTrigger``
reads the same queue but holds the messages back until :func:`should_start` says a run is
worth a cluster: the first new object has waited ``min_wait`` and the landing zone has then
been quiet for ``quiet`` (a burst, e.g. a host catching up, goes into one run), or the first
new object has waited ``max_wait`` (steady traffic, never quiet, still gets a run every
``max_wait``). The nightly schedule still covers the whole previous day; orchestration/README.md
has what each design costs a day.

The pending count lives in the trigger: the messages are deleted from the queue as they are
read (as ``SqsSensorTrigger`` does), so a triggerer restart forgets what was pending; those
objects then wait for the next new object's window or the nightly run, never longer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from airflow.providers.amazon.aws.triggers.sqs import SqsSensorTrigger
from airflow.triggers.base import TriggerEvent

# Keys named in an event (the asset event's extra, shown in the UI): enough to see what
# started a run without storing hours of messages in the metadata database.
KEYS_IN_EVENT = 50


@dataclass(frozen=True)
class Debounce:
    """How long new landing objects wait before they start a run."""

    quiet: timedelta = timedelta(minutes=15)
    min_wait: timedelta = timedelta(hours=2)
    max_wait: timedelta = timedelta(hours=6)

    def __post_init__(self) -> None:
        if not timedelta(0) <= self.min_wait <= self.max_wait:
            raise ValueError(f"need 0 <= min_wait <= max_wait, got {self}")


@dataclass(frozen=True)
class Pending:
    """New landing objects read from the queue and not yet handed to a run."""

    count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    keys: tuple[str, ...] = field(default=())

    def add(self, keys: Iterable[str], at: datetime) -> Pending:
        new = tuple(keys)
        if not new:
            return self
        kept = (self.keys + new)[:KEYS_IN_EVENT]
        return Pending(self.count + len(new), self.first_seen or at, at, kept)


def should_start(pending: Pending, now: datetime, rule: Debounce) -> bool:
    """Whether the objects pending at ``now`` start a run (see the module's docstring)."""
    if pending.first_seen is None or pending.last_seen is None:
        return False
    waited = now - pending.first_seen
    quiet_for = now - pending.last_seen
    return waited >= rule.max_wait or (waited >= rule.min_wait and quiet_for >= rule.quiet)


DEFAULT = Debounce()


def landing_keys(messages: Iterable[Mapping[str, Any]]) -> tuple[list[str], int]:
    """The object keys in S3 event notifications (URL-encoded by S3), and how many messages
    named no object: S3's ``s3:TestEvent`` when the notification is set up, or anything else
    that reached the queue. Those open no window (no object landed); the trigger logs them."""
    keys, other = [], 0
    for message in messages:
        try:
            records = json.loads(message.get("Body", "")).get("Records") or []
        except (ValueError, AttributeError):
            records = []
        found = [r.get("s3", {}).get("object", {}).get("key") for r in records]
        keys += [unquote_plus(key) for key in found if key]
        other += not any(found)
    return keys, other


def utc_now() -> datetime:
    return datetime.now(UTC)


class DebouncedSqsTrigger(SqsSensorTrigger):
    """``SqsSensorTrigger`` that fires one event per :class:`Debounce` window, not per batch."""

    # The edges a test replaces: the time a batch arrived, and the pause between polls.
    clock: Callable[[], datetime] = staticmethod(utc_now)
    pause: Callable[[float], Awaitable[None]] = staticmethod(asyncio.sleep)

    def __init__(
        self,
        *,
        quiet_seconds: int = int(DEFAULT.quiet.total_seconds()),
        min_wait_seconds: int = int(DEFAULT.min_wait.total_seconds()),
        max_wait_seconds: int = int(DEFAULT.max_wait.total_seconds()),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rule = Debounce(
            timedelta(seconds=quiet_seconds),
            timedelta(seconds=min_wait_seconds),
            timedelta(seconds=max_wait_seconds),
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        classpath = f"{type(self).__module__}.{type(self).__qualname__}"
        return classpath, {
            **kwargs,
            "quiet_seconds": int(self.rule.quiet.total_seconds()),
            "min_wait_seconds": int(self.rule.min_wait.total_seconds()),
            "max_wait_seconds": int(self.rule.max_wait.total_seconds()),
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        pending = Pending()
        while True:
            async with await self.hook.get_async_conn() as client:
                messages = await self.poke(client=client)
            now = self.clock()
            keys, other = landing_keys(messages)
            if other:
                self.log.info("%d message(s) on %s named no landing object", other, self.sqs_queue)
            pending = pending.add(keys, now)
            if should_start(pending, now, self.rule):
                assert pending.first_seen and pending.last_seen
                yield TriggerEvent(
                    {
                        "status": "success",
                        "objects": pending.count,
                        "first_seen": pending.first_seen.isoformat(),
                        "last_seen": pending.last_seen.isoformat(),
                        "keys": list(pending.keys),
                    }
                )
                return
            await self.pause(self.waiter_delay)
