"""Run the whole pipeline on this machine: moto as AWS, local Spark, DuckDB. ``make run``.

    python -m local.run                      # seeded demo data
    python -m local.run --web /var/log/nginx/access.log
    python -m local.run --web access.log --web-format '$remote_addr - ... $request_time'
    python -m local.run --logs /path/to/logs # customers.log, orders.log, access.log

Prints the run summary and exits non-zero, naming the stage, when anything fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from datetime import UTC, date, datetime
from pathlib import Path

from lake import layout, zones
from lake.manifest import Manifest
from lake.stats import RunStats, StreamStats
from local import demo
from local.airflow_runner import airflow_env, dag_seconds, dags_test, finished_task, prepare
from local.aws import LOCAL_CREDENTIALS, RUN_PORT, moto_server, provision_local, ship_logs
from local.iam import DEPLOYER, Roles
from local.progress import following, say, task_printer
from orchestration import run_report, stages
from orchestration.runners.dbt import build_manifest
from orchestration.runners.spark_session import IDLE_SECONDS
from orchestration.settings import Settings, check_web_format, load_settings
from orchestration.summary import (
    RunReport,
    format_summary,
    quarantine_samples,
    reconcile,
    stream_counts,
)


class StageFailed(RuntimeError):
    def __init__(self, stage: str, cause: Exception) -> None:
        super().__init__(f"stage '{stage}' failed: {cause}")
        self.stage = stage
        self.report: RunReport | None = None  # what the run got to, when it could be told


def rotated_files(folder: Path, file_name: str) -> list[Path]:
    """``access.log`` and its logrotate siblings (``access.log.1``, ``access.log.2.gz``),
    oldest first, so lines ship in the order they were written."""
    pattern = re.compile(re.escape(file_name) + r"(?:\.(\d+))?(?:\.gz)?$")
    found = []
    for path in folder.glob(f"{file_name}*"):
        match = pattern.fullmatch(path.name)
        if match and path.is_file():
            found.append((-int(match[1] or 0), path))
    return [path for _, path in sorted(found)]


def resolve_files(args: argparse.Namespace, settings: Settings) -> dict[str, list[Path]]:
    explicit = {s.name: getattr(args, s.name) for s in settings.streams}
    if any(explicit.values()):
        for path in (p for paths in explicit.values() for p in paths):
            if not path.is_file():
                raise FileNotFoundError(f"log file {path} does not exist; check the path")
        return {name: paths for name, paths in explicit.items() if paths}
    folder: Path = args.logs
    if not folder.is_dir():
        raise FileNotFoundError(f"--logs {folder} is not a folder")
    files = {s.name: rotated_files(folder, s.file_name) for s in settings.streams}
    files = {name: paths for name, paths in files.items() if paths}
    if not files:
        wanted = ", ".join(s.file_name for s in settings.streams)
        raise FileNotFoundError(f"--logs {folder} holds none of {wanted}")
    return files


@contextmanager
def timed(report: RunReport, stage: str) -> Iterator[None]:
    say(f"> {stage} ...")
    start = time.perf_counter()
    try:
        yield
    except Exception as exc:
        raise StageFailed(stage, exc) from exc
    finally:
        report.seconds[stage] = time.perf_counter() - start
    say(f"  {stage} done in {report.seconds[stage]:.1f} s")


# The IAM roles of an enforcing local endpoint (local/iam.py), when the run has them: each
# stage then holds the credentials of the role that runs it in AWS.
_ROLES: ContextVar[Roles | None] = ContextVar("roles", default=None)


def run_stage[T](report: RunReport, stage: str, action: Callable[[], T]) -> T:
    roles = _ROLES.get()
    with timed(report, stage), roles.holding(roles.of_stage(stage)) if roles else nullcontext():
        return action()


@contextmanager
def under_roles(roles: Roles | None) -> Iterator[None]:
    """Stages hold their roles' credentials; the run's own bookkeeping the deployer's."""
    if roles is None:
        yield
        return
    token = _ROLES.set(roles)
    try:
        with roles.holding(roles.held[DEPLOYER]):
            yield
    finally:
        _ROLES.reset(token)


def default_run_date(landing_keys: list[str]) -> date | None:
    """The run date that covers everything shipped: the arrival day (UTC) of the newest
    landing object. Firehose stamps objects with their arrival time and a run claims what
    arrived on or before its date, so a run started at 23:59 whose last objects land after
    midnight takes the next day and still processes all of them. None if nothing landed."""
    days = [day for key in landing_keys if (day := layout.arrival_date(key)) is not None]
    return max(days, default=None)


