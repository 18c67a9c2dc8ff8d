"""Starting local servers: a free loopback port, waiting until a server answers, and
serving a folder of static pages (the docs site, the run report)."""

from __future__ import annotations

import functools
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class ServerDidNotStart(RuntimeError):
    pass


def free_port(preferred: int = 0) -> int:
    """``preferred`` if nothing listens on it (any free port when it is 0 or taken)."""
    with socket.socket() as sock:
        # As a server binds it: a port whose last connections linger in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers_at_all(status: int, body: bytes) -> bool:
    """Any HTTP answer, an error status included, means the server is up."""
    return True


def wait_until_answers(
    url: str,
    *,
    what: str,
    processes: list[subprocess.Popen] | None = None,
    timeout: float = 30.0,
    ready: Callable[[int, bytes], bool] = answers_at_all,
    see: str = "its log",
) -> None:
    """Poll ``url`` until ``ready(status, body)`` says the server is up.

    Fails at once, naming ``what`` and where to look (``see``), when one of ``processes``
    exits, and after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                status, body = reply.status, reply.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        except OSError:
            status, body = 0, b""
        if status and ready(status, body):
            return
        exited = [p for p in processes or [] if p.poll() is not None]
        if exited:
            raise ServerDidNotStart(
                f"{what} exited at start (exit code {exited[0].returncode}); see {see}"
            )
        if time.monotonic() > deadline:
            raise ServerDidNotStart(f"{what} did not answer at {url} within {timeout:.0f} s; "
                                    f"see {see}")  # fmt: skip
        time.sleep(0.1)


def start_on_free_port(
    command: Callable[[int], list[str]],
    url: Callable[[int], str],
    *,
    what: str,
    log: Any,
    see: str,
    preferred: int = 0,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
    ready: Callable[[int, bytes], bool] = answers_at_all,
) -> tuple[subprocess.Popen, int]:
    """Start the server ``command(port)`` on a free port (``preferred`` if free), output to
    ``log``, and wait until ``url(port)`` is ``ready``; the process and its port.

    A port found free can be taken before the server binds it (any process's next outgoing
    connection may get it): the server then exits at start, and is started again on another
    port, up to three times. Any other failure to start fails at once (``wait_until_answers``).
    """
    attempts = 3
    for attempt in range(1, attempts + 1):
        port = free_port(preferred)
        process = subprocess.Popen(command(port), stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_until_answers(url(port), what=what, processes=[process], timeout=timeout,
                               ready=ready, see=see)  # fmt: skip
            return process, port
        except ServerDidNotStart:
            exited = process.poll() is not None
            stop(process)
            if attempt == attempts or not exited or free_port(port) == port:
                raise  # not a port someone else took
    raise AssertionError("each attempt returns or raises")


def stop(process: subprocess.Popen) -> None:
    """Ask a server to stop, and make it if it does not within ten seconds."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """One line per file fetched would bury the URL the serving command prints."""


@contextmanager
def serving_folder(folder: Path, port: int | None = None) -> Iterator[str]:
    """Serve ``folder``'s static files on a loopback port (a free one unless given);
    yields the base URL, ending in ``/``."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", port or free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
