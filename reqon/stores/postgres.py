"""`sql` stores on PostgreSQL (`reqon run --database postgresql://…`, LANGUAGE.md §3.2, §6.6).

One `PostgresDatabase` per run, shared by every `sql` store, the sync checkpoints and the run
state. Choices (the spec only says "implementations may let the CLI point `sql` stores at
another database"):

* Tables are `key TEXT COLLATE "C" PRIMARY KEY, record JSONB, updated_at TIMESTAMPTZ`. The
  "C" collation makes the primary-key index sort in code-point order (§6.6.5) whatever the
  database's locale, so a listing is an index scan. JSONB is what people query afterwards;
  it does not keep the order of an object's fields (docs/stores.md says so).
* A store step runs on a connection of an async pool (psycopg 3 + psycopg-pool), so that
  parallel branches write at the same time, each step one transaction: its records are
  streamed with `COPY` into a temporary table in chunks (never the whole batch in memory
  as Python objects), then moved with one `INSERT … SELECT … ON CONFLICT (key) DO UPDATE`.
  Upsert merges on the server (`record || EXCLUDED.record` is exactly §6.6.2's top-level
  merge), so two processes upserting different fields of one key lose nothing. Rows are
  inserted in key order, so concurrent steps lock rows in the same order and cannot
  deadlock. COPY was chosen over pipelined `executemany` by measurement (bench/README.md).
* A step is shielded from cancellation: once it is applying, it completes or fails as a
  whole (§7.7), and `close` waits for it.
* Reads are synchronous because the evaluator is (see `Store`): they run on one plain
  connection, which sees committed steps only; one SELECT is one snapshot.
* The password (from the URL or `PGPASSWORD`) is replaced by `***` in every message this
  module produces; libpq never puts it in its own messages.
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from reqon.errors import ConfigError
from reqon.stores.base import (
    TableStore,
    PARTIAL_FIELD,
    Items,
    JsonObject,
    Snapshot,
    chunks,
    json_text,
    prepare_records,
    store_error,
)

_CHUNK = 1000
_CONNECT_TIMEOUT_S = 10
_POOL_SIZE = 8
_STAGING = "reqon_step"
_REQUIRED_COLUMNS = {"key", "record", "updated_at"}
_MIN_SECRET_LENGTH = 4

# psycopg-pool reports reconnection attempts through `logging`; without a handler Python
# would print them on stderr, past reqon's own reporting. Failures reach the user as errors.
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())
logging.getLogger("psycopg.pool").propagate = False


@dataclass(frozen=True)
class DatabaseAddress:
    """Where the database is, as the user should read it in messages, and the secret to hide."""

    url: str
    host: str
    port: str
    database: str
    user: str
    password: str | None

    def describe(self) -> str:
        return f"PostgreSQL at {self.host}:{self.port}, database {self.database}"

    def redact(self, text: str) -> str:
        """Hide the password, also URL-encoded, in any text about this database."""
        if not self.password or len(self.password) < _MIN_SECRET_LENGTH:
            return text  # too short to hide without mangling the message; libpq never echoes it anyway
        for form in {self.password, quote(self.password, safe=""), quote(self.password)}:
            text = text.replace(form, "***")
        return text


def parse_address(url: str) -> DatabaseAddress:
    """Read a libpq URL (or key=value string), filling what it omits as libpq would."""
    if not url.startswith(("postgresql://", "postgres://")) and "=" not in url:
        raise ConfigError("--database must be a PostgreSQL URL (postgresql://user@host:port/database)")
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise ConfigError(f"--database is not a valid PostgreSQL URL: {_first_line(exc)}") from None
    env = os.environ
    user = str(parts.get("user") or env.get("PGUSER") or getpass.getuser())
    host = str(parts.get("host") or env.get("PGHOST") or "localhost")
    address = DatabaseAddress(
        url=url, host=host, port=str(parts.get("port") or env.get("PGPORT") or "5432"),
        database=str(parts.get("dbname") or env.get("PGDATABASE") or user), user=user,
        password=str(parts["password"]) if parts.get("password") else env.get("PGPASSWORD") or None)
    return address


def quote_table(table: str) -> sql.Identifier:
    """The whole target is one quoted name: a dot does not select a schema (§3.2)."""
    return sql.Identifier(table)


class PostgresDatabase:
    """One PostgreSQL database for a run: a connection for reads and bookkeeping, a pool for steps.

    Open it with `await PostgresDatabase.open(url)`; every failure to connect is a
    `ConfigError` naming host, port and database (exit 3 before the first stage).
    """

    def __init__(self, address: DatabaseAddress) -> None:
        self.address = address
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[Any] | None = None
        self._pool: AsyncConnectionPool | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self._tables_ready: set[str] = set()
        self._locks: set[str] = set()
        self._pool_lock = asyncio.Lock()
        self._closed = False

    @classmethod
    def connect(cls, url: str) -> PostgresDatabase:
        """Connect now (a configuration error if that fails); the pool opens at the first step.

        The pool opens lazily because it belongs to the event loop that runs the steps.
        """
        database = cls(parse_address(url))
        database._connection = database._connect()
        return database

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.address.url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S,
                                   application_name="reqon")
        except psycopg.Error as exc:
            raise ConfigError(self.address.redact(
                f"cannot connect to {self.address.describe()} as user {self.address.user}: "
                f"{_connect_reason(exc)}")) from None

    # ------------------------------------------------------------ tables

    def open_table(self, table: str) -> None:
        """Create the table if missing; refuse an existing one without the store's columns.

        The creation runs under a transaction-level advisory lock, so two processes opening
        the same new table do not race in PostgreSQL's catalogue.
        """
        if table in self._tables_ready:
            return
        create = sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (key TEXT COLLATE \"C\" PRIMARY KEY, record JSONB NOT NULL, "
            "updated_at TIMESTAMPTZ NOT NULL DEFAULT now())").format(quote_table(table))
        with self.creating(f"cannot open table {table}") as connection:
            connection.execute(create)
            rows = connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s", (table,)).fetchall()
        columns = {name: kind for name, kind in rows}
        if not _REQUIRED_COLUMNS <= set(columns) or columns["record"] not in ("jsonb", "json"):
            raise store_error(f"{self.address.describe()}: table {table} exists without the columns "
                              "key, record (JSONB) and updated_at")
        self._tables_ready.add(table)

    # ------------------------------------------------------------ store steps

    async def write(self, store: str, table: str, records: Iterable[tuple[str, Any]], *,
                    upsert: bool, partial: bool | None) -> None:
        """Apply one store step as one transaction; cancelling the caller does not cut it."""
        task = asyncio.ensure_future(self._write(store, table, records, upsert=upsert, partial=partial))
        self._writes.add(task)
        task.add_done_callback(_settled)
        task.add_done_callback(self._writes.discard)
        await asyncio.shield(task)

    async def _write(self, store: str, table: str, records: Iterable[tuple[str, Any]], *,
                     upsert: bool, partial: bool | None) -> None:
        merge = "t.record || EXCLUDED.record" if upsert else "EXCLUDED.record"
        insert = sql.SQL(
            "INSERT INTO {} AS t (key, record, updated_at) "
            "SELECT key, record, now() FROM reqon_step WHERE round = %s ORDER BY key COLLATE \"C\" "
            "ON CONFLICT (key) DO UPDATE SET record = " + merge + ", updated_at = EXCLUDED.updated_at"
        ).format(quote_table(table))
        try:
            pool = await self._open_pool(store)
            async with pool.connection() as connection, connection.transaction():
                cursor = connection.cursor()
                rounds = await _stage(cursor, store, records, partial)
                for round_ in range(rounds):
                    await cursor.execute(insert, (round_,))
        except psycopg.Error as exc:  # the pool's PoolTimeout too: the server is gone
            raise store_error(self._message(f"store {store}: cannot write to table {table}", exc)) from None
        except (UnicodeEncodeError, ValueError) as exc:
            raise store_error(f"store {store}: cannot write to table {table}: {exc}") from None

    async def _open_pool(self, store: str) -> AsyncConnectionPool:
        async with self._pool_lock:
            if self._closed:
                raise store_error(f"store {store}: the database is closed")
            if self._pool is None:
                pool = AsyncConnectionPool(self.address.url, min_size=1, max_size=_POOL_SIZE, open=False,
                                           name="reqon", configure=_configure, timeout=30.0,
                                           reconnect_timeout=30.0,
                                           kwargs={"autocommit": True, "connect_timeout": _CONNECT_TIMEOUT_S,
                                                   "application_name": "reqon"})
                try:
                    await pool.open(wait=True, timeout=30.0)
                except BaseException:
                    await pool.close()  # or it keeps trying to connect in the background
                    raise
                self._pool = pool
            return self._pool

    # ------------------------------------------------------------ reads

    def get(self, table: str, key: str) -> JsonObject | None:
        query = sql.SQL("SELECT record FROM {} WHERE key = %s").format(quote_table(table))
        with self.session(f"cannot read table {table}") as connection:
            row = connection.execute(query, (key,)).fetchone()
        return _record(row[0]) if row else None

    def list(self, table: str) -> Snapshot:
        query = sql.SQL('SELECT record FROM {} ORDER BY key COLLATE "C"').format(quote_table(table))
        with self.session(f"cannot read table {table}") as connection:
            rows = connection.execute(query).fetchall()
        return [_record(value) for (value,) in rows]

    def items(self, table: str) -> Items:
        query = sql.SQL('SELECT key, record FROM {} ORDER BY key COLLATE "C"').format(quote_table(table))
        with self.session(f"cannot read table {table}") as connection:
            rows = connection.execute(query).fetchall()
        return [(key, _record(value)) for key, value in rows]

    def count(self, table: str) -> int:
        query = sql.SQL("SELECT count(*) FROM {}").format(quote_table(table))
        with self.session(f"cannot count table {table}") as connection:
            row = connection.execute(query).fetchone()
        return int(row[0]) if row else 0

    @contextmanager
    def creating(self, doing: str) -> Iterator[psycopg.Connection[Any]]:
        """A transaction for `CREATE … IF NOT EXISTS`, one process at a time.

        Two processes creating the same table at once can both pass IF NOT EXISTS and then
        collide in PostgreSQL's catalogue; a transaction-level advisory lock serialises them.
        """
        with self.session(doing) as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("reqon:ddl"),))
            yield connection

    @contextmanager
    def session(self, doing: str) -> Iterator[psycopg.Connection[Any]]:
        """The shared connection, reconnected if the server dropped it; errors become store errors."""
        with self._lock:
            try:
                if self._connection is None or self._connection.closed or self._connection.broken:
                    if self._connection is not None:
                        self._connection.close()
                        self._connection = None
                    self._connection = self._retake_locks(psycopg.connect(
                        self.address.url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S,
                        application_name="reqon"))
                yield self._connection
            except psycopg.Error as exc:
                raise store_error(self._message(doing, exc)) from None

    # ------------------------------------------------------------ locks and closing

    def try_lock(self, name: str) -> bool:
        """Take the session advisory lock `name` on the shared connection; False when held elsewhere.

        It lasts as long as that connection: PostgreSQL releases it when the process exits or
        dies, since the server ends the session with the socket. When the connection is lost
        and made again, the lock is taken again before anything else is done on it.
        """
        with self.session(f"cannot take the lock {name}") as connection:
            row = connection.execute("SELECT pg_try_advisory_lock(%s)", (_lock_key(name),)).fetchone()
        taken = bool(row and row[0])
        if taken:
            self._locks.add(name)
        return taken

    def unlock(self, name: str) -> None:
        """Let go of the session advisory lock `name` taken by `try_lock`."""
        if name not in self._locks:
            return
        self._locks.discard(name)
        with self.session(f"cannot let go of the lock {name}") as connection:
            connection.execute("SELECT pg_advisory_unlock(%s)", (_lock_key(name),))

    def _retake_locks(self, connection: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
        """The new connection, holding again every lock this process held; refused if one is taken."""
        for name in sorted(self._locks):
            row = connection.execute("SELECT pg_try_advisory_lock(%s)", (_lock_key(name),)).fetchone()
            if not (row and row[0]):
                connection.close()
                raise store_error(f"{self.address.describe()}: the advisory lock {name} was lost with the "
                                  "connection to the server, and another process holds it now")
        return connection

    async def close(self) -> None:
        """Wait for steps still applying, then close the pool and the connection."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        async with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def close_connection(self) -> None:
        """Close without an event loop, for commands that never ran a store step (`reqon runs`)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _message(self, doing: str, exc: BaseException) -> str:
        return self.address.redact(f"{self.address.describe()}: {doing}: {_first_line(exc)}")


def _settled(task: asyncio.Task[None]) -> None:
    """Retrieve the outcome of a step whose caller was cancelled, so asyncio does not report it
    as never retrieved; the failure itself was the caller's to report, and the caller is gone."""
    if not task.cancelled():
        task.exception()