def _ship(
    settings: Settings, files: dict[str, list[Path]], run_date: date | None
) -> tuple[RunReport, dict, date]:
    """Provision, ship, and fix the run date: the start every local run shares."""
    report = RunReport(run_date="")
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    run_stage(report, "local aws", lambda: provision_local(settings))
    shipped = run_stage(report, "ship", lambda: ship_logs(settings, files))
    landed = zones.list_keys(
        stages.aws_client(settings, "s3"), settings.lake_bucket, layout.LANDING
    )
    day = run_date or default_run_date(landed) or datetime.now(UTC).date()
    report.run_date = day.isoformat()
    return report, shipped, day


def shipper_samples(shipped: dict) -> dict:
    """A sample of the lines the shipper could not send, as it quarantined them."""
    return quarantine_samples(
        {"stream": name, "reason": "record_too_large", "detail": f"{len(line)} bytes",
         "raw_line": line.decode("utf-8", "replace")}
        for name, ship in shipped.items()
        for line in ship.oversize_lines[:1]
    )  # fmt: skip


def _finish(
    report: RunReport,
    settings: Settings,
    shipped: dict,
    manifest: Manifest,
    count_marts: bool = True,  # not after a failed build: a mart may be missing
) -> RunReport:
    for name, ship in shipped.items():
        report.streams[name] = stream_counts(
            ship.lines_read, ship.lines_shipped, len(ship.oversize_lines),
            manifest.stats.streams.get(name, StreamStats()),
        )  # fmt: skip
    for name, samples in shipper_samples(shipped).items():
        report.quarantine_samples.setdefault(name, {}).update(samples)
    report.marts = stages.mart_row_counts(settings) if count_marts else {}
    report.duckdb_path = settings.duckdb_path
    report.docs_path = settings.site_dir / "docs" / "index.html"  # as published
    return report


def report_dir(settings: Settings) -> Path:
    """Where the local run publishes its report (what the lake's reports/ holds in AWS)."""
    return settings.site_dir / "report"


def publish(settings: Settings, report: RunReport) -> str:
    """The report to the (local) lake's reports/, as the DAG publishes it, and to the site
    folder ``make report`` serves, where the runs' data outlive the local stack."""
    stages.publish_report(settings, report)
    return run_report.publish_report(run_report.DirStore(report_dir(settings)), report)


def publish_docs(settings: Settings) -> str:
    """Build the docs site and publish it, as the DAG's ``dbt_docs`` task does."""
    return stages.publish_docs(settings, stages.generate_docs(settings).parent)


def run_pipeline(
    settings: Settings,
    files: dict[str, list[Path]],
    run_date: date | None = None,
    roles: Roles | None = None,
) -> RunReport:
    """Ship ``files`` and call every stage directly against ``settings``' endpoint; with
    ``roles``, each stage as the IAM role that runs it in AWS (local/iam.py)."""
    with under_roles(roles):
        return _run_pipeline(settings, files, run_date)


def _run_pipeline(
    settings: Settings, files: dict[str, list[Path]], run_date: date | None
) -> RunReport:
    report, shipped, day = _ship(settings, files, run_date)
    run_stage(report, "claim", lambda: stages.claim_landing(settings, day))
    run_stage(report, "spark", lambda: stages.preprocess_locally(settings, day))
    manifest = run_stage(report, "promote", lambda: stages.promote_zones(settings, day))
    try:
        run_stage(report, "load", lambda: stages.load_warehouse(settings, day))
        today = datetime.now(UTC).date()
        report.freshness = run_stage(
            report, "freshness", lambda: stages.check_freshness(settings, day, today)
        )
        run_stage(report, "dbt build", lambda: stages.build_warehouse(settings, run_date=day))
        run_stage(report, "dbt docs", lambda: publish_docs(settings))
    except StageFailed as failed:
        # A failed build is when the report matters most: its failing tests' audit rows.
        failed.report = report_anyway(report, settings, shipped, manifest)
        raise
    report = _finish(report, settings, shipped, manifest)
    run_stage(report, "report", lambda: stages.gather_report_details(settings, report, manifest))
    report.page_path = publish(settings, report)
    return report


