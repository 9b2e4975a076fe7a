"""Pagination edge cases (issue 5, §6.4) against a real server built to be awkward.

The server's pages are scripted per test: a cursor at a nested path, empty pages in
the middle, a cursor that comes back, an API that ignores the page parameter.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from reqon.demo.server import ThreadedServer
from tests.conftest import run_mission_text

Page = Callable[[dict[str, str]], Any]


class ScriptedServer(ThreadedServer):
    """`GET /list` answers `script(query)`; every query is recorded."""

    def __init__(self, script: Page) -> None:
        self.script = script
        self.queries: list[dict[str, str]] = []
        app = web.Application()
        app.router.add_get("/list", self._handle)
        super().__init__(app)

    async def _handle(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.queries.append(query)
        return web.json_response(self.script(query))


@pytest.fixture
def scripted() -> Iterator[Callable[[Page], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Page) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def mission(fetch_options: str) -> str:
    return f"""
mission Paging {{
  source Api {{ auth: none, base: env("DEMO_URL") }}
  store out: memory("out")
  action Fetch {{
    get "/list" {{ {fetch_options} }}
    store response -> out {{ key: toString(.n) }}
  }}
  run Fetch
}}
"""


def test_cursor_at_a_nested_path(scripted: Callable[[Page], ScriptedServer], tmp_path: Path) -> None:
    def script(q: dict[str, str]) -> Any:
        at = int(q.get("after", "0"))
        following = at + 2 if at + 2 < 6 else None
        return {"data": {"items": [{"n": at}, {"n": at + 1}]},
                "meta": {"paging": {"next": str(following) if following is not None else None}}}

    server = scripted(script)
    result = run_mission_text(mission('paginate: cursor(after, 2, "meta.paging.next"), items: "data.items"'),
                              tmp_path, url=server.url)
    assert result.code == 0, result.stderr
    assert [r["n"] for r in result.stores["out"]] == [0, 1, 2, 3, 4, 5]
    assert [q.get("after") for q in server.queries] == [None, "2", "4"]


def test_an_empty_page_in_cursor_pagination_does_not_stop_it(scripted: Callable[[Page], ScriptedServer],
                                                              tmp_path: Path) -> None:
    pages = {"": ([{"n": 1}], "b"), "b": ([], "c"), "c": ([{"n": 2}], None)}

    def script(q: dict[str, str]) -> Any:
        items, following = pages[q.get("after", "")]
        return {"items": items, "next": following}

    server = scripted(script)
    result = run_mission_text(mission('paginate: cursor(after, 10, "next")'), tmp_path, url=server.url)
    assert result.code == 0, result.stderr
    assert [r["n"] for r in result.stores["out"]] == [1, 2] and len(server.queries) == 3


def test_an_empty_page_ends_page_pagination(scripted: Callable[[Page], ScriptedServer], tmp_path: Path) -> None:
    def script(q: dict[str, str]) -> Any:
        page = int(q["page"])
        return {"items": [{"n": page * 10 + i} for i in range(2)] if page < 3 else []}

    server = scripted(script)
    result = run_mission_text(mission("paginate: page(page, 2)"), tmp_path, url=server.url)
    assert result.code == 0, result.stderr
    assert len(result.stores["out"]) == 4 and [q["page"] for q in server.queries] == ["1", "2", "3"]


def test_a_cursor_that_comes_back_stops_with_a_clear_error(scripted: Callable[[Page], ScriptedServer],
                                                           tmp_path: Path) -> None:
    server = scripted(lambda q: {"items": [{"n": 1}], "next": "same"})
    result = run_mission_text(mission('paginate: cursor(after, 1, "next")'), tmp_path, url=server.url)
    assert result.code == 1
    assert re.search(rf"Fetch: \S+mission\.vague:6:5: runtime: GET {re.escape(server.url)}/list\?after=same: "
                     r"pagination: page 2 returned cursor 'same' again; stopping instead of looping forever",
                     result.stderr), result.stderr
    assert len(server.queries) == 2


def test_an_api_that_ignores_the_page_parameter_is_caught(scripted: Callable[[Page], ScriptedServer],
                                                          tmp_path: Path) -> None:
    server = scripted(lambda q: {"items": [{"n": 1}, {"n": 2}]})
    result = run_mission_text(mission("paginate: offset(offset, 2)"), tmp_path, url=server.url)
    assert result.code == 1
    assert re.search(rf"Fetch: \S+mission\.vague:6:5: runtime: GET {re.escape(server.url)}/list\?offset=2: "
                     r"pagination: page 2 repeated page 1 \(does the API ignore \?offset=\?\)", result.stderr), \
        result.stderr
    assert [q["offset"] for q in server.queries] == ["0", "2"]


def test_the_page_cap_is_configurable(scripted: Callable[[Page], ScriptedServer], tmp_path: Path) -> None:
    server = scripted(lambda q: {"items": [{"n": int(q["page"])}]})
    result = run_mission_text(mission("paginate: page(page, 1), maxPages: 4"), tmp_path, url=server.url)
    assert result.code == 1
    assert re.search(rf"Fetch: \S+mission\.vague:6:5: runtime: GET {re.escape(server.url)}/list\?page=4: "
                     r"pagination did not finish within maxPages = 4 pages", result.stderr), result.stderr
    assert len(server.queries) == 4


def test_items_that_are_not_a_list_name_the_request(scripted: Callable[[Page], ScriptedServer],
                                                    tmp_path: Path) -> None:
    server = scripted(lambda q: {"data": {"rows": "not a list"}})
    result = run_mission_text(mission("items: \"data.rows\", paginate: page(page, 1)"), tmp_path, url=server.url)
    assert result.code == 1
    assert re.search(rf"Fetch: \S+mission\.vague:6:5: decode: GET {re.escape(server.url)}/list\?page=1: "
                     r"items: data\.rows is a string, expected a list", result.stderr), result.stderr
