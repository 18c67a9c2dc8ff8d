"""The log shipper for the shop's EC2 hosts: a Python Kinesis Agent.

    shoplogs-shipper run --config /etc/shoplogs/agent.json
    shoplogs-shipper status --config /etc/shoplogs/agent.json
    shoplogs-shipper render-agent-json --config /etc/shoplogs/agent.json

The config file speaks the Kinesis Agent's ``agent.json`` dialect, so the same file can be
handed to the AWS agent (``render-agent-json`` drops the keys only this shipper knows):

    {"checkpointFile": "/var/lib/shoplogs-shipper/checkpoints",
     "firehose.endpoint": "https://firehose.eu-west-1.amazonaws.com",
     "flows": [{"filePattern": "/var/log/nginx/access.log*",
                "deliveryStream": "shoplogs-prod-web",
                "initialPosition": "START_OF_FILE"}]}

Lines go out at least once: a checkpoint moves only after Firehose acknowledged them, and a
resend is removed downstream by event id. SIGTERM finishes the batch in flight, saves the
checkpoints and exits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shoplogs_agent.firehose import (
    DEFAULT_RETRY,
    MAX_BATCH_BYTES,
    RetryPolicy,
    ShippingError,
    ShipStats,
    ship_buffer,
)
from shoplogs_agent.identity import Origin, format_token, host_id, record_lines
from shoplogs_agent.rejects import REFUSED, Outbox, make_reject
from shoplogs_agent.tailer import (
    ROTATION_GRACE_SECONDS,
    SPOOL_MAX_BYTES,
    Checkpoints,
    CheckpointUnwritable,
    Chunk,
    Tailer,
)

log = logging.getLogger("shoplogs.shipper")
# Understood here, unknown to the Kinesis Agent.
OWN_KEYS = {
    "pollSeconds", "statusFile", "rotationGraceSeconds", "failExitMinutes", "quarantine.bucket",
    "hostId", "poisonTries", "spoolMaxBytes", "finalLineIdleSeconds",
}  # fmt: skip
OWN_FLOW_KEYS = {"lakeStream", "logFormat"}
EXIT_FLOW_FAILING = 3  # a flow failed permanently for failExitMinutes: systemd restarts, alerts
# A checkpoint cannot be written (disk full, read-only, immutable): shipping on would resend
# without end, so the shipper stops; the unit's RestartPreventExitStatus keeps it stopped.
EXIT_CHECKPOINT_UNWRITABLE = 4
# Chunks (up to 4 MiB each) one flow ships per poll before the next flow's turn: a busy
# flow cannot delay another by more than this.
CHUNKS_PER_TURN = 4
# Tries of one chunk whose records Firehose refuses (per record, not throttling) before
# those records are set aside (quarantine, counted, logged at ERROR) and the flow goes on.
POISON_TRIES = 10
DEFAULT_CONFIG = Path("/etc/shoplogs/agent.json")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Flow:
    file_pattern: str
    delivery_stream: str
    start_at_end: bool
    lake_stream: str = ""  # the lake's name for the stream (web, orders, customers)
    # The server's log format (docs/data-contract.md, "Formats"), percent-encoded: it travels
    # in each record's header and the Spark job parses the record's lines in it.
    format_token: bytes = b""


@dataclass(frozen=True)
class ShipperConfig:
    checkpoint_file: Path
    flows: tuple[Flow, ...]
    endpoint: str | None = None
    quarantine_bucket: str | None = None  # where rejected lines go: the lake bucket
    poll_seconds: float = 1.0
    rotation_grace_seconds: float = ROTATION_GRACE_SECONDS
    fail_exit_minutes: float = 15.0
    poison_tries: int = POISON_TRIES
    spool_max_bytes: int = SPOOL_MAX_BYTES
    final_line_idle_seconds: float = 0.0  # 0: a live file's last line waits for its newline
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def status_file(self) -> Path:
        return Path(self.raw.get("statusFile") or f"{self.checkpoint_file}.status.json")

    @property
    def quarantine_file(self) -> Path:
        return Path(f"{self.checkpoint_file}.quarantine.jsonl")

    @property
    def quarantine_folder(self) -> Path:
        """Where files that cannot be read (a damaged .gz) are kept whole."""
        return Path(f"{self.checkpoint_file}.quarantine")

    def checkpoint_path(self, flow: Flow) -> Path:
        """A flow's checkpoints. Flows sharing a delivery stream (an nginx and an Apache log,
        each in its own logFormat, into the web stream) each get their own file: the first
        of them keeps the name a flow alone on its stream has always had (a flow added after
        it leaves its checkpoints where they were), the others are named by their pattern."""
        first = next(f for f in self.flows if f.delivery_stream == flow.delivery_stream)
        if first == flow:
            return Path(f"{self.checkpoint_file}.{flow.delivery_stream}.json")
        pattern = hashlib.sha256(flow.file_pattern.encode()).hexdigest()[:12]
        return Path(f"{self.checkpoint_file}.{flow.delivery_stream}.{pattern}.json")


def load_config(path: Path) -> ShipperConfig:
    """Read and check an agent.json-style file; errors name the key and the fix."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc}") from exc
    if not raw.get("flows"):
        raise ConfigError(f'{path}: add a non-empty "flows" list (filePattern -> deliveryStream)')
    flows = []
    for number, flow in enumerate(raw["flows"], start=1):
        missing = [k for k in ("filePattern", "deliveryStream") if not flow.get(k)]
        if missing:
            raise ConfigError(f"{path}: flow {number} needs {', '.join(missing)}")
        position = flow.get("initialPosition", "START_OF_FILE")
        if position not in {"START_OF_FILE", "END_OF_FILE"}:
            raise ConfigError(
                f"{path}: flow {number} initialPosition must be START_OF_FILE or END_OF_FILE"
            )
        # Delivery streams are named shoplogs-<env>-<stream> (infra/); lakeStream overrides.
        lake_stream = flow.get("lakeStream") or flow["deliveryStream"].rsplit("-", 1)[-1]
        flows.append(
            Flow(flow["filePattern"], flow["deliveryStream"], position == "END_OF_FILE",
                 lake_stream, _format_token(path, number, flow.get("logFormat")))
        )  # fmt: skip
    return ShipperConfig(
        checkpoint_file=Path(raw.get("checkpointFile", "/var/lib/shoplogs-shipper/checkpoints")),
        flows=tuple(flows),
        endpoint=raw.get("firehose.endpoint"),
        quarantine_bucket=raw.get("quarantine.bucket"),
        poll_seconds=float(raw.get("pollSeconds", 1.0)),
        rotation_grace_seconds=float(raw.get("rotationGraceSeconds", ROTATION_GRACE_SECONDS)),
        fail_exit_minutes=float(raw.get("failExitMinutes", 15.0)),
        poison_tries=int(raw.get("poisonTries", POISON_TRIES)),
        spool_max_bytes=int(raw.get("spoolMaxBytes", SPOOL_MAX_BYTES)),
        final_line_idle_seconds=float(raw.get("finalLineIdleSeconds", 0)),
        raw=raw,
    )


