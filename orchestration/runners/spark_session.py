"""A warm local Spark session: the local runner's jobs run in one long-lived process.

A fresh ``spark-submit`` pays for a JVM's start and warm-up on every run (~20 s of the
demo's ~25 s Spark stage). Locally, the runner instead hands each job to a server process
that holds one Spark session and runs the same ``job.py`` in it, one job at a time; the
first job in a clone starts it. In AWS every job still gets its own EMR Spark, which is
what ``SHOPLOGS_SPARK_SESSION=fresh`` reproduces here.

What keeps a warm session honest:
- its name is a fingerprint of the job's code (spark/ and lake/) and of the interpreter, so
  an edit starts a new session and stops the stale one: a job never runs yesterday's code;
- each job gets the environment and AWS credentials its own spark-submit would have had,
  writes its output to its own log, and leaves nothing cached behind;
- a job that fails takes the session down with it, so the next job starts from a clean one;
- it stops itself after ``IDLE_SECONDS`` with no job (``make clean`` stops it at once).

    python -m orchestration.runners.spark_session serve <socket> [idle seconds]  # the runner's
    python -m orchestration.runners.spark_session stop <folder>    # stop every session in it
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from orchestration.settings import REPO_ROOT, SPARK_JOB
from orchestration.tools import ToolFailed, failure

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

IDLE_SECONDS = 15 * 60
START_SECONDS = 180.0
# Local Spark's sizing, for a spark-submit (spark_local.spark_submit_command) and the warm
# session alike; the job sets its correctness settings (job.build_session) on top, as on EMR.
LOCAL_CONF: dict[str, str | int | float | bool | None] = {
    "spark.master": "local[2]",
    "spark.driver.memory": "2g",
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.showConsoleProgress": "false",  # progress bars, in a log file
}
# The code a session has imported: an edit to any of it needs a new session.
JOB_CODE = ("spark", "lake")


def fingerprint(root: Path = REPO_ROOT) -> str:
    """A session's name: the job's code under ``root``, the interpreter and the conf."""
    digest = hashlib.sha256(f"{sys.executable}\n{sorted(LOCAL_CONF.items())}\n".encode())
    for folder in JOB_CODE:
        for path in sorted((root / folder).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _request(path: Path, message: dict[str, object], timeout: float | None = None) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(str(path))
        conn.sendall(json.dumps(message).encode() + b"\n")
        reply = conn.makefile("rb").readline()
    if not reply:
        raise ConnectionError(f"the Spark session at {path} closed without answering")
    return json.loads(reply)


def session_pid(path: Path) -> int | None:
    """The process id of the session serving at ``path``, if one answers."""
    try:
        return int(_request(path, {"ping": True}, timeout=5.0)["pid"])
    except (OSError, ValueError, KeyError):
        return None


def stop_sessions(folder: Path) -> None:
    """Stop every session in ``folder``."""
    for path in sorted(folder.glob("*.sock")):
        with contextlib.suppress(OSError, ValueError):
            _request(path, {"stop": True}, timeout=10.0)
        path.unlink(missing_ok=True)


# A Unix socket's path is at most this many bytes (sun_path, less its closing NUL).
SOCKET_PATH_BYTES = 107


def socket_path(folder: Path) -> Path:
    """Where the session for the current code listens in ``folder``; ``ToolFailed`` naming
    the setting if that path is too long for a socket, before anything starts."""
    path = folder / f"{fingerprint()}.sock"
    if len(os.fsencode(path)) > SOCKET_PATH_BYTES:
        longest = SOCKET_PATH_BYTES - len(os.fsencode(path)) + len(os.fsencode(folder))
        raise ToolFailed(
            f"SHOPLOGS_SPARK_SESSION={folder}: the warm Spark session's socket in that folder "
            f"would be longer than the {SOCKET_PATH_BYTES} bytes a Unix socket's path may be. "
            f"Name a folder of at most {longest} bytes, or set SHOPLOGS_SPARK_SESSION=fresh."
        )
    return path


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One process at a time uses the folder's session (two runs at once take turns), so
    a session is never asked whether it answers while it runs someone else's job."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = (folder / ".lock").open("w")
    except OSError as exc:
        raise ToolFailed(
            f"SHOPLOGS_SPARK_SESSION={folder}: the warm Spark session cannot use that folder "
            f"({exc.strerror}). Name a folder this user can write, or set "
            "SHOPLOGS_SPARK_SESSION=fresh."
        ) from exc
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_session(
    folder: Path, env: Mapping[str, str], idle_seconds: float = IDLE_SECONDS
) -> Path:
    """The socket of a warm session for the current code, started if there is none."""
    with _locked(folder):
        return _ensure(folder, env, idle_seconds)


def _ensure(folder: Path, env: Mapping[str, str], idle_seconds: float) -> Path:
    path = socket_path(folder)
    if session_pid(path):
        return path
    stop_sessions(folder)  # older code's sessions, and a dead one's socket
    log = path.with_suffix(".log")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestration.runners.spark_session", "serve", str(path),
             str(idle_seconds)],
            cwd=REPO_ROOT, env=dict(env), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,  # it outlives this run
        )  # fmt: skip
    deadline = time.monotonic() + START_SECONDS
    while not session_pid(path):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise ToolFailed(failure("the local Spark session", process.poll(), log))
        time.sleep(0.2)
    return path


def run_in_session(
    folder: Path, command: list[str], *, what: str, log_file: Path, env: Mapping[str, str]
) -> None:
    """Run ``job.py``'s ``command`` arguments in the warm session, as ``run_tool`` runs a
    spark-submit: output in ``log_file``, ``ToolFailed`` naming ``what`` on failure."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with _locked(folder):
        path = _ensure(folder, env, IDLE_SECONDS)
        log_file.write_text(
            f"$ {what} in the warm local Spark session ({path.with_suffix('.log')})\n"
        )
        try:
            reply = _request(path, {"argv": command, "env": dict(env), "log": str(log_file)})
        except (OSError, ValueError) as exc:
            raise ToolFailed(f"{what}: the local Spark session ended mid-job ({exc}); "
                             f"its log: {path.with_suffix('.log')}") from exc  # fmt: skip
    if reply["rc"] != 0:
        raise ToolFailed(failure(what, reply["rc"], log_file))


