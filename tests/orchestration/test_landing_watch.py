"""The debounced asset watcher: when new landing objects start a run (each run is an EMR
cluster), as a pure decision, as a day of Firehose flushes, and as the trigger's loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestration import landing_watch
from orchestration.landing_watch import DEFAULT, Debounce, DebouncedSqsTrigger, Pending

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def pending(*minutes: int) -> Pending:
    state = Pending()
    for minute in minutes:
        state = state.add([f"landing/web/{minute}"], T0 + minute * MIN)
    return state


@pytest.mark.parametrize(
    ("arrivals", "now", "starts"),
    [
        ((), 24 * 60, False),  # nothing new: only the nightly schedule runs
        ((0, 5, 10), 30, False),  # a burst, too young: wait for more
        ((0, 5, 10), 119, False),  # quiet long enough, but not yet two hours old
        ((0, 5, 10), 120, True),  # two hours since the first, quiet since minute 10
        ((0, 60, 115), 120, False),  # two hours old but still arriving: let it settle
        ((0, 60, 115), 130, True),  # ... until landing has been quiet for 15 minutes
        (tuple(range(0, 360, 5)), 359, False),  # steady traffic is never quiet ...
        (tuple(range(0, 361, 5)), 360, True),  # ... and still gets a run after six hours
    ],
)
def test_should_start(arrivals: tuple[int, ...], now: int, starts: bool) -> None:
    assert landing_watch.should_start(pending(*arrivals), T0 + now * MIN, DEFAULT) is starts


def runs_started(
    arrivals: list[datetime], days: int, poll: timedelta = timedelta(seconds=30)
) -> int:
    """Event-started runs over ``days`` of the trigger polling every ``poll`` (it starts again
    with nothing pending after each event, as the triggerer re-runs a watcher's trigger)."""
    runs, state, due = 0, Pending(), iter(sorted(arrivals))
    upcoming = next(due, None)
    now = T0
    while now < T0 + timedelta(days=days):
        batch = []
        while upcoming is not None and upcoming <= now:
            batch.append("landing/x")
            upcoming = next(due, None)
        state = state.add(batch, now)
        if landing_watch.should_start(state, now, DEFAULT):
            runs, state = runs + 1, Pending()
        now += poll
    return runs


def test_three_streams_flushing_all_week_start_four_runs_a_day_not_hundreds() -> None:
    # Firehose's 300 s buffer: each stream writes an object every five minutes, all week.
    week = 7 * 24 * 12
    flushes = [T0 + i * 5 * MIN + s * MIN for i in range(week) for s in range(3)]
    assert len(flushes) // 7 == 864  # a day of asset events from the plain SqsSensorTrigger
    # One run per six hours (orchestration/README.md's cost), less the minute each window
    # waits for its first object.
    assert 7 * 4 - 1 <= runs_started(flushes, days=7) <= 7 * 4


def test_bursts_start_at_most_one_run_per_two_hours_and_a_quarter() -> None:
    # The worst shape: a burst just after each window closes, quiet just long enough.
    bursts = [T0 + k * (135 * MIN) + m * MIN for k in range(11) for m in (0, 1)]
    assert runs_started(bursts, days=1) <= 24 * 60 // 135


def test_pending_keeps_a_few_keys_and_counts_all() -> None:
    state = Pending().add([], T0)
    assert state == Pending()  # an empty poll starts no window
    state = state.add([f"k{i}" for i in range(80)], T0).add(["late"], T0 + MIN)
    assert state.count == 81 and len(state.keys) == landing_watch.KEYS_IN_EVENT
    assert (state.first_seen, state.last_seen) == (T0, T0 + MIN)


def test_landing_keys_decodes_s3_events_and_counts_the_other_messages() -> None:
    event = {"Records": [{"s3": {"object": {"key": "landing%2Fweb%2Fa+b.gz"}}}]}
    messages = [{"Body": json.dumps(event)}, {"Body": '{"Event": "s3:TestEvent"}'},
                {"Body": "not json"}, {"Body": '["a list"]'}]  # fmt: skip
    assert landing_watch.landing_keys(messages) == (["landing/web/a b.gz"], 3)


def test_a_debounce_that_cannot_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="min_wait <= max_wait"):
        Debounce(min_wait=timedelta(hours=7))


@pytest.fixture
def trigger(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DebouncedSqsTrigger, list[Any]]]:
    """The trigger with its edges replaced: a queue that returns ``batches`` in turn, and a
    clock the pause between polls moves on."""
    batches: list[Any] = []
    subject = DebouncedSqsTrigger(sqs_queue="http://queue", waiter_delay=300)
    now = [T0]

    class Connection:
        async def __aenter__(self) -> Connection:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

    class Hook:
        async def get_async_conn(self) -> Connection:
            return Connection()

    async def poke(client: Any) -> list[Any]:
        return batches.pop(0) if batches else []

    async def pause(seconds: float) -> None:
        now[0] += timedelta(seconds=seconds)

    monkeypatch.setattr(DebouncedSqsTrigger, "hook", property(lambda self: Hook()))
    monkeypatch.setattr(subject, "poke", poke)
    monkeypatch.setattr(subject, "clock", lambda: now[0])
    monkeypatch.setattr(subject, "pause", pause)
    yield subject, batches


def s3_message(key: str) -> dict[str, str]:
    return {"Body": json.dumps({"Records": [{"s3": {"object": {"key": key}}}]})}


def test_the_trigger_holds_batches_back_and_fires_once_with_all_of_them(
    trigger: tuple[DebouncedSqsTrigger, list[Any]],
) -> None:
    subject, batches = trigger
    # Two batches five minutes apart, then nothing: the run starts two hours after the first.
    batches += [[s3_message("landing/web/1")], [s3_message("landing/orders/2")]]

    async def events() -> list[Any]:
        return [event async for event in subject.run()]

    [event] = asyncio.run(events())
    assert event.payload == {
        "status": "success",
        "objects": 2,
        "first_seen": T0.isoformat(),
        "last_seen": (T0 + 5 * MIN).isoformat(),
        "keys": ["landing/web/1", "landing/orders/2"],
    }


def test_the_trigger_round_trips_through_serialize() -> None:
    subject = DebouncedSqsTrigger(sqs_queue="http://queue", quiet_seconds=60)
    classpath, kwargs = subject.serialize()
    assert classpath == "orchestration.landing_watch.DebouncedSqsTrigger"
    again = DebouncedSqsTrigger(**kwargs)
    assert again.rule == Debounce(quiet=MIN) and again.sqs_queue == "http://queue"
