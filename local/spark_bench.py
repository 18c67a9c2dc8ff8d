"""Spark's rate at a million lines, for ``make bench``: the demo at that size shipped into
raw objects as Firehose delivers them, the Spark job run on them as the local runner runs it
(session start timed apart), and the DuckDB baseline on the same web objects.

Generating a million-line demo takes a while, so the logs and the raw objects are kept under
``.local/bench/spark-<lines>`` and reused while the generator's spec is the same.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import boto3

from lake.layout import LOG_FILES
from local import demo, duckdb_baseline
from local.aws import LOCAL_CREDENTIALS, moto_server, provision_pseudonym_key
from orchestration.runners.spark_job import job_arguments
from orchestration.runners.spark_local import spark_submit_command
from orchestration.settings import REPO_ROOT, SPARK_JOB
from shoplogs_agent.files import ship_file

# Web lines the demo writes per unit of scale (about 17,660), rounded down so a bench asked
# for a million lines gets at least that many.
WEB_LINES_PER_SCALE = 17_500
# The job reads its pseudonymization key from a local Secrets Manager, as in a run.
BENCH_SECRET = "shoplogs/bench/spark/pseudonym-key"  # pragma: allowlist secret
REGION = "us-east-1"
SESSION_PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
from job import build_session
build_session().stop()
"""


class ObjectWriter:
    """A Firehose stand-in that writes each batch as one object, as the delivery stream (and
    moto) does: the records' bytes, one after another."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        folder.mkdir(parents=True, exist_ok=True)

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict]) -> dict:
        self.count += 1
        path = self.folder / f"{DeliveryStreamName}-{self.count:06d}"
        path.write_bytes(b"".join(record["Data"] for record in Records))
        return {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "x"}] * len(Records)}


@dataclass(frozen=True)
class BenchInput:
    spec: demo.DemoSpec
    raw: Path  # holds customers/, orders/, web/: the job's --input
    lines: dict[str, int]  # lines each stream's log holds
    generate_seconds: float  # 0 when reused from an earlier bench

    @property
    def run_date(self) -> date:
        """The day after the demo's last: every event arrived by then."""
        return self.spec.start + timedelta(days=self.spec.days)


def prepare(web_lines: int, cache: Path) -> BenchInput:
    """The demo with about ``web_lines`` web lines (customers and orders in proportion),
    shipped into raw objects; generated once and reused while its spec stays the same."""
    spec = demo.scaled(web_lines / WEB_LINES_PER_SCALE)
    folder = cache / f"spark-{web_lines}"
    marker = folder / "spec.json"
    wanted = json.dumps(asdict(spec), default=str, sort_keys=True)
    started = time.perf_counter()
    if not marker.is_file() or marker.read_text() != wanted:
        shutil.rmtree(folder, ignore_errors=True)
        demo.generate(spec, folder / "logs")
        for stream, name in LOG_FILES.items():
            ship_file(
                ObjectWriter(folder / "raw" / stream), f"bench-{stream}", folder / "logs" / name
            )
        marker.write_text(wanted)
        seconds = time.perf_counter() - started
    else:
        seconds = 0.0
    lines = {stream: _count_lines(folder / "logs" / name) for stream, name in LOG_FILES.items()}
    return BenchInput(spec, folder / "raw", lines, round(seconds, 2))


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


def _spark_env() -> dict[str, str]:
    return {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }


def session_start_seconds(work: Path) -> float:
    """spark-submit of a job that only builds the job's session and stops it: the JVM, the
    Python workers' launcher and the session, with the runner's flags."""
    probe = work / "session_probe.py"
    probe.write_text(SESSION_PROBE)
    command = spark_submit_command(job_arguments("-", "-", date(2000, 1, 1)))
    command = [*command[: command.index(str(SPARK_JOB))], str(probe), str(Path(SPARK_JOB).parent)]
    started = time.perf_counter()
    subprocess.run(command, env=_spark_env(), check=True, capture_output=True)
    return time.perf_counter() - started


def _timed_lines(command: list[str], log: Path, env: dict[str, str]) -> Iterator[tuple[float, str]]:
    """Each line the job prints to stdout, with the seconds since it started."""
    started = time.perf_counter()
    with (
        log.open("w") as errors,
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=errors, text=True
        ) as process,
    ):
        assert process.stdout is not None
        for line in process.stdout:
            yield time.perf_counter() - started, line
        if process.wait() != 0:
            raise RuntimeError(f"the Spark job failed; see {log}")
    yield time.perf_counter() - started, ""


