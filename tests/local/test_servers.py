"""Local servers' ports: `make run` keeps local AWS on one port from run to run (dbt's
profile names the endpoint, and a changed profile costs dbt a whole-project parse)."""

from __future__ import annotations

import socket

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
