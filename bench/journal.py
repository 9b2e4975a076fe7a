"""bench/journal: the run journal as a file against one SQLite transaction per iteration (issue 12).

Issue 12 allowed either "a journal, or one SQLite transaction in WAL mode with
`synchronous=NORMAL`, per iteration ... whichever measures better". reqon keeps the journal
(`reqon/engine/journal.py`, `FileBackend`: one `os.write` of one JSON line per iteration on
an O_APPEND descriptor, fsync about once a second in a worker thread). This module measures
it against `SqliteBackend` below, the same `RunStateBackend` contract on a table of an SQLite
database in WAL mode with `synchronous=NORMAL`: one INSERT committed per entry (autocommit),
`PRAGMA wal_checkpoint(PASSIVE)` as `sync` (a checkpoint fsyncs the WAL first).

Two measurements, both in CPU time (the machine is shared, so wall clock is not a figure):

* **appends**: entries shaped like `RunState.iteration_completed`'s (loop key, index, element
  hash, length, and the store writes: one record of about 300 bytes, or ten), appended from
  a task on an asyncio event loop at the pace of a run (2,500 per second, the throughput
  target, in bursts of 50), with `sync` scheduled in a worker thread at most once a second
  exactly as `RunState` does. Reported per append: the event loop thread's CPU
  (`time.thread_time`, what the loop pays) and the whole process's (`time.process_time`,
  the sync thread's checkpoints or fsyncs included). Several rounds, best and median.
* **throughput** (`--throughput`): `bench.engine`'s throughput mission (5,000 iterations of a
  `for … parallel` loop, concurrency 50, one GET and one write to a `file` store each) as a
  `reqon run` process, with the SQLite backend handed to `RunState.begin` through its
  `backend` parameter (the child process wraps `RunState.begin`; no product change), CPU
  time of the whole process and iterations/s in process, alternating the two backends.

Run:  .venv/bin/python -m bench.journal [--appends 10000] [--rate 2500] [--rounds 5] [--throughput 4]
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reqon.engine.journal import FileBackend, JsonObject

SYNC_INTERVAL_S = 1.0  # as reqon.engine.runstate.SYNC_INTERVAL_S


class SqliteBackend(FileBackend):
    """The run journal as rows of an SQLite database (WAL, `synchronous=NORMAL`); the snapshot
    stays a file, as in `FileBackend`.

    `append` commits one INSERT (the connection is in autocommit mode, so the statement is
    its own transaction): in WAL mode with `synchronous=NORMAL` that is a `write` to the WAL
    and no fsync, so a committed entry survives a crash of the process. `sync` runs a passive
    checkpoint on a second connection (it may run in a worker thread while the loop appends;
    a passive checkpoint never blocks the writer), which fsyncs the WAL before copying it into
    the database; the appending connection never checkpoints by itself
    (`wal_autocheckpoint=0`), so no fsync ever lands on the event loop's thread. `position` is
    the number of entries of the current journal; a new journal empties the table in the same
    transaction that records its id.
    """

    def __init__(self, snapshot: Path, database: Path) -> None:
        super().__init__(snapshot, database)
        self._db: sqlite3.Connection | None = None
        self._checkpointer: sqlite3.Connection | None = None
        self._count = 0

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.journal_path, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def start_journal(self, journal_id: str) -> None:
        self.close()
        self.journal_path.parent.mkdir(parents=True, exist_ok=True)
        with _as_os_error():
            db = self._connect()
            db.execute("PRAGMA wal_autocheckpoint=0")
            db.execute("CREATE TABLE IF NOT EXISTS journal (id TEXT NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS entries (position INTEGER PRIMARY KEY, entry TEXT NOT NULL)")
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM entries")
            db.execute("DELETE FROM journal")
            db.execute("INSERT INTO journal (id) VALUES (?)", (journal_id,))
            db.execute("COMMIT")
            self._db, self._checkpointer, self._count = db, self._connect(), 0

    def append(self, entry: JsonObject) -> None:
        if self._db is None:
            raise OSError(f"the journal {self.journal_path} is not open")
        text = json.dumps(entry, separators=(",", ":"), ensure_ascii=True)
        with _as_os_error():
            self._db.execute("INSERT INTO entries (position, entry) VALUES (?, ?)", (self._count, text))
        self._count += 1

    def position(self) -> int:
        return self._count

    def sync(self) -> None:
        with self._fd_lock, _as_os_error():
            if self._checkpointer is not None:
                self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def entries(self, journal_id: str, position: int) -> list[JsonObject]:
        if not self.journal_path.exists():
            return []
        try:
            db = sqlite3.connect(self.journal_path, timeout=30)
            try:
                row = db.execute("SELECT id FROM journal").fetchone()
                if row is None or row[0] != journal_id:
                    return []
                rows = db.execute("SELECT entry FROM entries WHERE position >= ? ORDER BY position",
                                  (max(0, position),)).fetchall()
            finally:
                db.close()
        except sqlite3.Error:
            return []  # no journal table yet, or a damaged database: nothing to replay
        found = [json.loads(text) for (text,) in rows]
        return [entry for entry in found if isinstance(entry, dict)]

    def close(self) -> None:
        with self._fd_lock, _as_os_error():
            db, checkpointer = self._db, self._checkpointer
            self._db = self._checkpointer = None
            if checkpointer is not None:
                checkpointer.close()
            if db is not None:
                try:
                    db.execute("PRAGMA wal_checkpoint(FULL)").fetchall()  # syncs the WAL: durable
                finally:
                    db.close()


@contextlib.contextmanager
def _as_os_error() -> Iterator[None]:
    """`RunState` reports an OSError of its backend as a store error; SQLite raises its own."""
    try:
        yield
    except sqlite3.Error as exc:
        raise OSError(f"SQLite: {exc}") from None


# ---------------------------------------------------------------- entries


RECORD = {  # about 300 bytes as JSON: what `store response -> results` writes for a typical API object
    "id": 0, "name": "Widget 0", "sku": "SKU-000000", "price": 19.99, "currency": "EUR", "stock": 42,
    "active": True, "tags": ["catalogue", "blue", "large"], "updatedAt": "2026-12-06T20:00:00.000Z",
    "owner": {"id": 7, "login": "someone", "url": "https://api.example.com/users/7"},
    "description": "A widget of the catalogue, as an API returns it.",
}


def entry(index: int, records: int) -> JsonObject:
    """One journal entry as `RunState.iteration_completed` builds it, with `records` store writes."""
    rows = [[f"{index}-{r}", {**RECORD, "id": index * 100 + r}] for r in range(records)]
    return {"k": "2.0/mission.vague:14:5", "i": index, "h": f"{index:016x}", "n": 5000,
            "w": [["results", False, None, rows]]}


def entry_bytes(records: int) -> int:
    return len(json.dumps(entry(12345, records), separators=(",", ":"))) + 1


# ---------------------------------------------------------------- appends


async def appends(backend: FileBackend, entries: list[JsonObject], rate: float) -> tuple[float, float, int]:
    """Append every entry from the event loop at `rate` entries per second (in bursts of 50),
    syncing as RunState does; (loop-thread CPU s, process CPU s, syncs started)."""
    loop = asyncio.get_running_loop()
    started = last = time.monotonic()
    syncing, syncs = None, 0
    thread0, process0 = time.thread_time(), time.process_time()
    for n, item in enumerate(entries):
        backend.append(item)
        now = time.monotonic()
        if now - last >= SYNC_INTERVAL_S and (syncing is None or syncing.done()):
            last, syncs = now, syncs + 1
            syncing = loop.run_in_executor(None, backend.sync)
        if n % 50 == 49:  # the pace of a run: the loop sleeps (no CPU) until the next burst is due
            await asyncio.sleep(max(0.0, started + (n + 1) / rate - time.monotonic()))
    thread1 = time.thread_time()
    if syncing is not None:
        await syncing
    return thread1 - thread0, time.process_time() - process0, syncs


def backend_for(kind: str, directory: Path) -> FileBackend:
    snapshot = directory / "Mission.json"
    if kind == "file":
        return FileBackend(snapshot, directory / "Mission.journal")
    return SqliteBackend(snapshot, directory / "Mission.journal.db")


def one_round(kind: str, records: int, count: int, rate: float) -> tuple[float, float, int, int]:
    """(loop-thread µs per append, process µs per append, syncs, bytes written) for one round."""
    entries = [entry(i, records) for i in range(count)]
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        backend = backend_for(kind, Path(tmp))
        backend.start_journal("bench")
        written = bytes_written()
        thread_s, process_s, syncs = asyncio.run(appends(backend, entries, rate))
        written = bytes_written() - written
        assert len(backend.entries("bench", 0)) == count  # every entry is there: a correct run
        backend.close()
    return thread_s / count * 1e6, process_s / count * 1e6, syncs, written


def encoding_us(records: int, count: int) -> float:
    """CPU µs per entry of what both backends do first: the entry as compact ASCII JSON."""
    entries = [entry(i, records) for i in range(count)]
    started = time.thread_time()
    for item in entries:
        json.dumps(item, separators=(",", ":"), ensure_ascii=True)
    return (time.thread_time() - started) / count * 1e6


def bytes_written() -> int:
    """Bytes this process has handed to `write` and its kin so far, all threads (`wchar` of
    /proc/self/io): the journal's lines, or SQLite's WAL frames and checkpoint copies."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def measure_appends(count: int, rounds: int, rate: float) -> None:
    print(f"### Appends: {count:,} entries per round at {rate:,.0f} per second, {rounds} rounds (alternating), "
          f"CPU µs per append; a record is {len(json.dumps(RECORD, separators=(',', ':'))):,} B of JSON\n")
    print("| entry | backend | loop thread best | loop thread median | process best | process median "
          "| syncs per round | bytes written per entry |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for records in (1, 10):
        found: dict[str, list[tuple[float, float, int, int]]] = {"file": [], "sqlite": []}
        for _ in range(rounds):
            for kind in found:
                found[kind].append(one_round(kind, records, count, rate))
        encoding = [encoding_us(records, count) for _ in range(rounds)]
        print(f"| {records} record{'s' if records > 1 else ''} | JSON encoding alone (in both) "
              f"| {min(encoding):.1f} | {statistics.median(encoding):.1f} | | | | |")
        for kind, results in found.items():
            loop_us, process_us = [r[0] for r in results], [r[1] for r in results]
            print(f"| {records} record{'s' if records > 1 else ''} ({entry_bytes(records):,} B) | {kind} "
                  f"| {min(loop_us):.1f} | {statistics.median(loop_us):.1f} | {min(process_us):.1f} "
                  f"| {statistics.median(process_us):.1f} | {statistics.median(r[2] for r in results):.0f} "
                  f"| {statistics.median(r[3] for r in results) / count:,.0f} B |", flush=True)
    print()


# ---------------------------------------------------------------- throughput, end to end


def child(kind: str, argv: list[str]) -> int:
    """`reqon run …` in this process, with the SQLite backend handed to `RunState.begin`."""
    from reqon.cli import main
    from reqon.engine.runstate import RunState, state_path

    if kind == "sqlite":
        begin = RunState.begin.__func__  # type: ignore[attr-defined]

        async def with_sqlite(cls: type[RunState], **kwargs: Any) -> RunState:
            name = kwargs["mission"].name.name
            data_dir = Path(kwargs["data_dir"])
            kwargs["backend"] = SqliteBackend(state_path(data_dir, name), data_dir / "runs" / f"{name}.journal.db")
            return await begin(cls, **kwargs)

        RunState.begin = classmethod(with_sqlite)  # type: ignore[method-assign, assignment]
    return main(argv)


def measure_throughput(repeat: int) -> None:
    from bench import engine

    engine.compile_bytecode()
    engine.RESULTS_KIND = "file"
    scenario = engine.scenarios(500)["throughput"]
    server = engine.Server(0)
    print(f"### throughput, end to end: {scenario.items:,} iterations, `file` results store, "
          f"{repeat} runs each (alternating); load average before: {os.getloadavg()[0]:.1f}\n")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            path = work / "throughput.vague"
            path.write_text(engine._mission("Throughput", scenario.body, server.url))
            found: dict[str, list[tuple[float, float]]] = {"file": [], "sqlite": []}
            for _ in range(repeat):
                for kind in found:
                    data = work / f"data-{kind}"
                    _, cpu, _, log = engine.timed(
                        [sys.executable, "-m", "bench.journal", "--child", kind, "run", str(path), "--json-log",
                         "--no-progress", "--data-dir", str(data)], Path.cwd())
                    found[kind].append((cpu, scenario.items / engine.stage_seconds(log)))
            print("| backend | process CPU s best | median | iterations/s in process best | median |")
            print("|---|---:|---:|---:|---:|")
            for kind, runs in found.items():
                cpus, rates = [r[0] for r in runs], [r[1] for r in runs]
                print(f"| {kind} | {min(cpus):.2f} | {statistics.median(cpus):.2f} | {max(rates):,.0f} "
                      f"| {statistics.median(rates):,.0f} |")
    finally:
        server.close()


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        sys.exit(child(sys.argv[2], sys.argv[3:]))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--appends", type=int, default=10000, help="entries per round")
    parser.add_argument("--rate", type=float, default=2500.0,
                        help="entries per second (default: the throughput target, 2,500 iterations/s)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--throughput", type=int, default=0, metavar="N",
                        help="also run the throughput mission N times with each backend")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}; "
          f"load average before: {os.getloadavg()[0]:.1f}\n")
    measure_appends(args.appends, args.rounds, args.rate)
    if args.throughput:
        measure_throughput(args.throughput)


if __name__ == "__main__":
    main()
