"""The one place where environments differ.

Everything that changes between a laptop and AWS (endpoint, bucket, stream names, Spark
runner, dbt target) is resolved here from one variable, ``SHOPLOGS_ENV``, and the warehouse
from one more, ``SHOPLOGS_WAREHOUSE``. Code below the
stage functions never asks "am I local?": it is handed these values.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lake import layout

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
SPARK_JOB = REPO_ROOT / "spark" / "job.py"

PROJECT = "shoplogs"
# moto's default account id; a real deployment passes its own through AWS_ACCOUNT_ID.
LOCAL_ACCOUNT_ID = "123456789012"
# The Airflow pool every task that opens the DuckDB file shares: DuckDB allows one writer.
# Here, not in orchestration.tasks, so `make run`'s own process never imports Airflow (~2 s).
DUCKDB_POOL = "duckdb_writer"


@dataclass(frozen=True)
class LogStream:
    """One application log: where it lives on the host and which Firehose stream ships it."""

    name: str  # customers | orders | web
    file_name: str  # file the shop writes, relative to the log directory
    delivery_stream: str
    # The server's log format, as the Spark job's --web-format takes it (docs/data-contract.md,
    # "Formats"); empty for the job's default, and for the streams the contract fixes.
    log_format: str = ""


@dataclass(frozen=True)
class EmrSettings:
    """Where and how the Spark job runs on EMR; names match infra/."""

    release_label: str
    service_role: str
    instance_profile: str
    security_configuration: str  # at-rest encryption with the lake's key (infra/processing)
    subnet_ids: tuple[str, ...]
    idle_timeout_seconds: int
    serverless_application_id: str
    serverless_execution_role_arn: str


@dataclass(frozen=True)
class Settings:
    env: str
    region: str
    account_id: str
    lake_bucket: str
    streams: tuple[LogStream, ...]
    aws_endpoint_url: str | None  # None means the real AWS endpoints
    spark_runner: str  # local | emr | emr-serverless
    warehouse: str  # one of WAREHOUSES; also the dbt target's name
    # Everything a run writes on the machine it runs on: Spark staging, dbt's target/ and
    # logs/, the local warehouse and site. Never inside the code's folder, which on MWAA is
    # the read-only DAGs folder.
    work_dir: Path
    firehose_role_arn: str = field(default="")
    emr: EmrSettings | None = None
    emr_poke_seconds: int = 60
    landing_queue_name: str = ""
    # A source past its freshness error threshold fails the run. Off locally: the demo's
    # events carry the dates the demo generator gave them, not today's.
    freshness_fails_run: bool = True
    # Airflow runs the DAG's tasks one at a time, in no set order (``airflow dags test``, as
    # ``make run`` does: the local runner sets SHOPLOGS_TASKS_ONE_AT_A_TIME); a scheduler
    # runs them side by side. The dbt group's per-model tasks wait for its build only then.
    tasks_one_at_a_time: bool = False
    # The local Spark runner's warm session (runners/spark_session.py) lives in this folder;
    # None: every job gets a fresh spark-submit, as every EMR job gets its own Spark.
    spark_session_dir: Path | None = None

    @property
    def dbt_target(self) -> str:
        return self.warehouse

    @property
    def dbt_target_dir(self) -> Path:
        """dbt's ``target/`` for the run's commands (the manifest Cosmos renders from is
        built ahead of time into the project's own ``target/``: ``build_manifest``)."""
        return self.work_dir / "dbt" / "target"

    @property
    def dbt_log_dir(self) -> Path:
        return self.work_dir / "dbt" / "logs"

    @property
    def duckdb_path(self) -> Path:
        return self.work_dir / "warehouse" / f"{PROJECT}.duckdb"

    @property
    def site_dir(self) -> Path:
        """Where the local run publishes what the lake's ``docs/`` and ``reports/`` prefixes
        hold in AWS: ``docs/`` (the dbt docs site) and ``report/`` (the run report)."""
        return self.work_dir / "site"

    @property
    def snowflake_database(self) -> str:
        return snowflake_database(self.env)

    @property
    def redshift_pipeline_user(self) -> str:
        return redshift_pipeline_user(self.env)

    @property
    def pseudonym_secret(self) -> str:
        """The Secrets Manager secret keying the Spark job's address pseudonyms
        (infra/cloudformation/processing.yaml creates it; the local stack, a stand-in)."""
        return pseudonym_secret(self.env)

    @property
    def glue_database(self) -> str:
        return f"{PROJECT}_{self.env}"

    @property
    def landing_queue_url(self) -> str:
        """SQS queue that receives the bucket's ObjectCreated events for landing/."""
        host = self.aws_endpoint_url or f"https://sqs.{self.region}.amazonaws.com"
        return f"{host}/{self.account_id}/{self.landing_queue_name}"

    def stream(self, name: str) -> LogStream:
        for candidate in self.streams:
            if candidate.name == name:
                return candidate
        known = ", ".join(s.name for s in self.streams)
        raise KeyError(f"unknown log stream {name!r}; known streams: {known}")

    def with_endpoint(self, endpoint_url: str) -> Settings:
        return replace(self, aws_endpoint_url=endpoint_url)


# The warehouses the dbt project builds on (profiles.yml has a target of each name):
# the three a user runs, then the two local stand-ins CI builds on.
WAREHOUSES = ("duckdb", "snowflake", "redshift", "postgres", "fakesnow")


def resource_names(env: str, account_id: str) -> tuple[str, dict[str, str]]:
    """Bucket and delivery-stream names, shared with infra/ so local and AWS agree."""
    bucket = f"{PROJECT}-{env}-lake-{account_id}"
    streams = {name: f"{PROJECT}-{env}-{name}" for name in layout.STREAMS}
    return bucket, streams


def pseudonym_secret(env: str) -> str:
    return f"{PROJECT}/{env}/spark/pseudonym-key"


def snowflake_database(env: str) -> str:
    """One Snowflake database per environment, so dev and CI builds never load into or build
    over prod's schemas (``raw_data`` included, which the sources name). The local stand-in
    stands for prod, as generate_schema_name has it. Redshift needs no such rule: each
    environment has its own Redshift Serverless namespace (infra/environments.py)."""
    return PROJECT.upper() if env in ("prod", "local") else f"{PROJECT}_{env}".upper()


def redshift_pipeline_user(env: str) -> str:
    """The Redshift database user the pipeline is. On Redshift Serverless with IAM auth
    (GetCredentials) an assumed role logs in as ``IAMR:<role name>``, here the MWAA execution
    role ``shoplogs-<env>-mwaa`` (infra/cloudformation/orchestration.yaml), whatever login
    the connection names; infra/redshift/setup.sql creates it and grants to it."""
    return f"IAMR:{PROJECT}-{env}-mwaa"


def warehouse_setting(local: bool) -> str:
    """``SHOPLOGS_WAREHOUSE``: the one switch between DuckDB, Snowflake and Redshift."""
    warehouse = os.environ.get("SHOPLOGS_WAREHOUSE", "duckdb" if local else "snowflake")
    if warehouse not in WAREHOUSES:
        raise ValueError(f"SHOPLOGS_WAREHOUSE={warehouse!r} is not one of {', '.join(WAREHOUSES)}")
    return warehouse


def default_work_dir(local: bool) -> Path:
    """``.local/`` in a clone (``make clean`` removes it); on MWAA the machine's temporary
    folder, since the DAGs folder the code runs from is read-only there."""
    return REPO_ROOT / ".local" if local else Path(tempfile.gettempdir()) / PROJECT


def work_dir_setting(local: bool) -> Path:
    """``SHOPLOGS_WORK_DIR``, made absolute: Airflow's SQLite database under it must be
    named by an absolute path, and dbt and Spark run in other folders than this process."""
    value = os.environ.get("SHOPLOGS_WORK_DIR", "").strip()
    return Path(value).expanduser().absolute() if value else default_work_dir(local)


def spark_session_setting(local: bool) -> Path | None:
    """``SHOPLOGS_SPARK_SESSION``: ``fresh`` for a spark-submit per job, or the warm local
    session's folder (default ``.local/spark-session``, one session per clone)."""
    value = os.environ.get("SHOPLOGS_SPARK_SESSION", "").strip()
    if not local or value == "fresh":
        return None
    if not value:
        return default_work_dir(local) / "spark-session"
    # Absolute: the session serves from the clone's root, its clients from anywhere.
    return Path(value).expanduser().absolute()


def check_web_format(spec: str, option: str = "--web-format") -> None:
    """Compile a web format as the Spark job will, so a bad one stops ``make run``, the MWAA
    bundle's build or a deploy before anything starts, with the job's own message (naming
    ``option``). The job's module is loaded by its path: it lives with the job (spark/), not
    on this program's import path, and is standard library only."""
    spec_file = importlib.util.spec_from_file_location(
        "web_formats", SPARK_JOB.parent / "preprocess" / "formats.py"
    )
    assert spec_file is not None and spec_file.loader is not None
    module = importlib.util.module_from_spec(spec_file)
    sys.modules[spec_file.name] = module  # dataclasses look their module up there
    spec_file.loader.exec_module(module)
    try:
        module.compile_format(spec)
    except module.FormatError as exc:
        raise ValueError(f"{option}: {exc}") from exc


def load_settings(env: str | None = None) -> Settings:
    """Build the settings for ``env`` (default: ``$SHOPLOGS_ENV`` or ``local``)."""
    env = env or os.environ.get("SHOPLOGS_ENV", "local")
    if env not in {"local", "dev", "prod"}:
        raise ValueError(f"SHOPLOGS_ENV={env!r} is not one of local, dev, prod")
    local = env == "local"
    account_id = os.environ.get("AWS_ACCOUNT_ID", LOCAL_ACCOUNT_ID)
    bucket, stream_names = resource_names(env, account_id)
    # What the web server writes: SHOPLOGS_WEB_FORMAT, as the Spark job's --web-format takes
    # it; unset, the job's default (combined).
    log_formats = {"web": os.environ.get("SHOPLOGS_WEB_FORMAT", "").strip()}
    return Settings(
        env=env,
        region=os.environ.get("AWS_REGION", "us-east-1"),
        account_id=account_id,
        lake_bucket=os.environ.get("LAKE_BUCKET", bucket),
        streams=tuple(
            LogStream(name, layout.LOG_FILES[name], stream_names[name], log_formats.get(name, ""))
            for name in layout.STREAMS
        ),
        # Local runs start their own moto server and fill this in with with_endpoint().
        aws_endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        spark_runner=os.environ.get("SPARK_RUNNER", "local" if local else "emr"),
        warehouse=warehouse_setting(local),
        freshness_fails_run=not local,
        tasks_one_at_a_time=os.environ.get("SHOPLOGS_TASKS_ONE_AT_A_TIME", "") == "true",
        work_dir=work_dir_setting(local),
        spark_session_dir=spark_session_setting(local),
        firehose_role_arn=f"arn:aws:iam::{account_id}:role/{PROJECT}-{env}-firehose",
        emr_poke_seconds=int(os.environ.get("EMR_POKE_SECONDS", "60")),
        landing_queue_name=f"{PROJECT}-{env}-landing-events",
        emr=EmrSettings(
            release_label=os.environ.get("EMR_RELEASE_LABEL", "emr-7.5.0"),
            service_role=os.environ.get("EMR_SERVICE_ROLE", f"{PROJECT}-{env}-emr-service"),
            instance_profile=os.environ.get("EMR_INSTANCE_PROFILE", f"{PROJECT}-{env}-emr-ec2"),
            security_configuration=os.environ.get(
                "EMR_SECURITY_CONFIGURATION", f"{PROJECT}-{env}-emr"
            ),
            subnet_ids=tuple(filter(None, os.environ.get("EMR_SUBNET_IDS", "").split(","))),
            idle_timeout_seconds=int(os.environ.get("EMR_IDLE_TIMEOUT_SECONDS", "1800")),
            serverless_application_id=os.environ.get("EMR_SERVERLESS_APPLICATION_ID", ""),
            serverless_execution_role_arn=os.environ.get(
                "EMR_SERVERLESS_ROLE_ARN",
                f"arn:aws:iam::{account_id}:role/{PROJECT}-{env}-emr-serverless",
            ),
        ),
    )


def settings_for_command(command: str) -> Settings:
    """``load_settings`` for a command line (``command``: ``make docs``, say): a setting with
    a bad value ends it with one line naming the setting (exit 2), not a traceback."""
    try:
        return load_settings()
    except ValueError as exc:
        print(f"{command} FAILED: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def log_path(settings: Settings, name: str) -> Path:
    """Where a stage's tool writes its log: under the work directory, never the bundle."""
    return settings.work_dir / "logs" / name


# boto3's default session is not thread-safe while it makes a client (a client, once made,
# is): threads that each stage a warehouse's load take their turn here.
_CLIENT_LOCK = threading.Lock()


def aws_client(settings: Settings, service: str) -> Any:
    """A client for ``service`` in the run's region, on the local endpoint when one is set."""
    import boto3

    kwargs: dict[str, Any] = {"region_name": settings.region}
    if settings.aws_endpoint_url:
        kwargs["endpoint_url"] = settings.aws_endpoint_url
    with _CLIENT_LOCK:
        return boto3.client(service, **kwargs)  # type: ignore[call-overload]
