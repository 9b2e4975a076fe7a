"""Keyed stores (§3.2, §6.6, §7.1): semantics shared by every kind, then each kind's storage."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from reqon.errors import RunError
from reqon.stores import Store, open_store, validate_target

T = TypeVar("T")

# "sql-pg" is an `sql` store on the session's PostgreSQL server (`--database`): the same
# contract runs against both backends of `sql`.
KINDS = ["memory", "file", "nosql", "sql", "sql-pg"]
PERSISTENT_KINDS = ["file", "nosql", "sql", "sql-pg"]
TARGETS = {
    "memory": "scratch",
    "file": "exports/items",
    "nosql": "items",
    "sql": "inventory.shelves",
    "sql-pg": "inventory.shelves",
}
_database_url: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _postgres_database(request: pytest.FixtureRequest) -> None:
    """Give every "sql-pg" case a fresh database of the session's PostgreSQL server."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("kind") == "sql-pg":
        _database_url["url"] = request.getfixturevalue("pg_url")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def open_kind(kind: str, data_dir: Path, name: str = "items") -> Store:
    if kind == "sql-pg":
        from reqon.stores.postgres import PostgresDatabase, PostgresStore

        database = PostgresDatabase.connect(_database_url["url"])
        return PostgresStore(name, TARGETS[kind], database, owns_database=True)
    return open_store(kind, name, TARGETS[kind], data_dir)


async def with_store(kind: str, data_dir: Path, body: Any) -> Any:
    """Run `body(store)` and close the store whatever happens."""
    store = open_kind(kind, data_dir)
    try:
        return await body(store)
    finally:
        await store.close()


def use(kind: str, data_dir: Path, body: Any) -> Any:
    return run(with_store(kind, data_dir, body))


async def write(
    store: Store,
    *records: tuple[str, dict[str, Any]],
    upsert: bool = False,
    partial: bool | None = None,
) -> None:
    await store.write(list(records), upsert=upsert, partial=partial)


# -- replace, upsert, partial (§6.6.2, §6.6.3) -------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_replace_makes_the_record_exactly_the_written_value(kind: str, tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        await write(store, ("1", {"id": 1, "title": "Dune", "stock": {"shelf": 3}}))
        await write(store, ("1", {"id": 1, "price": 9.5}))
        assert store.get("1") == {"id": 1, "price": 9.5}

    use(kind, tmp_path, body)


@pytest.mark.parametrize("kind", KINDS)
def test_upsert_merges_top_level_fields_and_replaces_nested_ones(
    kind: str, tmp_path: Path
) -> None:
    async def body(store: Store) -> None:
        await write(store, ("1", {"id": 1, "title": "Dune", "stock": {"shelf": 3, "bin": 7}}))
        await write(store, ("1", {"stock": {"shelf": 4}, "title": None, "price": 9}), upsert=True)
        await write(store, ("2", {"id": 2}), upsert=True)
        assert store.get("1") == {"id": 1, "title": None, "stock": {"shelf": 4}, "price": 9}
        if kind != "sql-pg":  # JSONB keeps fields in its own order (docs/stores.md)
            assert list((store.get("1") or {}).keys()) == ["id", "title", "stock", "price"]
        assert store.get("2") == {"id": 2}

    use(kind, tmp_path, body)


@pytest.mark.parametrize("kind", KINDS)
def test_partial_marker_is_set_after_the_merge_and_left_alone_without_the_option(
    kind: str, tmp_path: Path
) -> None:
    async def body(store: Store) -> None:
        await write(store, ("a", {"isbn": "a"}), upsert=True, partial=True)
        assert store.get("a") == {"isbn": "a", "_partial": True}
        await write(store, ("a", {"pages": 412, "_partial": True}), upsert=True, partial=False)
        assert store.get("a") == {"isbn": "a", "_partial": False, "pages": 412}
        await write(store, ("a", {"year": 1965}), upsert=True)
        assert (store.get("a") or {})["_partial"] is False
        await write(store, ("a", {"isbn": "a"}))
        assert store.get("a") == {"isbn": "a"}

    use(kind, tmp_path, body)


