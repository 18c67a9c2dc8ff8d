"""``make bench``: time each stage of the local pipeline on a larger demo, the shipper's
throughput, DAG-file parse time (Cosmos manifest vs dbt ls), the dbt stage under Airflow +
Cosmos vs a plain ``dbt build``, load + build on each warehouse engine (DuckDB and the
PostgreSQL / fakesnow stand-ins), and the Spark job's rate on a million web lines beside a
DuckDB baseline doing the same work; write the numbers to a JSON file.
Speed lives here, never in a test."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from lake.layout import LOG_FILES
from local import bench_scheduler, demo, spark_bench
from local.airflow_runner import task_seconds
from local.aws import LOCAL_CREDENTIALS, RUN_PORT, moto_server
from local.bench_incremental import daily_builds
from local.run import fresh_warehouse, run_pipeline, run_pipeline_in_airflow
from local.warehouses import load_partition, run_setup_script, running
from orchestration import stages
from orchestration.run_report import DirStore, past_reports
from orchestration.runners.dbt import PARSE_INPUTS, build_manifest
from orchestration.settings import REPO_ROOT, Settings, load_settings
from orchestration.summary import RunReport
from shoplogs_agent.files import read_chunks, ship_file
from shoplogs_agent.shipper import Flow, Shipper, ShipperConfig

PARSE_PROBE = """
import sys, time
from datetime import datetime, timezone
from pathlib import Path
from airflow.sdk import DAG
from cosmos import DbtTaskGroup, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import LoadMode
from airflow.dag_processing.dagbag import DagBag
from airflow.dag_processing.processor import _pre_import_airflow_modules
mode = sys.argv[1]
project = Path("dbt_project").resolve()
# As Airflow's DAG processor does before it parses a file (parsing_pre_import_modules).
_pre_import_airflow_modules("orchestration/dags/shoplogs_pipeline.py", None)
start = time.perf_counter()
if mode == "dagbag":
    bag = DagBag(dag_folder="orchestration/dags")
    assert not bag.import_errors, bag.import_errors
else:
    with DAG("probe", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)):
        DbtTaskGroup(
            project_config=ProjectConfig(project, manifest_path=project / "target/manifest.json"
                                         if mode == "manifest" else None),
            profile_config=ProfileConfig(profile_name="shoplogs", target_name="duckdb",
                                         profiles_yml_filepath=project / "profiles.yml"),
            render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST if mode == "manifest"
                                       else LoadMode.DBT_LS),
        )
print(time.perf_counter() - start)
"""


class NullFirehose:
    """Accepts every record at once: measures the shipper's own cost."""

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict]) -> dict:
        return {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "x"}] * len(Records)}


def best_of(runs: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def tail_to_null(path: Path, work: Path) -> None:
    """The tailing shipper (what runs on a web host: checkpoints saved once per turn) sends
    ``path`` from its start to a null sink."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = ShipperConfig(work / "checkpoints", (Flow(str(path), "null", False),))
    shipper = Shipper(config, NullFirehose())
    while shipper.poll_once():
        pass
    for _, tailer in shipper.tailers:
        tailer.close()


def shipper_throughput(
    path: Path, firehose: object, endpoint_path: Path, work: Path
) -> dict[str, float]:
    """Lines/s and MB/s (best of 5) of ``path``: reading the file raw (blocks + newline
    count) and shipping it to a null sink; and shipping ``endpoint_path`` to the local
    Firehose endpoint (moto, best of 2). ``path`` should be large: on a small file both
    reads take milliseconds and their ratio is noise (0.34 to 0.57 on a 15 MB log)."""
    size = path.stat().st_size
    count = sum(chunk.count(b"\n") for _, chunk in read_chunks(path))
    raw = best_of(5, lambda: sum(chunk.count(b"\n") for _, chunk in read_chunks(path)))
    null = best_of(5, lambda: ship_file(NullFirehose(), "null", path))
    tailing = best_of(5, lambda: tail_to_null(path, work / "tailing"))
    endpoint_size = endpoint_path.stat().st_size
    endpoint_count = sum(chunk.count(b"\n") for _, chunk in read_chunks(endpoint_path))
    local = best_of(2, lambda: ship_file(firehose, "shoplogs-local-web", endpoint_path))
    return {
        "lines": count,
        "megabytes": round(size / 1e6, 2),
        "raw_read_mb_per_s": round(size / 1e6 / raw, 1),
        "null_sink_mb_per_s": round(size / 1e6 / null, 1),
        "null_sink_lines_per_s": round(count / null),
        "null_sink_share_of_raw_read": round(raw / null, 2),
        "tailing_null_sink_mb_per_s": round(size / 1e6 / tailing, 1),
        "tailing_null_sink_share_of_raw_read": round(raw / tailing, 2),
        "local_endpoint_mb_per_s": round(endpoint_size / 1e6 / local, 1),
        "local_endpoint_lines_per_s": round(endpoint_count / local),
    }


def parse_seconds(mode: str, runs: int = 3) -> float:
    """Best of ``runs``: the time to parse, after Python and Airflow are imported."""
    env = {**os.environ, "AIRFLOW__COSMOS__ENABLE_CACHE": "False", "SCARF_NO_ANALYTICS": "true",
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONPATH": str(REPO_ROOT),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", PARSE_PROBE, mode], cwd=REPO_ROOT,
                             env=env, capture_output=True, text=True, check=True)  # fmt: skip
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return round(min(times), 3)


def dbt_stage_under_airflow(log: Path) -> float:
    """Wall time from the first dbt task's start (the watcher's producer: its one ``dbt
    build``) to the last per-model task's end in a DAG test."""
    return round(task_seconds(log.read_text(errors="replace").splitlines())["dbt"], 2)