async def _configure(connection: psycopg.AsyncConnection[Any]) -> None:
    """Every pooled connection gets its staging table once; commits empty it."""
    await connection.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (round INT NOT NULL, key TEXT NOT NULL, "
        "record JSONB NOT NULL) ON COMMIT DELETE ROWS")


async def _stage(cursor: psycopg.AsyncCursor[Any], store: str, records: Iterable[tuple[str, Any]],
                 partial: bool | None) -> int:
    """COPY the step's records into the staging table, chunk by chunk; return the rounds needed.

    A key written twice in one step goes into a later round, so that applying round after
    round applies each key's writes in their order, as one write after the other would.
    """
    seen: dict[str, int] = {}
    rounds = 0
    async with cursor.copy(f"COPY {_STAGING} (round, key, record) FROM STDIN") as copy:
        for chunk in chunks(records, _CHUNK):
            for key, value in prepare_records(store, chunk):
                if partial is not None:
                    value[PARTIAL_FIELD] = partial
                occurrence = seen.get(key, 0)
                seen[key] = occurrence + 1
                rounds = max(rounds, occurrence + 1)
                await copy.write_row((occurrence, key, json_text(value, separators=(",", ":"))))
    return rounds


def _record(value: Any) -> JsonObject:
    if not isinstance(value, dict):
        raise store_error(f"a stored record is not a JSON object: {str(value)[:80]}")
    return value


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for a name (stable across processes and versions)."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _connect_reason(exc: BaseException) -> str:
    """libpq's reason without its "connection to server at … failed:" preamble (we name the server)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    reasons = [line.rpartition(" failed: ")[2] for line in lines if " failed: " in line]
    reason = reasons[-1] if reasons else (lines[0] if lines else type(exc).__name__)
    reason = reason.removeprefix("FATAL:").strip()
    lowered = reason.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        reason += " (check the password in the URL, PGPASSWORD or ~/.pgpass)"
    elif "connection refused" in lowered:
        reason += " (is the server running and listening there?)"
    return reason


class PostgresStore(TableStore):
    """An `sql` store declaration: one table of the run's PostgreSQL database."""

    kind = "sql"

    def __init__(self, name: str, target: str, database: PostgresDatabase, *, owns_database: bool = False) -> None:
        self.name = name
        self.target = target
        self._owns_database = owns_database
        database.open_table(target)
        self._database: PostgresDatabase | None = database

    async def write(self, records: Iterable[tuple[str, Any]], *, upsert: bool, partial: bool | None) -> None:
        await self._open().write(self.name, self.target, records, upsert=upsert, partial=partial)

    async def flush(self) -> None:
        """A committed step is already durable in PostgreSQL."""

    async def close(self) -> None:
        """Let go of the database; a run closes it once every user is done, unless the store
        was opened on a database of its own. Closing twice is harmless."""
        database, self._database = self._database, None
        if database is not None and self._owns_database:
            await database.close()

    def _open(self) -> PostgresDatabase:
        if self._database is None:
            raise store_error(f"store {self.name} is closed")
        return self._database