def spark_job(bench: BenchInput, work: Path, confs: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the job on every stream (with ``confs`` over the runner's Spark settings); each
    stream's seconds run from the previous stream's counts line (the first from the job's
    start) to its own."""
    output = work / "spark-output"
    shutil.rmtree(output, ignore_errors=True)
    command = with_confs(
        spark_submit_command(
            job_arguments(
                str(bench.raw), str(output), bench.run_date, pseudonym_secret=BENCH_SECRET
            )
        ),
        confs,
    )
    streams: dict[str, Any] = {}
    previous, total = 0.0, 0.0
    with moto_server(work / "moto.log") as endpoint:
        secretsmanager = boto3.client(
            "secretsmanager", endpoint_url=endpoint, region_name=REGION,
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )  # fmt: skip
        provision_pseudonym_key(secretsmanager, BENCH_SECRET)
        env = {**_spark_env(), **LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint,
               "AWS_DEFAULT_REGION": REGION}  # fmt: skip
        for at, line in _timed_lines(command, work / "spark-job.log", env):
            total = at
            if line.startswith("{"):
                counts = json.loads(line)
                stream = counts.pop("stream")
                counts.pop("pseudonym_key", None)
                streams[stream] = {"seconds": round(at - previous, 2), **counts}
                previous = at
    return {"total_seconds": round(total, 2), "streams": streams}


def with_confs(command: list[str], confs: dict[str, str] | None) -> list[str]:
    """``command`` (a spark-submit call) with ``--conf`` pairs added before the job's file:
    later ones win over the runner's own."""
    at = command.index(str(SPARK_JOB))
    added = [arg for key, value in (confs or {}).items() for arg in ("--conf", f"{key}={value}")]
    return [*command[:at], *added, *command[at:]]


# The cheap levers on the job's web rate, each a Spark setting tried alone on the same lines
# in the same bench (the job already caches each row's fate once and parses a line with one
# regex pass: spark/preprocess). AQE is on by default in Spark 3.5; the runner asks for 4
# shuffle partitions on 2 cores.
LEVERS = {
    "shuffle_partitions_equal_cores": {"spark.sql.shuffle.partitions": "2"},
    "aqe_off": {"spark.sql.adaptive.enabled": "false"},
    "aqe_coalesce_to_cores": {
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.minPartitionNum": "2",
        "spark.sql.adaptive.advisoryPartitionSizeInBytes": "256m",
    },
}


def levers(bench: BenchInput, work: Path, runner_web_seconds: float) -> dict[str, Any]:
    """Each lever's web seconds and its speed-up over the runner's settings, measured in
    this bench beside them (a ratio holds on a busy machine where the seconds do not)."""
    results = {}
    for name, confs in LEVERS.items():
        web = spark_job(bench, work, confs)["streams"]["web"]
        results[name] = {
            "confs": confs,
            "web_seconds": web["seconds"],
            "speedup_over_runner": round(runner_web_seconds / web["seconds"], 2),
        }
    return results


def measure(web_lines: int, cache: Path) -> dict[str, Any]:
    """The figures ``bench/results.json`` holds under ``spark`` and ``duckdb_baseline``."""
    bench = prepare(web_lines, cache)
    work = cache / "work"
    work.mkdir(parents=True, exist_ok=True)
    session = session_start_seconds(work)
    job = spark_job(bench, work)
    baseline = duckdb_baseline.run(bench.raw / "web", work / "duckdb-output", bench.run_date)
    web = job["streams"]["web"]
    _check_same_counts(web, baseline)
    read = sum(stream["read"] for stream in job["streams"].values())
    spark_rate = web["read"] / web["seconds"]
    duckdb_rate = baseline.read / baseline.seconds
    tried = levers(bench, work, web["seconds"])
    cores = os.cpu_count() or 1
    return {
        "spark": {
            "lines": read,
            "generate_seconds": bench.generate_seconds,
            "session_start_seconds": round(session, 2),
            "job_seconds": job["total_seconds"],
            "lines_per_second": round(read / (job["total_seconds"] - session)),
            "streams": job["streams"],
            "web_lines_per_second": round(spark_rate),
            "share_of_duckdb_rate": round(spark_rate / duckdb_rate, 2),
            # The job's per-core rate on the web stream (local[2]: both cores busy), the
            # figure docs/scale.md sizes an EMR fleet from; and what the JVM's start costs.
            "web_lines_per_core_second": round(spark_rate / cores),
            "session_start_share_of_job": round(session / job["total_seconds"], 3),
            "levers": tried,
            "best_lever_share_of_duckdb_rate": round(
                max(lever["speedup_over_runner"] for lever in tried.values())
                * spark_rate
                / duckdb_rate,
                2,
            ),
        },
        "duckdb_baseline": {
            "stream": "web",
            "lines": baseline.read,
            "seconds": round(baseline.seconds, 2),
            "lines_per_second": round(duckdb_rate),
        },
    }


def _check_same_counts(spark: dict[str, Any], baseline: duckdb_baseline.BaselineResult) -> None:
    """Both engines must have done the same work, or the rates compare nothing."""
    mine = (baseline.read, baseline.processed, baseline.duplicates, baseline.quarantined)
    theirs = (spark["read"], spark["processed"], spark["duplicates"], spark["quarantined"])
    if mine != theirs:
        raise RuntimeError(f"DuckDB baseline counted {mine}, the Spark job {theirs}")