def warehouse_builds(settings: Settings, run_date: date) -> dict[str, dict[str, float]]:
    """Load the run's partition and build the project on each engine: DuckDB, and the
    stand-ins for Redshift (PostgreSQL) and Snowflake (fakesnow)."""
    timings = {}
    for engine in ("duckdb", "postgres", "fakesnow"):
        work = settings.work_dir / f"warehouse-{engine}"
        engine_settings = replace(settings, warehouse=engine, work_dir=work)
        with running(engine, work):
            if engine != "duckdb":
                run_setup_script(engine, engine_settings)
            started = time.perf_counter()
            load_partition(engine_settings, run_date)
            loaded = time.perf_counter()
            stages.build_warehouse(engine_settings, run_date=run_date)
            built = time.perf_counter()
        timings[engine] = {
            "load_seconds": round(loaded - started, 2),
            "dbt_build_seconds": round(built - loaded, 2),
        }
    return timings


ACCESS_LOG_LINES = 10_000


def forget_parse_and_docs(settings: Settings) -> None:
    """As after an edit to a model: the next run parses the project and generates docs."""
    PARSE_INPUTS.unlink(missing_ok=True)
    shutil.rmtree(settings.work_dir / "docs-site", ignore_errors=True)


def run_stages(report: RunReport) -> dict[str, float]:
    """The run's own stages (shipping, parse) and the DAG's tasks, in seconds."""
    own = {k: round(v, 2) for k, v in report.seconds.items() if k != "airflow dag"}
    return own | {f"dag: {k}": round(v, 2) for k, v in report.dag_seconds.items()}


def make_run(work: Path, args: list[str]) -> tuple[float, RunReport]:
    """The wall seconds of ``make run ARGS=...`` in the work folder ``work`` (its install
    check, Python's start, local AWS, the run, its report), and the report it published."""
    work.mkdir(parents=True, exist_ok=True)
    command = ["make", "--no-print-directory", "run", f"ARGS={shlex.join(args)}"]
    env = {**os.environ, "SHOPLOGS_WORK_DIR": str(work)}
    started = time.perf_counter()
    with (work / "make-run.log").open("a") as log:
        subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                       check=True)  # fmt: skip
    wall = time.perf_counter() - started
    [report] = past_reports(DirStore(work / "site" / "report"), keep=1)
    return wall, report


def make_run_seconds(wall: float, report: RunReport) -> dict[str, object]:
    """A ``make run``'s wall seconds, its stages, and what the stages do not cover: the
    command's own start and end (make, Python's imports, local AWS's start, the report)."""
    stages = run_stages(report)
    return {
        "seconds": round(wall, 2),
        "stages": stages,
        "outside_stages_seconds": round(wall - sum(report.seconds.values()), 2),
    }


