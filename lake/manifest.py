"""The run manifest: what a run claimed, published and set aside, with its counts.

Written when a run is promoted; the load, the summary and the run report read it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from lake import layout
from lake.stats import RunStats


@dataclass(frozen=True)
class Manifest:
    run_date: str
    claimed: list[str]
    published: list[str]
    stats: RunStats
    quarantined_objects: Mapping[str, str] = field(default_factory=dict)  # key -> reason

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_date": self.run_date,
            "claimed": list(self.claimed),
            "published": list(self.published),
            "stats": self.stats.to_dict(),
            "quarantined_objects": dict(sorted(self.quarantined_objects.items())),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Manifest:
        return cls(
            run_date=str(raw["run_date"]),
            claimed=list(raw["claimed"]),
            published=list(raw["published"]),
            stats=RunStats.from_dict(raw["stats"]),
            quarantined_objects=dict(raw.get("quarantined_objects", {})),
        )

    def partition_files(self) -> dict[str, list[str]]:
        """``{dataset: [Parquet file names]}`` of the run's processed partition."""
        files: dict[str, list[str]] = {}
        for key in self.published:
            if found := layout.processed_parquet(key):
                dataset, name = found
                files.setdefault(dataset, []).append(name)
        return {dataset: sorted(names) for dataset, names in sorted(files.items())}


def write_manifest(s3: Any, bucket: str, manifest: Manifest) -> str:
    key = layout.manifest_key(date.fromisoformat(manifest.run_date))
    body = json.dumps(manifest.to_dict(), indent=2, sort_keys=True).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return key


def read_manifest(s3: Any, bucket: str, run_date: date) -> Manifest:
    key = layout.manifest_key(run_date)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey as exc:
        raise FileNotFoundError(
            f"no run manifest at {layout.uri(bucket, key)}: run date {run_date} has not been "
            "promoted; run the pipeline for that date first"
        ) from exc
    return Manifest.from_dict(json.loads(body))