def _format_token(path: Path, number: int, log_format: Any) -> bytes:
    """A flow's ``logFormat`` for its records' headers. Only its shape is checked here (the
    format compiler lives with the Spark job, which quarantines the lines of a format it
    cannot read, naming it); ``make run --web-format`` checks a format in full."""
    if log_format is None:
        return b""
    if not isinstance(log_format, str) or not log_format.strip():
        raise ConfigError(
            f"{path}: flow {number} logFormat must be the server's format string (an nginx "
            "log_format, an Apache LogFormat), a shortcut such as combined, or json"
        )
    try:
        return format_token(log_format)
    except ValueError as exc:
        raise ConfigError(f"{path}: flow {number} logFormat {exc}") from exc


def render_agent_json(config: ShipperConfig) -> dict[str, Any]:
    """The same flows for the AWS Kinesis Agent."""
    rendered = {key: value for key, value in config.raw.items() if key not in OWN_KEYS}
    rendered["flows"] = [
        {key: value for key, value in flow.items() if key not in OWN_FLOW_KEYS}
        for flow in config.raw["flows"]
    ]
    return rendered


@dataclass
class FlowFailure:
    """The last error of a flow that cannot ship, for ``status`` and the exit decision."""

    error: str
    permanent: bool
    since: float  # monotonic, when the flow started failing
    since_wall: float  # the same moment for people
    retry_at: float  # monotonic: a failing flow waits, the others go on