def first_lines(source: Path, count: int, target: Path) -> Path:
    """The first ``count`` lines of ``source``, as a log file of their own."""
    with source.open("rb") as lines:
        target.write_bytes(b"".join(itertools.islice(lines, count)))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=4.0)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"))
    parser.add_argument(
        "--spark-lines",
        type=int,
        default=1_000_000,
        help="web lines for the Spark rate and its DuckDB baseline (0 skips them)",
    )
    parser.add_argument(
        "--daily-runs",
        type=int,
        default=30,
        help="daily dbt builds for the incremental cost's growth (0 skips them)",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    settings = load_settings("local")
    # The figures are only as good as the machine was idle: its load is kept beside them.
    load_at_start = os.getloadavg()[1]
    work = settings.work_dir / "bench"
    settings = replace(settings, work_dir=work)
    started = time.perf_counter()
    demo.generate(demo.scaled(args.scale, args.days), work / "logs")
    generate_seconds = time.perf_counter() - started
    files = demo.log_files(work / "logs")
    os.environ.update(LOCAL_CREDENTIALS)
    # The shipper's share is measured on the Spark bench's million-line log (made once).
    big_log = (
        spark_bench.prepare(args.spark_lines, work).raw.parent / "logs" / LOG_FILES["web"]
        if args.spark_lines > 0
        else None
    )
    with moto_server(log_file=work / "moto.log", port=RUN_PORT) as endpoint:
        local = settings.with_endpoint(endpoint)
        report = run_pipeline(local, files)
        warehouses = warehouse_builds(local, date.fromisoformat(report.run_date))
        # As a first `make run` leaves it: the builds above parsed the project for other
        # targets, and dbt's partial parse keeps one profile's state.
        build_manifest(local, work / "logs" / "dbt.log")
    with moto_server(log_file=work / "moto.log", port=RUN_PORT) as endpoint:
        local = settings.with_endpoint(endpoint)
        # `make run` after a change to the models (dbt parses, docs are generated), then
        # again unchanged: the fixed costs a second run no longer pays, in the same process.
        forget_parse_and_docs(local)
        fresh_warehouse(local)
        changed = run_pipeline_in_airflow(local, files)
        fresh_warehouse(local)
        in_airflow = run_pipeline_in_airflow(local, files)
        dbt_airflow = dbt_stage_under_airflow(work / "logs" / "airflow.log")
        dbt_plain = bench_scheduler.plain_dbt_build(local, date.fromisoformat(in_airflow.run_date))
        demo_log = work / "logs" / LOG_FILES["web"]
        shipper = shipper_throughput(big_log or demo_log, stages.aws_client(local, "firehose"),
                                     demo_log, work / "shipper")  # fmt: skip
    # The README's first command as a user types it, twice (the second is measured), then
    # on a 10,000-line access log: `make run` itself, from its install check to its report.
    make_runs = work / "make-run"
    shutil.rmtree(make_runs, ignore_errors=True)
    make_run(make_runs, [])
    demo_wall, demo_run = make_run(make_runs, [])
    access_log = first_lines(demo_log, ACCESS_LOG_LINES, work / "access.log")
    access_log_wall, access_log_run = make_run(make_runs, ["--web", str(access_log)])
    scheduler = bench_scheduler.measure(replace(settings, work_dir=work / "scheduler"), files)
    rates = spark_bench.measure(args.spark_lines, work) if args.spark_lines > 0 else {}
    incremental = (
        {"incremental": daily_builds(settings, work / "daily", args.daily_runs)}
        if args.daily_runs > 0
        else {}
    )
    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_5_min": {"start": load_at_start, "end": os.getloadavg()[1]},
        },
        # The local runs' Spark: one warm session the first run starts, or a spark-submit each.
        "spark_session": "warm" if settings.spark_session_dir else "fresh",
        "demo": {
            "scale": args.scale,
            "days": args.days,
            "lines": {n: c.read for n, c in report.streams.items()},
        },
        "seconds": {
            "generate": round(generate_seconds, 2),
            **{k: round(v, 2) for k, v in report.seconds.items()},
        },
        "shipper_web_log": shipper,
        "warehouses": warehouses,
        "airflow": {
            "dag_test_seconds": round(in_airflow.seconds["airflow dag"], 2),
            "dbt_stage_cosmos_seconds": dbt_airflow,
            "dbt_build_plain_seconds": dbt_plain,
            "dbt_stage_ratio": round(dbt_airflow / dbt_plain, 2),
            # `make run` as a second run on the demo: everything but the install.
            "make_run_seconds": round(sum(in_airflow.seconds.values()), 2),
            "make_run_stages": run_stages(in_airflow),
            # The same run after a change to the models: dbt parses, docs are generated.
            "make_run_models_changed_seconds": round(sum(changed.seconds.values()), 2),
            "make_run_models_changed_stages": run_stages(changed),
            # Against a plain build of the same work, measured right after it.
            "scheduler": scheduler,
            "make_run_demo": {
                "web_lines": demo_run.streams["web"].read,
                **make_run_seconds(demo_wall, demo_run),
            },
            "make_run_access_log": {
                "lines": access_log_run.streams["web"].read,
                **make_run_seconds(access_log_wall, access_log_run),
            },
            "parse_seconds": {
                "dag_file_manifest": parse_seconds("dagbag"),
                "cosmos_group_manifest": parse_seconds("manifest"),
                "cosmos_group_dbt_ls": parse_seconds("dbt_ls"),
            },
        },
        **rates,
        **incremental,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