@pytest.mark.parametrize("kind", KINDS)
def test_records_of_one_step_apply_in_order(kind: str, tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        await write(store, ("k", {"a": 1}), ("k", {"b": 2}), upsert=True)
        await write(store, ("r", {"a": 1}), ("r", {"b": 2}))
        assert store.get("k") == {"a": 1, "b": 2}
        assert store.get("r") == {"b": 2}
        assert store.count() == 2

    use(kind, tmp_path, body)


# -- values (§5.1) ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_integral_doubles_are_stored_as_integers(kind: str, tmp_path: Path) -> None:
    async def body(store: Store) -> dict[str, Any] | None:
        await write(store, ("n", {"five": 5.0, "half": 0.5, "big": 2.0**60, "neg": -0.0,
                                  "nested": [{"x": 3.0}], "edge": 2.0**53}))
        return store.get("n")

    record = use(kind, tmp_path, body)
    # JSONB keeps numbers as decimals: a double beyond 2^53 comes back as the integer of its
    # shortest decimal form (docs/stores.md).
    big = 1152921504606847000 if kind == "sql-pg" else 2.0**60
    assert record == {"five": 5, "half": 0.5, "big": big, "neg": 0, "nested": [{"x": 3}],
                      "edge": 2**53}
    assert type(record["five"]) is int and type(record["nested"][0]["x"]) is int
    assert type(record["big"]) is type(big) and type(record["edge"]) is int


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (("k", ["not", "an", "object"]), "list, not an object"),
        (("k", {"x": float("nan")}), "nan is not a JSON number"),
        (("k", {"x": {1: "int key"}}), "is not a string"),
        (("k", {"x": {1, 2}}), "Python set is not a JSON value"),
        ((7, {"id": 7}), "key 7 is not a string"),
    ],
)
def test_an_invalid_record_fails_the_whole_step(
    kind: str, bad: tuple[Any, Any], says: str, tmp_path: Path
) -> None:
    async def body(store: Store) -> None:
        with pytest.raises(RunError) as raised:
            await store.write([("good", {"id": 1}), bad], upsert=False, partial=None)
        assert raised.value.kind == "store"
        assert says in raised.value.message and "store items" in raised.value.message
        assert store.list() == [] and store.count() == 0

    use(kind, tmp_path, body)


