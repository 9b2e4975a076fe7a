"""`sql` stores: one table each in the embedded SQLite database `<data-dir>/reqon.db`.

Choices (the spec only says "each store step is one SQLite transaction", §6.6.6):

* One connection per database file, shared by every `sql` store of the process, so steps of
  different stores never wait on each other's file locks.
* Calls run directly on the event-loop thread. A one-record step costs tens of
  microseconds (WAL, `synchronous=NORMAL`: a commit appends to the WAL without fsync), far
  less than a hop to a worker thread, and a synchronous step cannot be interrupted by
  cancellation, which is exactly the atomicity §7.7 asks for.
* `synchronous=NORMAL` rather than FULL: a committed step survives a crash of the process
  but may be lost (never half-applied, never corrupting) if the machine loses power before
  the next checkpoint. `flush()` runs a checkpoint, which fsyncs the WAL, so everything
  written before a flush survives power loss too: the same promise file stores make, at one
  fsync per flush instead of one per step.
* Upsert is read-merge-write inside the transaction: SQLite's `json_patch` follows RFC 7396
  (recursive merge, `null` deletes a field), which is not the language's upsert (§6.6.2).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reqon.errors import RunError
from reqon.stores.base import (
    TableStore,
    Items,
    JsonObject,
    SharedResources,
    chunks,
    Snapshot,
    json_text,
    merge_record,
    prepare_records,
    store_error,
)

DATABASE_NAME = "reqon.db"
_REQUIRED_COLUMNS = {"key", "record", "updated_at"}
_BUSY_TIMEOUT_SECONDS = 30.0  # another process's transaction (runs sharing reqon.db)
_CHUNK = 500  # keys per SELECT … IN (…): well under SQLite's limit of 32,766 variables


def quote_identifier(name: str) -> str:
    """Quote a table name so that a dot is part of the name, not a schema separator (§3.2)."""
    return '"' + name.replace('"', '""') + '"'


class SqliteDatabase:
    """One SQLite database file: the shared connection, cached row counts, durability.

    Row counts are cached per table and kept up to date by our own steps; `PRAGMA
    data_version` tells whether another connection (another reqon process) committed since,
    in which case the cache is dropped and tables are counted again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._generation = 0
        self._synced_generation = 0
        self._checkpoint_lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = _connect(path)
            _enable_wal(self._connection)
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._data_version = self._fetch_data_version()
        except (OSError, sqlite3.Error) as exc:
            raise store_error(f"cannot open the database {path}: {exc}") from exc

    def open_table(self, table: str) -> None:
        """Create the table if missing; refuse an existing table without our columns."""
        quoted = quote_identifier(table)
        with self._lock, self._errors(f"cannot open table {table}"):
            self._connection.execute(
                f"CREATE TABLE IF NOT EXISTS {quoted} "
                "(key TEXT PRIMARY KEY, record TEXT, updated_at TEXT)"
            )
            columns = {row[1] for row in self._connection.execute(f"PRAGMA table_info({quoted})")}
        if not _REQUIRED_COLUMNS <= columns:
            raise store_error(
                f"{self.path}: table {table} exists without the columns key, record and updated_at"
            )

    def write(self, table: str, records: Iterable[tuple[str, Any]], *, store: str, upsert: bool,
              partial: bool | None) -> None:
        """Apply one store step as one transaction (BEGIN IMMEDIATE … COMMIT).

        Records are validated, merged and written a chunk at a time, so a large step never
        holds more than one chunk of copies; a record that fails validation rolls back the
        chunks written before it. Each chunk costs one SELECT of the keys already there (to
        merge upserts and keep the row count) and one `executemany` of the upserts.
        """
        quoted = quote_identifier(table)
        insert = (
            f"INSERT INTO {quoted} (key, record, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE "
            "SET record = excluded.record, updated_at = excluded.updated_at"
        )
        updated_at = _timestamp()
        with self._lock, self._errors(f"cannot write to table {table}"):
            connection = self._connection
            connection.execute("BEGIN IMMEDIATE")
            try:
                added = 0
                for chunk in chunks(records, _CHUNK):
                    prepared = prepare_records(store, chunk)
                    existing = self._existing(quoted, [key for key, _ in prepared], with_records=upsert)
                    merged: dict[str, JsonObject] = {}
                    for key, value in prepared:
                        before = merged.get(key) if key in merged else existing.get(key)
                        if key not in merged and key not in existing:
                            added += 1
                        merged[key] = merge_record(before, value, upsert=upsert, partial=partial)
                    connection.executemany(
                        insert, [(key, json_text(record), updated_at) for key, record in merged.items()])
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            if table in self._counts:
                self._counts[table] += added
            self._generation += 1

    def _existing(self, quoted: str, keys: list[str], *, with_records: bool) -> dict[str, JsonObject | None]:
        """The keys of `keys` already in the table, with their records when an upsert needs them."""
        placeholders = ",".join("?" * len(keys))
        column = "record" if with_records else "NULL"
        rows = self._connection.execute(
            f"SELECT key, {column} FROM {quoted} WHERE key IN ({placeholders})", keys).fetchall()
        return {key: _decode(text) if with_records else None for key, text in rows}

    def get(self, table: str, key: str) -> JsonObject | None:
        query = f"SELECT record FROM {quote_identifier(table)} WHERE key = ?"
        with self._lock, self._errors(f"cannot read table {table}"):
            row = self._connection.execute(query, (key,)).fetchone()
        return _decode(row[0]) if row else None

    def list(self, table: str) -> Snapshot:
        """Every record in key order; TEXT's BINARY collation compares UTF-8 bytes, which
        is code-point order (§6.6.5). One SELECT is one read transaction: a snapshot."""
        query = f"SELECT record FROM {quote_identifier(table)} ORDER BY key"
        with self._lock, self._errors(f"cannot read table {table}"):
            rows = self._connection.execute(query).fetchall()
        return [_decode(text) for (text,) in rows]

    def items(self, table: str) -> Items:
        query = f"SELECT key, record FROM {quote_identifier(table)} ORDER BY key"
        with self._lock, self._errors(f"cannot read table {table}"):
            rows = self._connection.execute(query).fetchall()
        return [(key, _decode(text)) for key, text in rows]

    def count(self, table: str) -> int:
        with self._lock, self._errors(f"cannot count table {table}"):
            data_version = self._fetch_data_version()
            if data_version != self._data_version:
                self._counts.clear()
                self._data_version = data_version
            if table not in self._counts:
                query = f"SELECT COUNT(*) FROM {quote_identifier(table)}"
                self._counts[table] = self._connection.execute(query).fetchone()[0]
            return self._counts[table]

    async def flush(self) -> None:
        """Checkpoint the WAL in a worker thread when anything was committed since the last.

        The checkpoint runs on a connection of its own: a PASSIVE checkpoint does not take
        the write lock, so steps on the main connection go on while the fsyncs happen.
        """
        generation = self._generation
        if generation <= self._synced_generation:
            return
        await asyncio.to_thread(self._checkpoint, generation)

    def _checkpoint(self, generation: int) -> None:
        with self._checkpoint_lock:
            if generation <= self._synced_generation:
                return
            try:
                connection = _connect(self.path)
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                finally:
                    connection.close()
            except sqlite3.Error as exc:
                raise store_error(f"cannot checkpoint the database {self.path}: {exc}") from exc
            self._synced_generation = generation

    def close(self) -> None:
        """Close the connection; SQLite checkpoints and removes the WAL when it is the last."""
        with self._lock, self._errors(f"cannot close the database {self.path}"):
            self._connection.close()

    def _fetch_data_version(self) -> int:
        version: int = self._connection.execute("PRAGMA data_version").fetchone()[0]
        return version

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn SQLite failures (busy database, disk full, unencodable text) into store errors."""
        try:
            yield
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise store_error(f"{self.path}: {doing}: {exc}") from exc


def _connect(path: Path) -> sqlite3.Connection:
    """Autocommit mode (transactions are explicit); usable from the loop and the checkpointer."""
    return sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT_SECONDS
    )


def _enable_wal(connection: sqlite3.Connection) -> None:
    """Switch to WAL, waiting out another process doing the same: SQLite answers "database is
    locked" to that race at once, without calling the busy handler, so the busy timeout alone
    does not cover two runs that open a new shared database together."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_SECONDS
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _decode(text: str | None) -> JsonObject:
    value = json.loads(text) if text else {}
    if not isinstance(value, dict):
        raise store_error(f"a stored record is not a JSON object: {text[:80] if text else text!r}")
    return value