class Shipper:
    def __init__(
        self,
        config: ShipperConfig,
        client: Any,
        policy: RetryPolicy = DEFAULT_RETRY,
        clock: Callable[[], float] = time.monotonic,
        s3: Any = None,
    ):
        self.config = config
        self.client = client
        self.policy = policy
        self.clock = clock
        self.stopping = False
        self.tailers = [
            (flow, Tailer(flow.file_pattern, Checkpoints(config.checkpoint_path(flow)),
                          flow.start_at_end, config.rotation_grace_seconds))
            for flow in config.flows
        ]  # fmt: skip
        self.totals = {flow.delivery_stream: ShipStats() for flow in config.flows}
        self.failures: dict[str, FlowFailure] = {}
        self.host = host_id(config.raw.get("hostId"))
        self.rejected = 0
        self.s3 = s3
        self.outbox = Outbox(config.quarantine_file)
        self.reject_error: str | None = None
        self.checkpoint_error: str | None = None
        self.quarantined_files: dict[str, str] = {}  # kept copy -> why it could not be read
        self.behind = False  # a flow had more to send when its turn ended
        self.tries: dict[tuple[str, str, int], int] = {}  # (stream, file, offset) -> failed
        self.refused = 0
        for flow, tailer in self.tailers:
            tailer.on_corrupt = self._quarantine_for(flow)
            tailer.spool_max_bytes = config.spool_max_bytes
            tailer.idle_seconds = config.final_line_idle_seconds

    def poll_once(self, max_bytes: int = MAX_BATCH_BYTES) -> int:
        """Send everything new, one acknowledged chunk at a time; return lines sent.

        Each flow goes on its own: one that cannot ship keeps its place, records why and
        waits, while the others keep shipping."""
        sent, self.behind = 0, False
        for flow, tailer in self.tailers:
            failure = self.failures.get(flow.delivery_stream)
            if self.checkpoint_error:
                break
            if failure and self.clock() < failure.retry_at:
                self._wait(flow, tailer)
                continue
            try:
                sent += self._ship_flow(flow, tailer, max_bytes)
                tailer.forget_missing()
            except ShippingError as exc:
                self._flow_failed(flow, exc)
            except CheckpointUnwritable as exc:  # disk full, read-only, immutable
                self._checkpoint_failed(flow, tailer, exc)
            else:
                self.failures.pop(flow.delivery_stream, None)
        self.deliver_rejects()
        return sent

    def _wait(self, flow: Flow, tailer: Tailer) -> None:
        """A failing flow waits for its retry: files rotated and deleted meanwhile stay
        readable, and go to the spool once their writer has moved on."""
        try:
            tailer.keep_while_waiting()
        except CheckpointUnwritable as exc:
            self._checkpoint_failed(flow, tailer, exc)

    def _set_aside_poison(
        self, flow: Flow, key: str, path: str, start: int, exc: ShippingError
    ) -> ShipStats:
        """Re-raise, unless Firehose refused these records (not throttling: the call went
        through) ``poisonTries`` times: then they go to quarantine and the chunk counts as
        sent."""
        place = (flow.delivery_stream, key, start)
        self.tries[place] = self.tries.get(place, 0) + 1
        if exc.permanent or not exc.refused or self.tries[place] < self.config.poison_tries:
            raise exc
        del self.tries[place]
        lines = [line for record in exc.failed for line in record_lines(record.data)]
        self.outbox.add([make_reject(flow.lake_stream, path, line, REFUSED) for line in lines])
        self.refused += len(lines)
        log.error("%s: %d line(s) Firehose refused %d times set aside in %s: %s", path,
                  len(lines), self.config.poison_tries, self.outbox.path, exc)  # fmt: skip
        return ShipStats()

    def _quarantine_for(self, flow: Flow) -> Callable[[str, str], None]:
        return lambda name, why: self.quarantine_file(flow, name, why)

    def _checkpoint_failed(self, flow: Flow, tailer: Tailer, exc: CheckpointUnwritable) -> None:
        self.checkpoint_error = (
            f"checkpoint {tailer.checkpoints.file} of flow {flow.delivery_stream} cannot be "
            f"written ({exc}); shipping stopped so that nothing is sent again and again: free "
            "space or make the file writable, then restart the shipper"
        )
        log.critical("%s", self.checkpoint_error)

    def quarantine_file(self, flow: Flow, name: str, why: str) -> None:
        """A file that cannot be read (a damaged deflate stream) is kept whole, with why, and
        reported; the other files go on."""
        folder = self.config.quarantine_folder
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        kept = folder / f"{flow.delivery_stream}-{Path(name).name}-{int(time.time())}"
        try:
            shutil.copyfile(name, kept)
        except OSError as exc:
            why = f"{why}; not copied ({exc})"
            kept = Path(name)
        self.quarantined_files[str(kept)] = f"{name}: {why}"
        log.error("%s cannot be read (%s): set aside whole as %s", name, why, kept)

    def deliver_rejects(self) -> None:
        """Rejected lines into the lake's quarantine; kept locally until that worked."""
        if not self.config.quarantine_bucket or self.s3 is None:
            return
        try:
            self.outbox.deliver(self.s3, self.config.quarantine_bucket)
        except Exception as exc:  # any S3 or file error: keep them, try again next poll
            self.reject_error = f"{type(exc).__name__}: {exc}"
            log.error("rejected lines not delivered to s3://%s (%s); kept in %s",
                      self.config.quarantine_bucket, exc, self.outbox.path)  # fmt: skip
        else:
            self.reject_error = None

    def _ship_flow(self, flow: Flow, tailer: Tailer, max_bytes: int) -> int:
        sent = 0
        try:
            for _ in range(CHUNKS_PER_TURN):
                chunk = tailer.next_chunk(max_bytes) if not self.stopping else None
                if chunk is None:
                    return sent
                sent += self._ship_chunk(flow, tailer, chunk)
        finally:  # what was acknowledged, also before a failure: a restart resumes there
            tailer.save_if_dirty()
        self.behind = True  # its turn ended with more to send: poll again without a pause
        return sent

    def _ship_chunk(self, flow: Flow, tailer: Tailer, chunk: Chunk) -> int:
        origin = Origin(self.host, chunk.fingerprint, chunk.start, flow.format_token)
        try:
            stats = ship_buffer(self.client, flow.delivery_stream, chunk.data, self.policy,
                                origin=origin, stopping=lambda: self.stopping)  # fmt: skip
        except ShippingError as exc:
            stats = self._set_aside_poison(flow, chunk.key, chunk.path, chunk.start, exc)
        if stats.oversize_lines:
            self.quarantine(flow, chunk.path, stats.oversize_lines, chunk.cut_line_bytes)
        tailer.commit(chunk)
        self.totals[flow.delivery_stream].add(stats)
        return stats.lines_shipped

    def _flow_failed(self, flow: Flow, exc: ShippingError) -> None:
        now = self.clock()
        previous = self.failures.get(flow.delivery_stream)
        # Unsent lines stay behind their checkpoint: the flow tries again, loses nothing.
        self.failures[flow.delivery_stream] = FlowFailure(
            error=str(exc),
            permanent=exc.permanent,
            since=previous.since if previous else now,
            since_wall=previous.since_wall if previous else time.time(),
            retry_at=now + self.policy.cap_seconds,
        )
        log.error("flow %s -> %s cannot ship (%s): %s; retrying in %.0f s",
                  flow.file_pattern, flow.delivery_stream,
                  "permanent" if exc.permanent else "transient", exc,
                  self.policy.cap_seconds)  # fmt: skip

    def failing_too_long(self) -> list[str]:
        """Streams that have failed permanently for ``failExitMinutes``: a case for a person."""
        limit = self.config.fail_exit_minutes * 60
        return [
            stream for stream, failure in self.failures.items()
            if failure.permanent and self.clock() - failure.since >= limit
        ]  # fmt: skip

    def quarantine(self, flow: Flow, path: str, lines: list[bytes], whole_bytes: int = 0) -> None:
        """Lines Firehose cannot take (over 1,000 KiB) go to the local outbox, with their
        reason, before the checkpoint moves past them: set aside, never skipped; from there
        into the lake's quarantine (``rejects``)."""
        rejects = [make_reject(flow.lake_stream, path, line) for line in lines]
        if whole_bytes:  # a line over a read: its first part is kept, its length is the whole
            rejects = [replace(r, bytes=whole_bytes) for r in rejects]
        self.outbox.add(rejects)
        self.rejected += len(lines)
        log.error("%s: %d line(s) over the 1,000 KiB record limit set aside in %s",
                  path, len(lines), self.outbox.path)  # fmt: skip

    def flow_status(self, flow: Flow, tailer: Tailer) -> dict[str, Any]:
        totals = self.totals[flow.delivery_stream]
        failure = self.failures.get(flow.delivery_stream)
        return {
            "lines_read": totals.lines_read,
            "records_sent": totals.records_sent,
            "bytes_sent": totals.bytes_sent,
            "retries": totals.retries,
            "lag_bytes": tailer.lag(),
            "last_error": failure.error if failure else None,
            "error_permanent": failure.permanent if failure else None,
            "failing_since": failure.since_wall if failure else None,
            "file_errors": dict(tailer.errors),
            "reading_compressed": tailer.reading_compressed(),
            "checkpoint_recovered": tailer.checkpoints.recovered,
            "nul_bytes_skipped": tailer.nul_bytes_skipped,
            "spool_bytes": tailer.spool_bytes(),
            "spool_dropped_bytes": tailer.spool_dropped_bytes,
            "spool_error": tailer.spool_error,
        }

    def status(self) -> dict[str, Any]:
        return {
            "flows": {
                flow.delivery_stream: self.flow_status(flow, tailer)
                for flow, tailer in self.tailers
            },
            "rejected_lines": self.rejected,
            "refused_lines": self.refused,
            "quarantine_file": str(self.config.quarantine_file),
            "quarantine_bucket": self.config.quarantine_bucket,
            "rejects_pending": len(self.outbox.pending()),
            "rejects_error": self.reject_error,
            "checkpoint_error": self.checkpoint_error,
            "quarantined_files": dict(self.quarantined_files),
            "updated_at": time.time(),
        }

    def write_status(self) -> None:
        path = self.config.status_file
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.status(), indent=1))
        except OSError as exc:  # a full disk must not stop the shipping: it is logged
            log.error("status file %s not written: %s", path, exc)

    def run(self) -> int:
        """Poll until SIGTERM (exit 0) or until a flow has failed permanently for
        ``failExitMinutes`` (exit 3, so systemd logs it, restarts and can alert). On every
        way out the deleted files still holding unsent lines go to the spool first."""

        def stop(signum: int, _frame: Any) -> None:
            log.info("signal %d: finishing the batch in flight, then exiting", signum)
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            return self._poll_until_stopped()
        finally:
            for _, tailer in self.tailers:
                tailer.close()
            self.write_status()  # after the spooling: spool_bytes shows what went to disk

    def _poll_until_stopped(self) -> int:
        last_report = 0.0
        while not self.stopping:
            self.poll_once()
            if self.checkpoint_error:
                return EXIT_CHECKPOINT_UNWRITABLE
            if self.failures or time.monotonic() - last_report > 30:
                self.write_status()
                last_report = time.monotonic()
                log.info("status: %s", json.dumps(self.status()["flows"]))
            if failing := self.failing_too_long():
                log.critical("giving up: %s failed permanently for %.0f minutes; see status",
                             ", ".join(failing), self.config.fail_exit_minutes)  # fmt: skip
                return EXIT_FLOW_FAILING
            if not self.behind:
                time.sleep(self.config.poll_seconds)
        return 0


