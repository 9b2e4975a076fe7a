"""Fixtures shared by the whole suite, one section per concern."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reqon.demo.server import ServerConfig, ThreadedServer, serve_in_thread

# --- demo HTTP server -------------------------------------------------------------------
# A real server on 127.0.0.1 (ephemeral port) that counts what it saw: see
# reqon/demo/server.py for endpoints and `Stats`.

MakeServer = Callable[..., ThreadedServer]


@pytest.fixture(scope="session")
def demo_server() -> Iterator[ThreadedServer]:
    """One zero-latency server for the session; call `demo_server.stats.reset()` first."""
    with serve_in_thread(ServerConfig()) as server:
        yield server


@pytest.fixture
def make_server() -> Iterator[MakeServer]:
    """`make_server(latency_ms=20, fail_paths={...})`: a private server, closed afterwards."""
    servers: list[ThreadedServer] = []

    def start(**config: Any) -> ThreadedServer:
        server = serve_in_thread(ServerConfig(**config))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