# --- The server -------------------------------------------------------------------------


@contextlib.contextmanager
def _job_io(log: Path, env: Mapping[str, str]) -> Iterator[None]:
    """The job's stdout and stderr into its log, and its environment in place of ours."""
    import boto3

    saved_env = dict(os.environ)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = os.dup(1), os.dup(2)
    with log.open("ab") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
    os.environ.clear()
    os.environ.update(env)
    boto3.DEFAULT_SESSION = None  # it keeps the credentials it first found (local/iam.py)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        os.close(saved_fds[0])
        os.close(saved_fds[1])
        os.environ.clear()
        os.environ.update(saved_env)


def _run_job(
    main: Callable[..., int],
    spark: SparkSession,
    argv: list[str],
    log: Path,
    env: Mapping[str, str],
) -> int:
    with _job_io(log, env):
        try:
            return main(argv, keep_session=True)
        except SystemExit as exc:  # argparse, and the job's own messages for its arguments
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
                return 1
            return int(exc.code or 0)
        except BaseException:
            traceback.print_exc()
            return 1
        finally:
            spark.catalog.clearCache()


def serve(path: Path, idle_seconds: float = IDLE_SECONDS) -> None:
    """Start Spark, then run the jobs sent to ``path`` until idle, stopped, or a job fails."""
    sys.path.insert(0, str(SPARK_JOB.parent))  # as spark-submit puts job.py's folder first
    import job
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.config(map=LOCAL_CONF).getOrCreate()
    path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        own = path.stat().st_ino
        server.listen(16)
        server.settimeout(idle_seconds)
        print(f"serving jobs at {path} (pid {os.getpid()})", flush=True)
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                print(f"no job for {idle_seconds:.0f} s: stopping", flush=True)
                break
            with conn:
                conn.settimeout(None)
                request = json.loads(conn.makefile("rb").readline() or b"{}")
                if "argv" in request:
                    rc = _run_job(
                        job.main, spark, request["argv"], Path(request["log"]), request["env"]
                    )
                    reply = {"rc": rc}
                else:
                    rc, reply = 0, {"pid": os.getpid()}
                with contextlib.suppress(OSError):  # a client that went away mid-job
                    conn.sendall(json.dumps(reply).encode() + b"\n")
            if request.get("stop") or rc != 0:
                print("stopping: " + ("asked to" if rc == 0 else f"a job failed (exit {rc})"))
                break
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_ino == own:  # not a newer session's socket at the same path
            path.unlink()
    spark.stop()


def cli(argv: list[str]) -> int:
    if len(argv) in (2, 3) and argv[0] == "serve":
        serve(Path(argv[1]), *map(float, argv[2:]))
        return 0
    if len(argv) == 2 and argv[0] == "stop":
        stop_sessions(Path(argv[1]))
        return 0
    print(__doc__.rsplit("\n\n", 1)[-1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(cli(sys.argv[1:]))
