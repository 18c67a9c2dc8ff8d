"""Local servers' ports: `make run` keeps local AWS on one port from run to run (dbt's
profile names the endpoint, and a changed profile costs dbt a whole-project parse), and a
port taken from under moto does not stop it."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest

from local import aws, servers
from local.servers import free_port


def test_a_free_preferred_port_is_taken_again_run_after_run() -> None:
    port = free_port()
    assert free_port(port) == port
    with socket.socket() as server:  # a server that ran there and stopped
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
    assert free_port(port) == port


def test_a_preferred_port_something_listens_on_gives_way_to_a_free_one() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        port = free_port(taken)
        assert port != taken
        with socket.socket() as probe:  # and that one is really free
            probe.bind(("127.0.0.1", port))


def test_moto_starts_on_another_port_when_its_free_port_is_taken_before_it_binds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A port found free can be taken before moto binds it (a CI run saw moto exit with
    "Address already in use"): moto is started again on another port (start_on_free_port,
    which fakesnow's start shares)."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        picks = iter([taken])
        monkeypatch.setattr(
            servers, "free_port", lambda port=0: next(picks, None) or free_port(port)
        )
        with aws.moto_server(tmp_path / "moto.log") as endpoint:
            assert endpoint != f"http://127.0.0.1:{taken}"
            with urllib.request.urlopen(f"{endpoint}/moto-api/") as reply:
                assert reply.status == 200
    assert "in use" in (tmp_path / "moto.log").read_text()
