"""Fixtures shared by the whole suite, one section per concern."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
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


# --- Ray (issue 15) ----------------------------------------------------------------------
# One local Ray instance for the whole session, 2 worker CPUs, bound to 127.0.0.1 only,
# usage statistics off, its temporary folder removed at the end. Missions run in-process
# with `--executor ray` join it; a `reqon run` subprocess joins it through `ray_cluster.address`.


@dataclass
class RayCluster:
    address: str
    temp_dir: Path


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    import shutil
    import tempfile

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # single node: every listener on loopback
    try:
        import ray
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("Ray is not installed (pip install -e '.[dev]' installs it); the Ray tests did not run")
    temp_dir = Path(tempfile.mkdtemp(prefix="reqon-ray-", dir="/tmp"))  # short: Ray's socket paths
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", _temp_dir=str(temp_dir),
             log_to_driver=False, logging_level="ERROR", namespace="reqon")
    try:
        yield RayCluster(ray.get_runtime_context().gcs_address, temp_dir)
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


# --- hostile HTTP server (HTTP layer tests) ---------------------------------------------
# A server that misbehaves on demand (tests/hostile_server.py): one per test, so that its
# recorded requests and its behaviour settings belong to that test alone.


@pytest.fixture
def hostile() -> Iterator[Any]:
    """A fresh `HostileServer`; `hostile.state` holds what it saw and how it behaves."""
    from tests.hostile_server import HostileServer

    server = HostileServer()
    yield server
    server.close()


# --- running missions in-process (evaluator, parallel, CLI and example tests) -----------
# `run_mission_text` writes a mission to a file and runs it through `reqon.cli.main`, the
# same entry point as the command line, with `--output` and `--data-dir` inside tmp_path;
# it returns the exit code, every store as `--output` wrote it, and stderr.


@dataclass
class RunResult:
    code: int
    stores: dict[str, list[Any]]
    stderr: str
    stdout: str
    elapsed_s: float
    data_dir: Path

    def keyed(self, name: str, key: str) -> dict[str, Any]:
        """The records of store `name` indexed by their field `key`."""
        return {record[key]: record for record in self.stores[name]}


def run_mission_text(
    text: str, tmp_path: Path, *args: str, url: str | None = None, file_name: str = "mission.vague"
) -> RunResult:
    """Run `text` as a mission file with `DEMO_URL` set to `url`; see `RunResult`."""
    mission = tmp_path / file_name
    mission.write_text(text, encoding="utf-8")
    return run_mission_path(mission, tmp_path, *args, url=url)


def run_mission_path(path: Path, tmp_path: Path, *args: str, url: str | None = None) -> RunResult:
    """`reqon run PATH` (a file or a multi-file directory) with `--output` and `--data-dir`
    in tmp_path and `DEMO_URL` set to `url`."""
    from reqon.cli import main

    output = tmp_path / "output.json"
    output.unlink(missing_ok=True)
    data_dir = tmp_path / "data"
    argv = ["run", str(path), "--output", str(output), "--data-dir", str(data_dir), *args]
    saved = os.environ.get("DEMO_URL")
    if url is not None:
        os.environ["DEMO_URL"] = url
    err, out = io.StringIO(), io.StringIO()
    started = time.monotonic()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(argv)
    finally:
        if saved is None:
            os.environ.pop("DEMO_URL", None)
        else:
            os.environ["DEMO_URL"] = saved
    elapsed = time.monotonic() - started
    stores = json.loads(output.read_text("utf-8")) if output.exists() else {}
    return RunResult(code, stores, err.getvalue(), out.getvalue(), elapsed, data_dir)


# --- `reqon run` as a real process (signals, kills, exit codes) --------------------------


def start_reqon_run(mission: Path, data_dir: Path, output: Path, url: str, *args: str,
                    stdout: int = subprocess.PIPE) -> subprocess.Popen[str]:
    """`python -m reqon.cli run MISSION` with `DEMO_URL=url`, without REQON_DEBUG, from the repo root."""
    env = dict(os.environ, DEMO_URL=url)
    env.pop("REQON_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "reqon.cli", "run", str(mission), "--data-dir", str(data_dir),
         "--output", str(output), *args],
        stdout=stdout, stderr=subprocess.PIPE, text=True, env=env, cwd=Path(__file__).resolve().parents[1])


# --- PostgreSQL (sql stores on --database, checkpoints and run state) -------------------
# One real server per test session (tests/pg_server.py), started on first use; each test
# that asks for `pg_url` gets a fresh database in it. When no server can be started the
# tests fail with the reason under CI=true, and are skipped with the reason printed locally.


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    from tests.pg_server import PostgresServer, ServerUnavailable

    server = PostgresServer()
    try:
        server.start()
    except ServerUnavailable as exc:
        server.destroy()
        reason = f"no PostgreSQL server could be started: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    yield server
    server.destroy()


@pytest.fixture
def pg_url(pg_server: Any) -> str:
    """The URL (with password) of a fresh database of the session's server."""
    url: str = pg_server.create_database()
    return url