def report_anyway(
    report: RunReport, settings: Settings, shipped: dict, manifest: Manifest
) -> RunReport | None:
    """The report of a run that failed after promoting its data, published as a complete
    run's; None, saying why, when even that fails (the stage's failure is the news)."""
    try:
        report = _finish(report, settings, shipped, manifest, count_marts=False)
        stages.gather_report_details(settings, report, manifest)
        report.page_path = publish(settings, report)
    except Exception as exc:
        print(f"No run report for the failed run: {exc}", file=sys.stderr)
        return None
    return report


def run_pipeline_in_airflow(
    settings: Settings,
    files: dict[str, list[Path]],
    run_date: date | None = None,
    bundle: Path | None = None,
    airflow_setup: Future[dict[str, str]] | None = None,
) -> RunReport:
    """Ship ``files``, then run the pipeline DAG (``airflow dags test``) for the run date.

    ``bundle``: the DAGs folder of an MWAA bundle to run instead of this clone's code (its
    manifest was built with it). ``airflow_setup``: ``prepare`` of Airflow's metadata
    database, if the caller started it already (``make run`` does, before local AWS)."""
    logs = settings.work_dir / "logs"
    # The metadata database is set up beside the shipping and dbt's parse: two processes,
    # two cores. What is left of the setup then is a stage of its own: the run waits for it.
    with ThreadPoolExecutor(max_workers=1) as beside:
        setup = airflow_setup or beside.submit(prepare, settings, bundle)
        report, shipped, day = _ship(settings, files, run_date)
        if bundle is None:
            run_stage(report, "dbt parse", lambda: build_manifest(settings, logs / "dbt.log"))
        run_stage(report, "airflow setup", setup.result)
    env = airflow_env(settings, bundle)
    try:
        with following(logs / "airflow.log", task_printer(finished_task)):
            run_stage(report, "airflow dag",
                      lambda: dags_test(settings, day, logs / "airflow.log", env))  # fmt: skip
    except StageFailed as failed:
        # The DAG's summary task published the failed run's report: show it too.
        failed.report = dag_report_anyway(report, settings, shipped, day)
        raise
    return finish_dag_report(report, settings, shipped, stages.read_manifest(settings, day))


def finish_dag_report(
    report: RunReport, settings: Settings, shipped: dict, manifest: Manifest
) -> RunReport:
    """The local run's report: the shipping and the seconds this process knows, and what
    the DAG's summary task gathered and published (dbt tests, samples, freshness)."""
    logs = settings.work_dir / "logs"
    report.dag_seconds = dag_seconds(logs / "airflow.log", report.seconds["airflow dag"])
    published = published_report(settings, day=date.fromisoformat(report.run_date))
    report = _finish(report, settings, shipped, manifest, count_marts=not published.failed_tasks)
    for name, samples in published.quarantine_samples.items():
        report.quarantine_samples.setdefault(name, {}).update(samples)
    report.quarantined_objects = published.quarantined_objects
    report.tests = published.tests
    report.freshness = published.freshness
    report.failed_tasks = published.failed_tasks
    report.page_path = publish(settings, report)
    return report


def dag_report_anyway(
    report: RunReport, settings: Settings, shipped: dict, day: date
) -> RunReport | None:
    """The report of a failed DAG run; None, saying why, when there is none to show."""
    try:
        try:
            manifest = stages.read_manifest(settings, day)
        except FileNotFoundError:  # failed before its zones were promoted
            manifest = Manifest(day.isoformat(), [], [], RunStats(day.isoformat()))
        return finish_dag_report(report, settings, shipped, manifest)
    except Exception as exc:
        print(f"No run report for the failed run: {exc}", file=sys.stderr)
        return None


