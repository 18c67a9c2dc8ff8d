"""Run statistics: what the Spark job counted per stream, as it writes them beside its output
and as the run manifest and the summary read them.

Standard library only: the Spark job imports this module on EMR.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class StreamStats:
    """One stream's lines in one run: every line read is processed, quarantined with a
    reason, or dropped as a duplicate of an event already kept; and the lines of erased
    customers the run's claim took out before the Spark job read anything (``erased``).
    So every line that entered the run's raw objects is one of the four."""

    read: int = 0
    processed: int = 0
    duplicates: int = 0
    quarantined: Mapping[str, int] = field(default_factory=dict)  # reason -> lines
    # The secret and version that keyed the stream's pseudonyms (web): a rotation shows here.
    pseudonym_key: Mapping[str, str] = field(default_factory=dict)
    erased: int = 0  # counted by the claim, not the Spark job (its own stats say 0)

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    @property
    def accounted(self) -> int:
        """What became of the lines the Spark job read (``read``)."""
        return self.processed + self.quarantined_total + self.duplicates

    @property
    def entered(self) -> int:
        """Lines that entered the run: those the Spark job read and those erased before."""
        return self.read + self.erased

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, Any] = {
            "read": self.read,
            "processed": self.processed,
            "duplicates": self.duplicates,
            "quarantined": dict(sorted(self.quarantined.items())),
            "erased": self.erased,
        }
        if self.pseudonym_key:
            counts["pseudonym_key"] = dict(sorted(self.pseudonym_key.items()))
        return counts

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> StreamStats:
        return cls(
            read=int(raw["read"]),
            processed=int(raw["processed"]),
            duplicates=int(raw["duplicates"]),
            quarantined={str(k): int(v) for k, v in raw.get("quarantined", {}).items()},
            pseudonym_key={str(k): str(v) for k, v in raw.get("pseudonym_key", {}).items()},
            erased=int(raw.get("erased", 0)),  # manifests written before it was counted
        )


@dataclass(frozen=True)
class RunStats:
    run_date: str
    streams: Mapping[str, StreamStats] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_date": self.run_date,
            "streams": {name: s.to_dict() for name, s in sorted(self.streams.items())},
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RunStats:
        streams = {name: StreamStats.from_dict(s) for name, s in raw["streams"].items()}
        return cls(run_date=str(raw["run_date"]), streams=streams)


def with_erased(stats: RunStats, erased: Mapping[str, int]) -> RunStats:
    """The Spark job's counts with the lines the claim erased, per stream (a stream whose
    every line was erased still shows, with nothing read)."""
    streams = dict(stats.streams)
    for name, lines in erased.items():
        streams[name] = replace(streams.get(name, StreamStats()), erased=lines)
    return RunStats(stats.run_date, streams)


def stream_stats_line(stream: str, stats: StreamStats) -> str:
    """The one-line JSON file the Spark job writes per stream."""
    return json.dumps({"stream": stream, **stats.to_dict()}, sort_keys=True)


def parse_stream_stats_line(text: str) -> tuple[str, StreamStats]:
    raw = json.loads(text)
    return str(raw["stream"]), StreamStats.from_dict(raw)