def _timestamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_databases: SharedResources[SqliteDatabase] = SharedResources()


class SqliteStore(TableStore):
    """An `sql` store declaration: one table of the shared database of its data directory."""

    kind = "sql"

    def __init__(self, name: str, target: str, data_dir: Path) -> None:
        self.name = name
        self.target = target
        path = data_dir / DATABASE_NAME
        self._registry_key = str(path.resolve())
        database = _databases.acquire(self._registry_key, lambda: SqliteDatabase(path))
        try:
            database.open_table(target)
        except RunError:
            self._release(database)
            raise
        self._database: SqliteDatabase | None = database

    async def write(
        self, records: Iterable[tuple[str, Any]], *, upsert: bool, partial: bool | None
    ) -> None:
        self._open().write(self.target, records, store=self.name, upsert=upsert, partial=partial)

    async def flush(self) -> None:
        await self._open().flush()

    async def close(self) -> None:
        """Flush, then let go of the database; closing twice is harmless."""
        database = self._database
        if database is None:
            return
        self._database = None
        try:
            await database.flush()
        finally:
            self._release(database)

    def _release(self, database: SqliteDatabase) -> None:
        if _databases.release(self._registry_key):
            database.close()

    def _open(self) -> SqliteDatabase:
        if self._database is None:
            raise store_error(f"store {self.name} is closed")
        return self._database
