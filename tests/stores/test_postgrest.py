"""`postgrest` stores against a server speaking the PostgREST protocol into the real test PostgreSQL.

What is asserted is what the server received (tests/postgrest_server.py records it) and the
rows PostgreSQL holds afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from reqon.cli import main
from reqon.errors import RunError
from reqon.stores import postgrest as postgrest_module
from reqon.stores.postgrest import PostgrestEndpoint, PostgrestStore
from tests.postgrest_server import PostgrestState, serve

KEY = "sb-secret-key-4f9a1c"


@pytest.fixture
def endpoint(pg_url: str) -> Iterator[tuple[PostgrestEndpoint, PostgrestState, str]]:
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE books (id TEXT PRIMARY KEY, title TEXT, pages INT, tags JSONB, "
                           "_partial BOOLEAN)")
        connection.execute("CREATE SCHEMA shop")
        connection.execute("CREATE TABLE shop.books (id TEXT PRIMARY KEY, title TEXT)")
    server, state = serve(pg_url, KEY)
    try:
        yield PostgrestEndpoint(server.url, KEY), state, pg_url
    finally:
        server.close()


def rows(url: str, table: str = "books") -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as connection:
        return connection.execute(f"SELECT id, title, pages FROM {table} ORDER BY id").fetchall()


def use(store: PostgrestStore, body: Any) -> Any:
    async def main() -> Any:
        try:
            return await body(store)
        finally:
            await store.close()
    return asyncio.run(main())


def test_a_store_step_is_one_post_upserting_on_id(endpoint: Any) -> None:
    where, state, url = endpoint

    async def body(store: PostgrestStore) -> None:
        await store.write([("b", {"title": "Dune", "pages": 412}), ("a", {"title": "Emma", "tags": ["x"]})],
                          upsert=False, partial=None)

    use(PostgrestStore("books", "books", where), body)
    assert [(r.method, r.path, r.query) for r in state.requests] == [("POST", "/books", "on_conflict=id")]
    sent = state.requests[0]
    assert sent.headers["Prefer"] == "resolution=merge-duplicates,return=minimal"
    assert sent.headers["apikey"] == KEY and sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.body == [{"title": "Dune", "pages": 412, "id": "b"}, {"title": "Emma", "tags": ["x"], "id": "a"}]
    assert rows(url) == [("a", "Emma", None), ("b", "Dune", 412)]


def test_upsert_reads_the_affected_rows_then_posts_them_merged(endpoint: Any) -> None:
    where, state, url = endpoint

    async def body(store: PostgrestStore) -> Any:
        await store.write([("a", {"title": "Emma", "pages": 1})], upsert=False, partial=None)
        await store.write([("a", {"pages": 474}), ("c", {"title": "Ulysses"})], upsert=True, partial=True)
        return store.get("a"), store.get("zz"), store.count()

    got, missing, count = use(PostgrestStore("books", "books", where), body)
    assert [(r.method, r.query) for r in state.requests[1:3]] == [
        ("GET", 'select=*&id=in.("a","c")'), ("POST", "on_conflict=id")]
    assert state.requests[2].body == [{"id": "a", "title": "Emma", "pages": 474, "tags": None, "_partial": True},
                                      {"title": "Ulysses", "_partial": True, "id": "c"}]
    assert got == {"id": "a", "title": "Emma", "pages": 474, "tags": None, "_partial": True}
    assert missing is None and count == 2
    assert rows(url) == [("a", "Emma", 474), ("c", "Ulysses", None)]


def test_list_pages_with_limit_and_offset_in_id_order(endpoint: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    where, state, _ = endpoint
    monkeypatch.setattr(postgrest_module, "PAGE_SIZE", 2)

    async def body(store: PostgrestStore) -> list[str]:
        await store.write([(k, {"title": k}) for k in ("d", "b", "e", "a", "c")], upsert=False, partial=None)
        state.requests.clear()
        return [record["id"] for record in store.list()]

    assert use(PostgrestStore("books", "books", where), body) == ["a", "b", "c", "d", "e"]
    assert [r.query for r in state.requests] == [f"select=*&order=id.asc&limit=2&offset={n}" for n in (0, 2, 4)]


def test_a_schema_goes_into_the_profile_headers(endpoint: Any) -> None:
    where, state, url = endpoint
    shop = PostgrestEndpoint(where.url, KEY, "shop")

    async def body(store: PostgrestStore) -> Any:
        await store.write([("1", {"title": "Dune"})], upsert=False, partial=None)
        return store.list()

    assert use(PostgrestStore("books", "books", shop), body) == [{"id": "1", "title": "Dune"}]
    assert state.requests[0].headers["Content-Profile"] == "shop"
    assert state.requests[1].headers["Accept-Profile"] == "shop"
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT id, title FROM shop.books").fetchall() == [("1", "Dune")]
    assert rows(url) == []


def test_a_wrong_key_is_an_auth_failure_that_never_shows_the_key(endpoint: Any) -> None:
    where, state, url = endpoint
    wrong = PostgrestEndpoint(where.url, "not-the-right-key-77")

    async def body(store: PostgrestStore) -> None:
        await store.write([("1", {"title": "Dune"})], upsert=False, partial=None)

    with pytest.raises(RunError) as raised:
        use(PostgrestStore("books", "books", wrong), body)
    assert raised.value.kind == "auth" and raised.value.status == 401
    assert "POST" in raised.value.message and "401 Unauthorized after 1 attempt" in raised.value.message
    assert "Invalid API key ***" in raised.value.message and "not-the-right-key-77" not in raised.value.message
    assert len(state.requests) == 1 and rows(url) == []


def test_5xx_is_retried_and_a_lasting_one_fails_the_step(endpoint: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    where, state, url = endpoint
    monkeypatch.setattr(postgrest_module, "_BACKOFF_S", 0.01)

    async def body(store: PostgrestStore) -> None:
        state.fail_next[:] = [503, 502]
        await store.write([("1", {"title": "Dune"})], upsert=False, partial=None)
        assert [r.method for r in state.requests] == ["POST"] * 3
        state.fail_next[:] = [500, 500, 500]
        with pytest.raises(RunError) as raised:
            await store.write([("2", {"title": "Emma"})], upsert=False, partial=None)
        assert raised.value.kind == "http" and raised.value.status == 500
        assert "500 Internal Server Error after 3 attempts" in raised.value.message
        state.fail_next[:] = [501]
        with pytest.raises(RunError, match="501 Not Implemented after 1 attempt"):
            await store.write([("3", {"title": "Kim"})], upsert=False, partial=None)

    use(PostgrestStore("books", "books", where), body)
    assert len(state.requests) == 7
    assert rows(url) == [("1", "Dune", None)]


def test_a_mission_writes_through_postgrest_and_missing_settings_are_exit_3(
        endpoint: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    where, state, url = endpoint
    mission = tmp_path / "m.vague"
    mission.write_text("""
