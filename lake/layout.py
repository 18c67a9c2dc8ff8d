"""Every key and prefix of the lake bucket, built here and nowhere else.

    landing/<stream>/YYYY/MM/DD/HH/<object>          written by Firehose (arrival time)
    landing-errors/<stream>/...                      what Firehose could not deliver (local stack)
    processing/_claims/<landing key>.json            a run's claim while it moves an object
    processing/_locks/dt=<run>.json                  the run that owns a run date, claim to promote
    processing/dt=<run>/raw/<stream>/...             claimed by the run for logical date <run>
    processing/dt=<run>/output/<zone key>            what Spark wrote, laid out as the zones
    processing/dt=<run>/output/_stats/dt=<run>/...   the Spark job's counts, one file per stream
    processing/dt=<run>/erased/<digest>.json         erased customers' lines its claim took out
    processing/dt=<run>/manifest.json                what the run took and produced
    processing/dt=<run>/dbt/run_results.json         what the run's dbt build did, test by test
    processed/<dataset>/dt=<run>/*.parquet           published after Spark succeeded
    quarantine/<stream>/dt=<run>/*.json              bad lines with their reason
    quarantine/<stream>/shipper/<file>-<hash>.json   lines the shipper could not send
    quarantine/objects/dt=<run>/<stream>/...         whole objects no line can be read from
    quarantine/firehose/<stream>/...                 what Firehose could not deliver (in AWS)
    state/web_sessions/dt=<run>/*.parquet            sessions a run left open, continued by the next
    docs/                                            the published dbt docs site
    reports/index.html                               the run report of the newest run date
    reports/dt=<run>/index.html                      the run report of a run date
    reports/runs/dt=<run>.json                       its data, read back for the runs' trend
    artifacts/spark/<version>/                       the Spark job as EMR runs it
    artifacts/agent/                                 the shipper's wheel and systemd unit
    emr-logs/, emr-logs/serverless/                  Spark logs on EMR and EMR Serverless
    erasure/register/<customer hash>.json            an erased customer's hashed ids
    audit/erasures/<customer hash>/<at>.json         what each erasure removed, per zone and table

A run owns everything under its ``dt=<run>`` prefixes and replaces them whole, so running
the same logical date again gives the same partitions.

Standard library only: the Spark job imports this module on EMR.
"""

from __future__ import annotations

import re
from datetime import date

# The shop's logs: the stream name each travels under, the file the shop writes it to, and
# the datasets the Spark job makes of it. The one list of streams.
STREAMS: tuple[str, ...] = ("customers", "orders", "web")
LOG_FILES: dict[str, str] = {"customers": "customers.log", "orders": "orders.log",
                             "web": "access.log"}  # fmt: skip
DATASETS: dict[str, tuple[str, ...]] = {
    "customers": ("customers",),
    "orders": ("orders", "order_lines"),
    "web": ("web_requests",),
}

LANDING = "landing/"
# Where Firehose writes the records it could not deliver, per stream: the local stack's
# ErrorOutputPrefix (local/aws.py), and the one the AWS templates give
# (infra/cloudformation/ingestion.yaml).
LANDING_ERRORS = "landing-errors/"
FIREHOSE_ERRORS = "quarantine/firehose/"
PROCESSED = "processed/"
QUARANTINE = "quarantine/"
STATE = "state/"
# What the Spark job carries from one run to the next (a visitor's session still open).
STATE_DATASETS = ("web_sessions",)
CLAIMS = "processing/_claims/"
RUN_LOCKS = "processing/_locks/"
DOCS = "docs/"
REPORTS = "reports/"  # the run report: one page per run date, and the latest
EMR_LOGS = "emr-logs/"
# The application's own log location (infra/cloudformation/processing.yaml), which the job role
# may write: the runner passes the same one.
EMR_SERVERLESS_LOGS = "emr-logs/serverless/"
MANIFEST = "manifest.json"
# Erasure (lake/erasure.py): the register the Spark job consults, and the audit trail.
ERASURE_REGISTER = "erasure/register/"
AUDIT_ERASURES = "audit/erasures/"

_LANDING_KEY = re.compile(r"^landing/(?P<stream>[^/]+)/(?P<y>\d{4})/(?P<m>\d\d)/(?P<d>\d\d)/")
_PROCESSED_KEY = re.compile(r"^processed/(?P<dataset>[^/]+)/dt=[^/]+/(?P<name>[^/]+\.parquet)$")


def uri(bucket: str, key: str = "") -> str:
    return f"s3://{bucket}/{key}"


def partition(run_date: date) -> str:
    return f"dt={run_date.isoformat()}"


# --- landing ----------------------------------------------------------------------------


def landing_prefix(stream: str) -> str:
    """Where a stream's delivery stream writes; Firehose appends ``YYYY/MM/DD/HH/``."""
    return f"{LANDING}{stream}/"


def landing_errors_prefix(stream: str) -> str:
    return f"{LANDING_ERRORS}{stream}/"


def arrival_date(landing_key: str) -> date | None:
    """The day Firehose delivered a landing object, from its key; None for other keys."""
    match = _LANDING_KEY.match(landing_key)
    if not match:
        return None
    return date(int(match["y"]), int(match["m"]), int(match["d"]))


def claim_marker(landing_key: str) -> str:
    return f"{CLAIMS}{landing_key}.json"


