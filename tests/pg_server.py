"""A real PostgreSQL server for the test session: initdb in a temporary directory, 127.0.0.1 only.

PostgreSQL refuses to run as root, and CI runs as root: then `initdb` and the server run as
the unprivileged `postgres` system user (through `runuser`). The superuser `reqon` has a
password and every TCP connection must give it (scram-sha-256), so that wrong-password
errors are real. Durability settings are off: the tests crash reqon, not the server, and a
server started per session must be fast to use.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

SUPERUSER = "reqon"
SERVER_USER = "postgres"


class ServerUnavailable(Exception):
    """No PostgreSQL server could be started here; the message says why."""


def find_binary(name: str) -> str:
    """`initdb`/`pg_ctl` from the PATH, else from Debian's /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise ServerUnavailable(f"{name} not found on PATH nor in /usr/lib/postgresql/*/bin "
                            "(install the Debian package 'postgresql')")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer:
    """One PostgreSQL cluster; `start()`, then `url(database)`, `create_database()`, `stop()`."""

    def __init__(self) -> None:
        self.password = "pw-" + secrets.token_hex(12)
        self.port = free_port()
        self.host = "127.0.0.1"
        self.root = Path(tempfile.mkdtemp(prefix="reqon-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log = self.root / "server.log"
        self._prefix: list[str] = []
        self._databases = 0

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        initdb, self.pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise ServerUnavailable(f"running as root and there is no '{SERVER_USER}' user "
                                        "to run PostgreSQL as") from None
            self._prefix = ["runuser", "-u", SERVER_USER, "--"]
        self.socket_dir.mkdir()
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._prefix:
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, SERVER_USER)
            shutil.chown(self.socket_dir, SERVER_USER)
            shutil.chown(pwfile, SERVER_USER)
        self._run([initdb, "-D", str(self.data), "-U", SUPERUSER, "--pwfile", str(pwfile),
                   "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C",
                   "--no-sync"], "initdb")
        pwfile.unlink()
        self.resume()

    def resume(self) -> None:
        """Start (or restart after `stop`) the server on the same port and data."""
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200 -c shared_buffers=32MB")
        self._run([self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60",
                   "start"], "pg_ctl start")

    def stop(self, mode: str = "fast") -> None:
        self._run([self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"], "pg_ctl stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except ServerUnavailable:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, command: list[str], what: str) -> None:
        try:
            result = subprocess.run(self._prefix + command, capture_output=True, text=True, timeout=120,
                                    cwd=self.root)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServerUnavailable(f"{what} failed: {exc}") from None
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise ServerUnavailable(f"{what} failed (exit {result.returncode}): "
                                    f"{result.stderr.strip()[-2000:]}\n{log}")

    # ------------------------------------------------------------ databases

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        secret = quote(self.password if password is None else password, safe="")
        return f"postgresql://{SUPERUSER}:{secret}@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database for one test; returns its URL."""
        import psycopg

        self._databases += 1
        name = f"t{self._databases}_{secrets.token_hex(3)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
        return self.url(name)