def published_report(settings: Settings, day: date) -> RunReport:
    """The report the DAG's summary task published for ``day``."""
    store = run_report.S3Store(stages.aws_client(settings, "s3"), settings.lake_bucket)
    body = store.read(layout.report_data(day))
    if body is None:
        raise StageFailed("airflow dag", FileNotFoundError("the summary task published no report"))
    return RunReport.from_dict(json.loads(body))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the shop-logs pipeline locally.")
    source = parser.add_argument_group("your own logs (default: a generated, seeded demo)")
    source.add_argument(
        "--logs",
        type=Path,
        help="folder with customers.log, orders.log, "
        "access.log (rotated .1 / .2.gz siblings are included)",
    )
    for name, kind in [("customers", "CSV"), ("orders", "JSON lines"), ("web", "access log")]:
        source.add_argument(
            f"--{name}",
            type=Path,
            action="append",
            default=[],
            help=f"{kind} file for the {name} stream (repeatable)",
        )
    source.add_argument(
        "--web-format",
        default="",
        help="the format the web server writes: an nginx log_format or Apache LogFormat "
        "string, or a shortcut (combined, the default; common; combined+; nginx; "
        "apache-combined-D; alb; json); see docs/data-contract.md",
    )
    parser.add_argument(
        "--engine",
        choices=["airflow", "direct"],
        default="airflow",
        help="run the pipeline DAG with `airflow dags test` (default) or call the stages directly",
    )
    parser.add_argument(
        "--run-date",
        type=date.fromisoformat,
        help="logical date of the run (default: the arrival day, UTC, of the newest object "
        "shipped, so a run started just before midnight still takes what it shipped)",
    )
    demo_args = parser.add_argument_group("demo data")
    demo_args.add_argument("--days", type=int, default=demo.DemoSpec.days)
    demo_args.add_argument("--seed", type=int, default=demo.DemoSpec.seed)
    demo_args.add_argument("--scale", type=float, default=1.0, help="multiply the demo's volumes")
    return parser.parse_args(argv)


def demo_files(settings: Settings, args: argparse.Namespace) -> dict[str, list[Path]]:
    folder = settings.work_dir / "demo-logs"
    demo.generate(demo.scaled(args.scale, args.days, args.seed), folder)
    return demo.log_files(folder)


def fresh_warehouse(settings: Settings) -> None:
    """Each ``make run`` starts a new local lake (moto keeps nothing), so it starts a new
    local warehouse too: marts built from a lake that is gone, by an older version of the
    project (a seed with other columns), would be neither this run's nor consistent."""
    for path in (settings.duckdb_path, settings.duckdb_path.with_suffix(".duckdb.wal")):
        path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    web_format = args.web_format or os.environ.get("SHOPLOGS_WEB_FORMAT", "")
    try:
        if web_format:
            check_web_format(web_format)
            # The settings read it, here and in the Airflow DAG this process starts.
            os.environ["SHOPLOGS_WEB_FORMAT"] = web_format
        settings = load_settings()
    except ValueError as exc:  # a bad --web-format or setting: the message names it
        print(f"Pipeline FAILED: {exc}", file=sys.stderr)
        return 2
    if settings.env != "local":
        print(
            f"make run runs against local stand-ins only (SHOPLOGS_ENV={settings.env})",
            file=sys.stderr,
        )
        return 2
    own_logs = args.logs or any(getattr(args, s.name) for s in settings.streams)
    try:
        files = resolve_files(args, settings) if own_logs else demo_files(settings, args)
        if args.run_date and args.run_date < datetime.now(UTC).date():
            raise ValueError(
                f"--run-date {args.run_date} is before today (UTC): logs shipped now arrive in "
                "landing today, and a run only claims what arrived on or before its date. "
                "Leave --run-date out, or give today or a later date."
            )
        os.environ.update(LOCAL_CREDENTIALS)
        fresh_warehouse(settings)
        with ThreadPoolExecutor(max_workers=1) as beside:
            # Airflow's metadata database is set up from here on, beside local AWS's start
            # and the shipping: it needs neither.
            setup = beside.submit(prepare, settings) if args.engine == "airflow" else None
            with moto_server(stages.log_path(settings, "moto.log"), port=RUN_PORT) as endpoint:
                local = settings.with_endpoint(endpoint)
                if setup is None:
                    report = run_pipeline(local, files, args.run_date)
                else:
                    report = run_pipeline_in_airflow(local, files, args.run_date,
                                                     airflow_setup=setup)  # fmt: skip
    except (FileNotFoundError, ValueError, RuntimeError) as exc:  # StageFailed included
        if isinstance(exc, StageFailed) and exc.report:
            print(format_summary(exc.report))
        print(f"\nPipeline FAILED: {exc}", file=sys.stderr)
        return 1
    print(format_summary(report))
    if settings.spark_session_dir:
        idle = IDLE_SECONDS // 60
        print(f"Spark session:    warm in {settings.spark_session_dir} for the next run "
              f"(it stops after {idle} idle minutes, or with `make clean`)")  # fmt: skip
    if reconcile(report):
        print("\nPipeline FAILED: counts do not reconcile (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