def firehose_client(config: ShipperConfig) -> Any:
    import boto3

    # The region follows the endpoint (firehose.<region>.amazonaws.com) unless set.
    match = re.match(r"https://firehose\.([a-z0-9-]+)\.amazonaws\.com", config.endpoint or "")
    region = (match and match[1]) or os.environ.get("AWS_REGION") or \
        os.environ.get("AWS_DEFAULT_REGION")  # fmt: skip
    from botocore.config import Config

    # A hung call ends within the unit's TimeoutStopSec (60 s) after SIGTERM: bounded
    # timeouts, and the shipper's own retries (which stop on SIGTERM) instead of botocore's.
    bounded = Config(connect_timeout=5, read_timeout=20, retries={"total_max_attempts": 1})
    return boto3.client("firehose", endpoint_url=config.endpoint, region_name=region,
                        config=bounded)  # fmt: skip


def s3_client(config: ShipperConfig) -> Any:
    """For rejected lines, when ``quarantine.bucket`` is set (same region as Firehose)."""
    if not config.quarantine_bucket:
        log.warning("no quarantine.bucket: lines over 1,000 KiB stay in %s only",
                    config.quarantine_file)  # fmt: skip
        return None
    import boto3

    region = firehose_client(config).meta.region_name
    # A local stand-in (or a VPC endpoint proxy) given as firehose.endpoint serves S3 too;
    # AWS's own firehose.<region>.amazonaws.com does not.
    aws = re.match(r"https://firehose(-fips)?\.[a-z0-9-]+\.amazonaws\.com", config.endpoint or "")
    endpoint = None if aws or not config.endpoint else config.endpoint
    return boto3.client("s3", region_name=region, endpoint_url=endpoint)


def lag_report(config: ShipperConfig) -> dict[str, dict[str, int]]:
    """Lag per file from the checkpoints alone: works while the shipper is down too."""
    return {
        flow.delivery_stream: Tailer(flow.file_pattern,
                                     Checkpoints(config.checkpoint_path(flow))).lag()
        for flow in config.flows
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="shoplogs-shipper", description="Ship log files to Kinesis Data Firehose."
    )
    parser.add_argument("command", choices=["run", "status", "render-agent-json"])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help=f"agent.json-style config (default: {DEFAULT_CONFIG})")  # fmt: skip
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"shipper: {exc}", file=sys.stderr)
        return 2
    if args.command == "render-agent-json":
        print(json.dumps(render_agent_json(config), indent=2))
    elif args.command == "status":
        last = json.loads(config.status_file.read_text()) if config.status_file.exists() else {}
        print(json.dumps({"lag_bytes": lag_report(config), "last_run": last}, indent=2))
    else:
        return Shipper(config, firehose_client(config), s3=s3_client(config)).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