@pytest.mark.parametrize("kind", KINDS)
def test_the_store_keeps_its_own_copy_of_a_written_record(kind: str, tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        value = {"tags": ["a"]}
        await write(store, ("k", value))
        value["tags"].append("b")
        assert store.get("k") == {"tags": ["a"]}

    use(kind, tmp_path, body)


# -- reading (§6.6.5) -------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_list_is_in_code_point_order_of_keys(kind: str, tmp_path: Path) -> None:
    keys = ["9", "10", "a", "Z", "é", "\U0001F600", "\uffff", "", "09"]

    async def body(store: Store) -> list[str]:
        for key in keys:
            await write(store, (key, {"k": key}))
        await write(store, ("0", {"k": "0"}), ("zz", {"k": "zz"}))
        return [record["k"] for record in store.list()]

    listed = use(kind, tmp_path, body)
    assert listed == sorted(keys + ["0", "zz"])
    assert listed.index("10") < listed.index("9")
    assert listed.index("\uffff") < listed.index("\U0001F600")  # not UTF-16 order


@pytest.mark.parametrize("kind", KINDS)
def test_get_count_and_snapshots(kind: str, tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        assert store.count() == 0 and store.get("x") is None
        await write(store, ("1", {"v": 1}), ("2", {"v": 2}))
        snapshot = store.list()
        await write(store, ("1", {"v": 10}), ("3", {"v": 3}), upsert=True)
        assert snapshot == [{"v": 1}, {"v": 2}]
        assert store.count() == 3
        assert store.get("1") == {"v": 10} and store.get("x") is None

    use(kind, tmp_path, body)


@pytest.mark.parametrize("kind", KINDS)
def test_a_closed_store_refuses_to_work_except_closing_again(kind: str, tmp_path: Path) -> None:
    async def body() -> None:
        store = open_kind(kind, tmp_path)
        await store.close()
        await store.close()
        if kind != "memory":
            with pytest.raises(RunError, match="store items is closed"):
                await write(store, ("k", {}))

    run(body())


# -- concurrency (§6.6.4, §7.1) ---------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_concurrent_upserts_of_different_fields_all_survive(kind: str, tmp_path: Path) -> None:
    writers, steps, keys = 50, 20, 7

    async def writer(store: Store, w: int) -> None:
        for i in range(steps):
            await write(store, (f"key{(w + i) % keys}", {f"w{w}s{i}": i}), upsert=True)
            await asyncio.sleep(0)

    async def body(store: Store) -> None:
        await asyncio.gather(*(writer(store, w) for w in range(writers)))
        for k in range(keys):
            expected = {f"w{w}s{i}" for w in range(writers) for i in range(steps)
                        if (w + i) % keys == k}
            assert set((store.get(f"key{k}") or {}).keys()) == expected
        assert store.count() == keys

    use(kind, tmp_path, body)


@pytest.mark.parametrize("kind", KINDS)
def test_replace_steps_are_never_mixed_nor_seen_half_done(kind: str, tmp_path: Path) -> None:
    keys = [f"k{i}" for i in range(5)]
    seen: list[set[int]] = []

    async def writer(store: Store, w: int) -> None:
        for i in range(10):
            stamp = w * 100 + i
            await store.write([(key, {"a": stamp, "b": stamp, "c": stamp}) for key in keys],
                              upsert=False, partial=None)
            await asyncio.sleep(0)

    async def reader(store: Store, writers: asyncio.Future[Any]) -> None:
        reads = 0
        while reads < 40 or not writers.done():  # a database backend's steps take real time
            snapshot = store.list()
            if snapshot:
                seen.append({value for record in snapshot for value in record.values()})
            reads += 1
            await asyncio.sleep(0)

    async def body(store: Store) -> None:
        writers = asyncio.gather(*(writer(store, w) for w in range(20)))
        await asyncio.gather(writers, reader(store, writers), reader(store, writers))

    use(kind, tmp_path, body)
    assert len(seen) > 10
    assert all(len(values) == 1 for values in seen), "a snapshot mixed two store steps"


@pytest.mark.parametrize("kind", PERSISTENT_KINDS)
def test_steps_from_two_threads_sharing_one_target_are_atomic(kind: str, tmp_path: Path) -> None:
    """Two event loops in two threads (as a daemon may run) using two declarations of one
    target: they share the data (W513), and steps stay whole."""
    failures: list[str] = []

    async def hammer(w: int) -> None:
        store = open_kind(kind, tmp_path, name=f"writer{w}")
        try:
            for i in range(200):
                await store.write([(key, {"stamp": w * 1000 + i}) for key in ("a", "b", "c")],
                                  upsert=False, partial=None)
                stamps = {record["stamp"] for record in store.list()}
                if len(stamps) != 1:
                    failures.append(f"mixed snapshot {stamps}")
        finally:
            await store.close()

    threads = [threading.Thread(target=run, args=(hammer(w),)) for w in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []

    async def body(store: Store) -> list[dict[str, Any]]:
        return store.list()

    final = use(kind, tmp_path, body)
    assert len(final) == 3 and len({record["stamp"] for record in final}) == 1
    assert final[0]["stamp"] % 1000 == 199


# -- persistence (§6.6.6) ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_persistent_kinds_keep_records_across_reopen(kind: str, tmp_path: Path) -> None:
    async def first(store: Store) -> None:
        await write(store, ("2", {"id": 2, "name": "Emma"}), ("10", {"id": 10}))

    async def second(store: Store) -> tuple[list[dict[str, Any]], int]:
        return store.list(), store.count()

    use(kind, tmp_path, first)
    records, count = use(kind, tmp_path, second)
    if kind == "memory":
        assert (records, count) == ([], 0)
    else:
        assert (records, count) == ([{"id": 10}, {"id": 2, "name": "Emma"}], 2)


@pytest.mark.parametrize(
    ("kind", "target", "where"),
    [
        ("file", "exports/2024/items", "exports/2024/items.json"),
        ("nosql", "catalogue/books", "nosql/catalogue/books.json"),
        ("sql", "books", "reqon.db"),
    ],
)
def test_where_each_kind_keeps_its_data(
    kind: str, target: str, where: str, tmp_path: Path
) -> None:
    async def body() -> None:
        store = open_store(kind, "books", target, tmp_path / "data")
        await write(store, ("1", {"id": 1}))
        await store.close()

    run(body())
    assert (tmp_path / "data" / where).is_file()


@pytest.mark.parametrize("kind", ["file", "nosql"])
def test_flush_writes_a_valid_file_atomically_and_only_when_needed(
    kind: str, tmp_path: Path
) -> None:
    store = open_kind(kind, tmp_path)
    path = tmp_path / ("nosql/items.json" if kind == "nosql" else "exports/items.json")

    async def body() -> None:
        await store.flush()
        assert not path.exists(), "a clean store must not write a file"
        await write(store, ("b", {"name": "Bérénice", "n": 2.0}), ("a", {"x": "\ud800"}))
        await store.flush()
        inode = path.stat().st_ino
        await store.flush()
        assert path.stat().st_ino == inode, "a clean store must not rewrite its file"
        await write(store, ("c", {}))
        await store.flush()
        assert path.stat().st_ino != inode

    run(body())
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == {"a": {"x": "\ud800"}, "b": {"name": "Bérénice", "n": 2}, "c": {}}
    assert "Bérénice" in text and text.splitlines()[1].startswith('  "a": ')
    # no temporary file left; the flush lock (reqon/stores/locks.py) is the only other file
    assert sorted(p.name for p in path.parent.iterdir()) == [f".{path.name}.lock", path.name]
    run(store.close())


@pytest.mark.parametrize("kind", ["file", "nosql"])
def test_concurrent_flushes_leave_the_newest_contents(kind: str, tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        async def write_and_flush(i: int) -> None:
            await write(store, (f"k{i:02}", {"i": i}))
            await store.flush()

        await asyncio.gather(*(write_and_flush(i) for i in range(30)))

    use(kind, tmp_path, body)
    path = tmp_path / ("nosql/items.json" if kind == "nosql" else "exports/items.json")
    assert json.loads(path.read_text()) == {f"k{i:02}": {"i": i} for i in range(30)}
    assert sorted(p.name for p in path.parent.iterdir()) == [f".{path.name}.lock", path.name]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('{"a": {"id": 1},', "is not valid JSON"),
        ("", "is not valid JSON"),
        ('{"a": NaN}', "is not valid JSON"),
        ('[{"id": 1}]', "must hold one JSON object"),
        ('{"a": 1}', "the record for key 'a' is not a JSON object"),
        (b"\xff\xfe\x00garbage", "is not valid JSON"),
    ],
)
def test_a_damaged_file_is_a_clear_error_and_is_left_alone(
    content: str | bytes, says: str, tmp_path: Path
) -> None:
    path = tmp_path / "items.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    before = path.read_bytes()
    with pytest.raises(RunError) as raised:
        open_store("file", "items", "items", tmp_path)
    assert raised.value.kind == "store"
    assert str(path) in raised.value.message and says in raised.value.message
    assert path.read_bytes() == before


def test_a_file_written_by_hand_is_normalised_on_load(tmp_path: Path) -> None:
    (tmp_path / "items.json").write_text('{"b": {"n": 5.0}, "a": {"n": 1.5}}')

    async def body() -> list[dict[str, Any]]:
        store = open_store("file", "items", "items", tmp_path)
        try:
            return store.list()
        finally:
            await store.close()

    listed = run(body())
    assert listed == [{"n": 1.5}, {"n": 5}] and type(listed[1]["n"]) is int


@pytest.mark.parametrize("kind", PERSISTENT_KINDS)
def test_two_declarations_of_one_target_share_their_data(kind: str, tmp_path: Path) -> None:
    async def body() -> None:
        first = open_kind(kind, tmp_path, name="first")
        second = open_kind(kind, tmp_path, name="second")
        await write(first, ("1", {"from": "first"}))
        await write(second, ("2", {"from": "second"}))
        assert first.get("2") == {"from": "second"}
        assert first.count() == second.count() == 2
        await first.close()
        await write(second, ("3", {"from": "second"}))
        await second.close()
        reopened = open_kind(kind, tmp_path)
        assert [r["from"] for r in reopened.list()] == ["first", "second", "second"]
        await reopened.close()

    run(body())


# -- sql specifics ----------------------------------------------------------------------


def test_sql_stores_use_quoted_dotted_tables_and_keep_the_database_sound(tmp_path: Path) -> None:
    async def body() -> None:
        shelves = open_store("sql", "shelves", "inventory.shelves", tmp_path)
        books = open_store("sql", "books", "books", tmp_path)
        await write(shelves, ("s1", {"id": "s1", "rows": 4}))
        await write(books, ("b1", {"id": "b1"}), upsert=True, partial=True)
        await shelves.flush()
        await shelves.close()
        await books.close()

    run(body())
    connection = sqlite3.connect(tmp_path / "reqon.db")
    try:
        listing = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = {row[0] for row in listing}
        assert tables == {"inventory.shelves", "books"}
        query = 'SELECT key, record, updated_at FROM "inventory.shelves"'
        row = connection.execute(query).fetchone()
        assert row[0] == "s1" and json.loads(row[1]) == {"id": "s1", "rows": 4}
        assert row[2].endswith("Z") and row[2][:2] == "20"
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        connection.close()


def test_sql_step_that_fails_midway_is_rolled_back(tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        await write(store, ("kept", {"v": 1}))
        with pytest.raises(RunError) as raised:
            await write(store, ("kept", {"v": 2}), ("new", {}), ("\ud800", {"v": 3}))
        assert raised.value.kind == "store"
        assert store.list() == [{"v": 1}] and store.count() == 1

    use("sql", tmp_path, body)


def test_sql_count_notices_writes_by_another_connection(tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        await write(store, ("a", {}))
        assert store.count() == 1
        other = sqlite3.connect(tmp_path / "reqon.db")
        with other:
            other.execute('INSERT INTO "inventory.shelves" VALUES (?, ?, ?)', ("b", "{}", "now"))
        other.close()
        assert store.count() == 2
        assert store.get("b") == {}

    use("sql", tmp_path, body)


def test_sql_refuses_an_existing_table_without_the_store_columns(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "reqon.db")
    connection.execute('CREATE TABLE "books" (isbn TEXT PRIMARY KEY, title TEXT)')
    connection.close()
    with pytest.raises(RunError, match="exists without the columns key, record and updated_at"):
        open_store("sql", "books", "books", tmp_path)


# -- opening ----------------------------------------------------------------------------


def test_open_store_rejects_postgrest_unknown_kinds_and_bad_targets(tmp_path: Path) -> None:
    cases = [
        ("postgrest", "books", "postgrest stores need REQON_POSTGREST_URL and REQON_POSTGREST_KEY"),
        ("redis", "books", "unknown store kind 'redis'"),
        ("file", "../escape", 'no ".."'),
        ("sql", "1books", "must be a table name"),
    ]
    for kind, target, says in cases:
        with pytest.raises(RunError, match=says) as raised:
            open_store(kind, "books", target, tmp_path)
        assert raised.value.kind == "store"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kind", "target", "ok"),
    [
        ("file", "items", True),
        ("file", "exports/2024/items-v1.2_x", True),
        ("nosql", "a/./b", True),
        ("file", "", False),
        ("file", "/etc/passwd", False),
        ("file", "a//b", False),
        ("file", "a/", False),
        ("nosql", "a/../b", False),
        ("nosql", "..", False),
        ("file", "a b", False),
        ("file", "a\\b", False),
        ("sql", "books", True),
        ("sql", "_inventory.shelves2", True),
        ("postgrest", "public.books", True),
        ("sql", "", False),
        ("sql", "9lives", False),
        ("sql", 'bo"oks', False),
        ("postgrest", "books-2024", False),
        ("memory", "anything at all / ..", True),
        ("redis", "", True),
    ],
)
def test_validate_target(kind: str, target: str, ok: bool) -> None:
    message = validate_target(kind, target)
    assert (message is None) == ok
    if message is not None:
        assert kind in message and f'"{target}"' in message



# -- sql on PostgreSQL specifics ------------------------------------------------------------


def _pg_store(url: str, name: str = "items", target: str = "inventory.shelves") -> Store:
    from reqon.stores.postgres import PostgresDatabase, PostgresStore

    return PostgresStore(name, target, PostgresDatabase.connect(url), owns_database=True)


def test_postgres_tables_have_a_jsonb_record_and_a_code_point_ordered_key(pg_url: str) -> None:
    import psycopg

    async def body() -> None:
        store = _pg_store(pg_url)
        try:
            await write(store, ("s1", {"id": "s1", "rows": 4}))
        finally:
            await store.close()

    run(body())
    with psycopg.connect(pg_url) as connection:
        columns = connection.execute(
            "SELECT column_name, data_type, collation_name FROM information_schema.columns "
            "WHERE table_name = 'inventory.shelves' ORDER BY ordinal_position").fetchall()
        row = connection.execute('SELECT key, record, updated_at FROM "inventory.shelves"').fetchone()
    assert columns == [("key", "text", "C"), ("record", "jsonb", None),
                       ("updated_at", "timestamp with time zone", None)]
    assert row is not None and row[0] == "s1" and row[1] == {"id": "s1", "rows": 4} and row[2].year >= 2024


@pytest.mark.parametrize("bad", ["\x00", "\ud800"])
def test_postgres_step_with_text_postgresql_cannot_hold_is_rolled_back(pg_url: str, bad: str) -> None:
    async def body() -> None:
        store = _pg_store(pg_url)
        try:
            await write(store, ("kept", {"v": 1}))
            for step in ([("kept", {"v": 2}), ("new", {}), ("x", {"v": bad})],
                         [("kept", {"v": 2}), (bad, {"v": 3})]):
                with pytest.raises(RunError) as raised:
                    await store.write(step, upsert=False, partial=None)
                assert raised.value.kind == "store" and "cannot write to table inventory.shelves" in raised.value.message
            assert store.list() == [{"v": 1}] and store.count() == 1
        finally:
            await store.close()

    run(body())


def test_postgres_refuses_an_existing_table_without_the_store_columns(pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute('CREATE TABLE "books" (isbn TEXT PRIMARY KEY, title TEXT)')
    with pytest.raises(RunError, match="table books exists without the columns key, record .JSONB. and updated_at"):
        _pg_store(pg_url, "books", "books")


def test_postgres_a_step_far_larger_than_a_chunk_is_one_transaction(pg_url: str) -> None:
    """2,500 records (three COPY chunks), the last one invalid: nothing of the step is written."""
    async def body() -> None:
        store = _pg_store(pg_url)
        try:
            records: list[tuple[Any, Any]] = [(f"k{i:05}", {"i": i}) for i in range(2500)]
            with pytest.raises(RunError, match="is a list, not an object"):
                await store.write(records[:-1] + [("last", [1])], upsert=False, partial=None)
            assert store.count() == 0
            await store.write(records, upsert=True, partial=True)
            assert store.count() == 2500 and store.get("k02499") == {"i": 2499, "_partial": True}
        finally:
            await store.close()

    run(body())


def test_postgres_advisory_lock_is_taken_again_after_a_lost_connection(pg_url: str) -> None:
    import psycopg

    from reqon.stores.postgres import PostgresDatabase, _lock_key

    database = PostgresDatabase.connect(pg_url)
    other = psycopg.connect(pg_url, autocommit=True)
    try:
        assert database.try_lock("reqon:run:M")
        key = _lock_key("reqon:run:M")

        def others_can_take_it() -> bool:
            row = other.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if row and row[0]:
                other.execute("SELECT pg_advisory_unlock(%s)", (key,))
            return bool(row and row[0])

        def drop_reqons_connection() -> None:
            other.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = 'reqon' AND pid <> pg_backend_pid()")

        assert not others_can_take_it()
        drop_reqons_connection()
        with pytest.raises(RunError, match="terminating connection"):  # the query that finds it gone
            database.count("anything")
        assert database.try_lock("reqon:other")  # reconnected, and took the run's lock again first
        assert not others_can_take_it()
        drop_reqons_connection()
        other.execute("SELECT pg_advisory_lock(%s)", (key,))  # someone else got in meanwhile
        with pytest.raises(RunError):
            database.count("anything")
        with pytest.raises(RunError, match="the advisory lock reqon:run:M was lost with the connection"):
            database.count("anything")
    finally:
        other.close()
        database.close_connection()
