"""Storing 100,000 records of about 300 bytes in one store step (issue 18): SQLite and PostgreSQL.

    .venv/bin/python -m bench.stores [--records N] [--rounds R] [--database URL]

Without `--database`, a throwaway PostgreSQL server is started with the test suite's helper
(tests/pg_server.py: initdb in a temporary directory, 127.0.0.1 only, durability settings as
in the tests) and removed afterwards; with it, the tables are created in that database.

Each round writes the records into a fresh table (all inserts) and then again (all
conflicts: `upsert: true`). Reported: records/s by wall clock and by CPU time (this process's, plus
the PostgreSQL server's processes when the benchmark started the server), best of the rounds, and the growth of peak RSS over the RSS before the first step (the
records themselves exist before, as they would in a mission). `--strategy` compares the
store's COPY path with pipelined `executemany` of `INSERT … ON CONFLICT`.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def make_records(n: int) -> list[tuple[str, dict[str, Any]]]:
    """~300 bytes of JSON each, shaped like a catalogue record."""
    records = []
    for i in range(n):
        record = {
            "id": i, "isbn": f"978{i:010d}", "title": f"The Book Number {i} of the Long Catalogue",
            "author": {"name": f"Author {i % 977}", "country": "NL"}, "price": round(5 + (i % 400) / 7, 2),
            "stock": i % 37, "tags": ["fiction", "paperback", f"shelf-{i % 50}"], "available": i % 3 != 0,
            "description": "A story about records, stores and the keys that hold them together " * 1,
            "updatedAt": "2025-03-01T09:30:12.345Z",
        }
        records.append((f"{i:08d}", record))
    return records


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


SERVER: list[int] = []  # the postmaster's pid when this benchmark started the server


def server_cpu_s() -> float:
    """CPU seconds used so far by the PostgreSQL server's processes (0 when not ours to see)."""
    if not SERVER:
        return 0.0
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if pid == SERVER[0] or int(fields[1]) == SERVER[0]:  # fields[1] is the parent pid
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def timed(write: Any) -> tuple[float, float]:
    """Wall seconds and CPU seconds (this process plus, when known, the database server's)."""
    gc.collect()
    wall, cpu, server = time.perf_counter(), time.process_time(), server_cpu_s()
    await write()
    return time.perf_counter() - wall, time.process_time() - cpu + server_cpu_s() - server


async def bench_sqlite(records: list[Any], rounds: int) -> list[tuple[str, float, float]]:
    from reqon.stores.sqlite import SqliteStore

    results = []
    for round_ in range(rounds):
        directory = Path(tempfile.mkdtemp(prefix="reqon-bench-"))
        try:
            store = SqliteStore("items", f"items{round_}", directory)
            insert = await timed(lambda: store.write(records, upsert=False, partial=None))
            upsert = await timed(lambda: store.write(records, upsert=True, partial=None))
            assert store.count() == len(records)
            await store.close()
            results += [("insert", *insert), ("upsert", *upsert)]
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    return results


async def bench_postgres(records: list[Any], rounds: int, url: str, strategy: str) -> list[tuple[str, float, float]]:
    from reqon.stores.postgres import PostgresDatabase, PostgresStore

    results = []
    database = PostgresDatabase.connect(url)
    try:
        for round_ in range(rounds):
            table = f"bench_{strategy}_{round_}_{int(time.time())}"
            store = PostgresStore("items", table, database)
            if strategy == "copy":
                insert = await timed(lambda: store.write(records, upsert=False, partial=None))
                upsert = await timed(lambda: store.write(records, upsert=True, partial=None))
            else:
                insert = await timed(lambda: executemany_write(database, table, records, upsert=False))
                upsert = await timed(lambda: executemany_write(database, table, records, upsert=True))
            assert store.count() == len(records)
            with database.session("drop") as connection:
                connection.execute(f'DROP TABLE "{table}"')
            results += [("insert", *insert), ("upsert", *upsert)]
    finally:
        await database.close()
    return results


async def executemany_write(database: Any, table: str, records: list[Any], *, upsert: bool) -> None:
    """The alternative to COPY: one pipelined `INSERT … ON CONFLICT` per record, in one transaction."""
    from reqon.stores.base import json_text, prepare_records

    merge = "t.record || EXCLUDED.record" if upsert else "EXCLUDED.record"
    statement = (f'INSERT INTO "{table}" AS t (key, record, updated_at) VALUES (%s, %s::jsonb, now()) '
                 f"ON CONFLICT (key) DO UPDATE SET record = {merge}, updated_at = EXCLUDED.updated_at")
    pool = await database._open_pool("items")
    async with pool.connection() as connection, connection.transaction():
        cursor = connection.cursor()
        for start in range(0, len(records), 1000):
            chunk = prepare_records("items", records[start:start + 1000])
            await cursor.executemany(statement, [(key, json_text(value)) for key, value in sorted(chunk)])


def report(name: str, n: int, results: list[tuple[str, float, float]], growth: float) -> None:
    for kind in ("insert", "upsert"):
        walls = [wall for k, wall, _ in results if k == kind]
        cpus = [cpu for k, _, cpu in results if k == kind]
        print(f"| {name} | {kind} | {n:,} | {min(walls):.2f} | {n / min(walls):,.0f} | {n / min(cpus):,.0f} "
              f"| {growth:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stores")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", help="PostgreSQL URL (default: start a throwaway server)")
    parser.add_argument("--strategy", choices=("copy", "executemany", "both"), default="copy")
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    args = parser.parse_args()
    records = make_records(args.records)
    size = sum(len(__import__("json").dumps(r, separators=(",", ":"))) for _, r in records[:1000]) / 1000
    print(f"{args.records:,} records, {size:.0f} bytes of JSON each on average, best of {args.rounds} rounds\n")
    print("| backend | step | records | best wall s | records/s (wall) | records/s (CPU, client + server) "
          "| peak RSS growth MB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    if args.only != "postgres":
        base = rss_mb()
        results = asyncio.run(bench_sqlite(records, args.rounds))
        report("SQLite", args.records, results, max(0.0, peak_mb() - base))
    if args.only == "sqlite":
        return
    server = None
    url = args.database
    if url is None:
        sys.path.insert(0, str(ROOT))
        from tests.pg_server import PostgresServer
        server = PostgresServer()
        server.start()
        url = server.create_database()
        SERVER.append(int((server.data / "postmaster.pid").read_text().split()[0]))
    try:
        strategies = ("copy", "executemany") if args.strategy == "both" else (args.strategy,)
        for strategy in strategies:
            base = rss_mb()
            results = asyncio.run(bench_postgres(records, args.rounds, url, strategy))
            report(f"PostgreSQL ({strategy})", args.records, results, max(0.0, peak_mb() - base))
    finally:
        if server is not None:
            server.destroy()


if __name__ == "__main__":
    main()