def claimed_object(marker: str) -> str:
    """The landing key a claim marker guards."""
    return marker.removeprefix(CLAIMS).removesuffix(".json")


def run_lock(run_date: date) -> str:
    """The lock object of a run date: one run at a time claims, runs Spark and promotes it."""
    return f"{RUN_LOCKS}{partition(run_date)}.json"


# --- processing -------------------------------------------------------------------------


def run_prefix(run_date: date) -> str:
    return f"processing/{partition(run_date)}/"


def raw_prefix(run_date: date) -> str:
    return run_prefix(run_date) + "raw/"


def raw_key(run_date: date, landing_key: str) -> str:
    """Where the run keeps a landing object it claimed: same path below ``raw/``."""
    return raw_prefix(run_date) + landing_key.removeprefix(LANDING)


def output_prefix(run_date: date) -> str:
    """The Spark job's ``--output``: below it the job lays its files out as the zones."""
    return run_prefix(run_date) + "output/"


def manifest_key(run_date: date) -> str:
    return run_prefix(run_date) + MANIFEST


def dbt_results_key(run_date: date) -> str:
    """dbt's ``run_results.json`` of the run's build, kept for the run report."""
    return run_prefix(run_date) + "dbt/run_results.json"


def claim_erasures_prefix(run_date: date) -> str:
    """The counts of erased customers' lines the run's claim took out of its raw objects
    (orchestration/erasure.py scrub_claimed), one object per rewrite, read by promote."""
    return run_prefix(run_date) + "erased/"


def claim_erasure(run_date: date, digest: str) -> str:
    """One rewrite's count, named by a digest of the object and the body it rewrote: a
    retried claim that redoes the same rewrite writes the same key again."""
    return f"{claim_erasures_prefix(run_date)}{digest}.json"


def stats_prefix(run_date: date) -> str:
    """Relative to the job's output: the counts the Spark job wrote."""
    return f"_stats/{partition(run_date)}/"


# --- published zones ----------------------------------------------------------------------


def processed_prefix(dataset: str, run_date: date) -> str:
    return f"{PROCESSED}{dataset}/{partition(run_date)}/"


def processed_dataset(dataset: str) -> str:
    return f"{PROCESSED}{dataset}/"


def processed_parquet(key: str) -> tuple[str, str] | None:
    """(dataset, file name) of a processed Parquet key, or None for any other key."""
    match = _PROCESSED_KEY.match(key)
    return (match["dataset"], match["name"]) if match else None


def processed_glob(bucket: str) -> str:
    """Every Parquet file of a dataset, ``{name}`` standing for the dataset (DuckDB's
    external location for the dbt sources)."""
    return uri(bucket, f"{PROCESSED}{{name}}/dt=*/*.parquet")


# The run report, below ``REPORTS`` (the local run mirrors these names in a folder).
REPORT_INDEX = "index.html"
REPORT_RUNS = "runs/"


def report_page(run_date: date) -> str:
    return f"{partition(run_date)}/index.html"


def report_data(run_date: date) -> str:
    return f"{REPORT_RUNS}{partition(run_date)}.json"


def state_dataset(name: str) -> str:
    return f"{STATE}{name}/"


def state_prefix(name: str, run_date: date) -> str:
    return f"{state_dataset(name)}{partition(run_date)}/"


def previous_partition(partitions: list[str], run_date: date) -> str | None:
    """The newest ``dt=<day>`` before ``run_date`` among partition folder names."""
    days = sorted(p for p in partitions if p.startswith("dt=") and p[3:] < run_date.isoformat())
    return days[-1] if days else None


def quarantine_prefix(stream: str, run_date: date) -> str:
    return f"{QUARANTINE}{stream}/{partition(run_date)}/"


def quarantined_objects_prefix(run_date: date) -> str:
    return f"{QUARANTINE}objects/{partition(run_date)}/"


def quarantined_object(run_date: date, raw: str) -> str:
    """Where a whole raw object no line can be read from is set aside."""
    return quarantined_objects_prefix(run_date) + raw.removeprefix(raw_prefix(run_date))


def shipper_rejects(stream: str, file_name: str, digest: str) -> str:
    return f"{QUARANTINE}{stream}/shipper/{file_name}-{digest}.json"


def spark_artifact_prefix(version: str) -> str:
    return f"artifacts/spark/{version}/"


# Where the hosts' install document (infra/cloudformation/ingestion.yaml) fetches the shipper.
AGENT_ARTIFACTS = "artifacts/agent/"


def register_entry(customer_hash: str) -> str:
    return f"{ERASURE_REGISTER}{customer_hash}.json"


def erasure_audit(customer_hash: str, erased_at: str) -> str:
    """One audit record per erasure request, named by when it ran (ISO-8601, UTC)."""
    stamp = erased_at.replace(":", "").replace("-", "")
    return f"{AUDIT_ERASURES}{customer_hash}/{stamp}.json"


def run_partitions(run_date: date) -> list[str]:
    """The published prefixes a run owns and replaces whole: its processed partition of
    every dataset and its quarantine partition of every stream."""
    datasets = [d for stream in STREAMS for d in DATASETS[stream]]
    return (
        [processed_prefix(d, run_date) for d in datasets]
        + [quarantine_prefix(stream, run_date) for stream in STREAMS]
        + [state_prefix(name, run_date) for name in STATE_DATASETS]
    )
