"""``make bench``: time each stage of the local pipeline on a larger demo, and the shipper's
throughput, and write the numbers to a JSON file. Speed lives here, never in a test."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from ingestion.firehose import ship_lines
from ingestion.generator import FILE_NAMES, DemoSpec, generate
from ingestion.local_aws import LOCAL_CREDENTIALS, moto_server
from ingestion.ship import read_lines
from orchestration.run_local import run_pipeline
from orchestration.settings import load_settings


class NullFirehose:
    """Accepts every record at once: measures the shipper's own cost."""

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict]) -> dict:
        return {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "x"}] * len(Records)}


def shipper_throughput(path: Path) -> dict[str, float]:
    size = path.stat().st_size
    start = time.perf_counter()
    count = sum(1 for _ in read_lines(path))
    raw = time.perf_counter() - start
    start = time.perf_counter()
    ship_lines(NullFirehose(), "null", read_lines(path))
    shipped = time.perf_counter() - start
    return {
        "lines": count,
        "megabytes": round(size / 1e6, 2),
        "raw_read_mb_per_s": round(size / 1e6 / raw, 1),
        "null_sink_mb_per_s": round(size / 1e6 / shipped, 1),
        "null_sink_lines_per_s": round(count / shipped),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=4.0)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    settings = load_settings("local")
    work = settings.work_dir / "bench"
    settings = replace(settings, work_dir=work)
    base = DemoSpec()
    spec = replace(
        base,
        days=args.days,
        customers=int(base.customers * args.scale),
        orders_per_day=int(base.orders_per_day * args.scale),
        visits_per_day=int(base.visits_per_day * args.scale),
    )
    started = time.perf_counter()
    generate(spec, work / "logs")
    generate_seconds = time.perf_counter() - started
    files = {name: [work / "logs" / file] for name, file in FILE_NAMES.items()}
    os.environ.update(LOCAL_CREDENTIALS)
    with moto_server(log_file=work / "moto.log") as endpoint:
        report = run_pipeline(settings.with_endpoint(endpoint), files)
    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "demo": {
            "scale": args.scale,
            "days": args.days,
            "lines": {n: c.read for n, c in report.streams.items()},
        },
        "seconds": {
            "generate": round(generate_seconds, 2),
            **{k: round(v, 2) for k, v in report.seconds.items()},
        },
        "shipper_web_log": shipper_throughput(work / "logs" / FILE_NAMES["web"]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
