"""A test server for the part of the PostgREST protocol that `postgrest` stores use.

It writes into the session's real PostgreSQL, so that the rows a store step leaves are the
rows PostgREST would leave. Implemented (docs/postgrest.md lists the store's requests):

* `GET /<table>` with `select=*` or `select=id`, `order=id.asc`, `limit`, `offset`,
  `id=eq.<v>`, `id=in.("a","b")`; `Prefer: count=exact` answers `Content-Range: a-b/N`;
* `POST /<table>?on_conflict=id` with a JSON array and `Prefer: resolution=merge-duplicates`:
  one `INSERT … ON CONFLICT (id) DO UPDATE` of the posted columns, in one transaction;
* `Accept-Profile` / `Content-Profile` select the schema;
* `apikey` and `Authorization: Bearer` must both carry the key, else 401 with a body that
  echoes the key it got (as a careless server might), so that tests see it redacted.

`state.requests` records what arrived; `state.fail_next` holds statuses to answer instead,
one per request, first to last.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import psycopg
from aiohttp import web
from psycopg import sql
from psycopg.types.json import Jsonb

from reqon.demo.server import ThreadedServer


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any


@dataclass
class PostgrestState:
    database_url: str
    key: str
    requests: list[Seen] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)


STATE = web.AppKey("state", PostgrestState)
_IN_LIST = re.compile(r'"((?:[^"\\]|\\.)*)"')


def make_app(state: PostgrestState) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app.router.add_route("*", "/{table}", _table)
    return app


async def _table(request: web.Request) -> web.Response:
    state = request.app[STATE]
    text = await request.text()
    state.requests.append(Seen(request.method, request.path, request.query_string, dict(request.headers),
                               json.loads(text) if text else None))
    if state.fail_next:
        status = state.fail_next.pop(0)
        return web.json_response({"message": f"injected {status}"}, status=status)
    given = request.headers.get("apikey", "")
    if given != state.key or request.headers.get("Authorization") != f"Bearer {state.key}":
        return web.json_response({"message": f"Invalid API key {given}", "code": "PGRST301"}, status=401)
    table = request.match_info["table"]
    schema = request.headers.get("Content-Profile" if request.method == "POST" else "Accept-Profile", "public")
    name = sql.Identifier(schema, table)
    async with await psycopg.AsyncConnection.connect(state.database_url) as connection:
        if request.method == "GET":
            return await _select(connection, name, request)
        if request.method == "POST":
            return await _upsert(connection, name, request, json.loads(text))
    return web.json_response({"message": "method not supported here"}, status=405)


async def _select(connection: psycopg.AsyncConnection[Any], name: sql.Composable,
                  request: web.Request) -> web.Response:
    query = request.query
    where, params = [], []
    if "id" in query:
        operator, _, value = query["id"].partition(".")
        if operator == "eq":
            where.append(sql.SQL("id::text = %s"))
            params.append(value)
        elif operator == "in":
            where.append(sql.SQL("id::text = ANY(%s)"))
            params.append([v.replace('\\"', '"').replace("\\\\", "\\") for v in _IN_LIST.findall(value)])
        else:
            return web.json_response({"message": f"operator {operator} not supported here"}, status=400)
    condition = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL("")
    order = sql.SQL(" ORDER BY id") if query.get("order") == "id.asc" else sql.SQL("")
    limit, offset = int(query.get("limit", "1000000")), int(query.get("offset", "0"))
    columns = sql.SQL("jsonb_build_object('id', t.id)") if query.get("select") == "id" else sql.SQL("to_jsonb(t)")
    rows = await (await connection.execute(
        sql.SQL("SELECT {} FROM {} t").format(columns, name) + condition + order + sql.SQL(" LIMIT %s OFFSET %s"),
        [*params, limit, offset])).fetchall()
    headers = {}
    if "count=exact" in request.headers.get("Prefer", ""):
        total = await (await connection.execute(sql.SQL("SELECT count(*) FROM {} t").format(name) + condition,
                                                params)).fetchone()
        span = f"{offset}-{offset + len(rows) - 1}" if rows else "*"
        headers["Content-Range"] = f"{span}/{total[0] if total else 0}"
    return web.json_response([row[0] for row in rows], headers=headers)


async def _upsert(connection: psycopg.AsyncConnection[Any], name: sql.Composable, request: web.Request,
                  rows: list[dict[str, Any]]) -> web.Response:
    if request.query.get("on_conflict") != "id" or "resolution=merge-duplicates" not in request.headers.get(
            "Prefer", ""):
        return web.json_response({"message": "only upserts on id are implemented here"}, status=400)
    columns = sorted({column for row in rows for column in row})
    identifiers = [sql.Identifier(c) for c in columns]
    statement = sql.SQL(
        "INSERT INTO {table} ({cols}) SELECT {cols} FROM jsonb_populate_recordset(NULL::{table}, %s) "
        "ON CONFLICT (id) DO UPDATE SET {updates}").format(
        table=name, cols=sql.SQL(", ").join(identifiers),
        updates=sql.SQL(", ").join(sql.SQL("{} = EXCLUDED.{}").format(i, i) for i in identifiers))
    try:
        async with connection.transaction():
            await connection.execute(statement, [Jsonb(rows)])
    except psycopg.Error as exc:
        return web.json_response({"message": str(exc).splitlines()[0]}, status=400)
    return web.Response(status=201)


def serve(database_url: str, key: str) -> tuple[ThreadedServer, PostgrestState]:
    state = PostgrestState(database_url, key)
    return ThreadedServer(make_app(state)), state