mission Shelve {
  store books: postgrest("books")
  action Put {
    store [{ id: "9", title: "Dune", pages: 412 }, { id: "10", title: "Emma" }] -> books
  }
  run Put
}
""")
    argv = ["run", str(mission), "--data-dir", str(tmp_path / "data"), "--output", str(tmp_path / "out.json")]
    for name in ("REQON_POSTGREST_URL", "REQON_POSTGREST_KEY", "REQON_POSTGREST_SCHEMA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQON_POSTGREST_URL", where.url)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(argv) == 3
    assert "reqon: configuration error: postgrest stores need REQON_POSTGREST_KEY" in err.getvalue()
    assert state.requests == []
    monkeypatch.setenv("REQON_POSTGREST_KEY", KEY)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(argv) == 0, err.getvalue()
    assert KEY not in err.getvalue() and KEY not in (tmp_path / "out.json").read_text()
    assert [r.method for r in state.requests] == ["POST", "GET"]  # the step, then --output's listing
    assert state.requests[0].body == [{"id": "9", "title": "Dune", "pages": 412}, {"id": "10", "title": "Emma"}]
    assert rows(url) == [("10", "Emma", None), ("9", "Dune", 412)]
    assert os.environ.get("REQON_POSTGREST_SCHEMA") is None
