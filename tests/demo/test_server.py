"""The demo server, checked from the outside through real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from reqon.demo.server import ServerConfig, ThreadedServer, make_catalog, serve_in_thread

MakeServer = Callable[..., ThreadedServer]


@pytest.fixture
def server(demo_server: ThreadedServer) -> ThreadedServer:
    demo_server.stats.reset()
    return demo_server


@pytest.fixture
def client(server: ThreadedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url) as client:
        yield client


def _get(client: httpx.Client, url: str, **params: Any) -> Any:
    response = client.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _isbn13_is_valid(isbn: str) -> bool:
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(isbn))
    return len(isbn) == 13 and isbn.isdigit() and weighted % 10 == 0


# --- data set and pagination ------------------------------------------------------------


def test_page_pagination_walks_the_whole_catalog_once(client: httpx.Client) -> None:
    isbns: list[str] = []
    sizes: list[int] = []
    for page in range(1, 10):
        body = _get(client, "/books", page=page, per_page=25)
        assert body["page"] == page and body["total"] == 120
        sizes.append(len(body["items"]))
        isbns += [book["isbn"] for book in body["items"]]
    assert sizes[:6] == [25, 25, 25, 25, 20, 0]
    assert len(set(isbns)) == len(isbns) == 120
    assert all(_isbn13_is_valid(isbn) for isbn in isbns)


def test_offset_and_cursor_pagination_agree_with_pages(client: httpx.Client) -> None:
    by_page = [
        book["isbn"]
        for page in (1, 2, 3, 4)
        for book in _get(client, "/books", page=page, per_page=30)["items"]
    ]
    by_offset: list[str] = []
    while batch := _get(client, "/books/offset", offset=len(by_offset), limit=33)["items"]:
        by_offset += [book["isbn"] for book in batch]
    by_cursor: list[str] = []
    cursor: str | None = ""
    while cursor is not None:
        body = _get(client, "/books/cursor", after=cursor, limit=50)
        by_cursor += [book["isbn"] for book in body["items"]]
        cursor = body["next"]
    assert by_page == by_offset == by_cursor
    assert len(by_page) == 120


def test_book_price_and_stock_share_isbns(client: httpx.Client) -> None:
    isbn = _get(client, "/books", per_page=1)["items"][0]["isbn"]
    book = _get(client, f"/books/{isbn}")
    price = _get(client, f"/prices/{isbn}")
    stock = _get(client, f"/stock/{isbn}")
    assert book["isbn"] == price["isbn"] == stock["isbn"] == isbn
    assert isinstance(book["title"], str) and isinstance(book["authors"], list)
    assert price["currency"] == "EUR" and price["amount"] > 0
    assert isinstance(stock["on_hand"], int)


@pytest.mark.parametrize("path", ["/books/9780000000000", "/prices/x", "/stock/x", "/nope"])
def test_unknown_resources_are_json_404(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}


def test_bad_query_parameters_are_json_400(client: httpx.Client) -> None:
    for url in ("/books?page=0", "/books?per_page=abc", "/books/cursor?after=bogus"):
        response = client.get(url)
        assert response.status_code == 400, url
        assert "error" in response.json()


def test_catalog_is_deterministic_per_seed_and_has_null_pages() -> None:
    first, again, other = make_catalog(7, 200), make_catalog(7, 200), make_catalog(8, 200)
    assert first == again
    assert first.books != other.books
    pages = [book["pages"] for book in first.books]
    assert None in pages and any(isinstance(p, int) for p in pages)


def test_synthetic_pages_end_with_a_short_then_empty_page(client: httpx.Client) -> None:
    sizes = [
        len(_get(client, "/pages", page=page, size=40, total=100)["items"])
        for page in (1, 2, 3, 4)
    ]
    assert sizes == [40, 40, 20, 0]
    assert _get(client, "/items/42") == {"id": 42, "value": "item-42"}


# --- behaviour for runtime tests ----------------------------------------------------------


def test_peak_in_flight_counts_concurrent_slow_requests(server: ThreadedServer) -> None:
    async def fire() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url) as client:
            responses = await asyncio.gather(
                *(client.get("/hold", params={"group": "g", "n": 7}) for _ in range(7))
            )
        return [response.status_code for response in responses]

    assert asyncio.run(fire()) == [200] * 7
    assert server.stats.peak_in_flight == 7
    assert server.stats.in_flight == 0
    assert server.stats.count("/hold") == 7


def test_hold_answers_in_waves_and_the_last_wave_at_the_total(server: ThreadedServer) -> None:
    server.stats.reset()

    async def fire() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, limits=httpx.Limits(max_connections=3)) as client:
            params = {"group": "waves", "n": 3, "total": 7, "ms": 5}
            responses = await asyncio.gather(*(client.get("/hold", params=params) for _ in range(7)))
        return [response.json()["released"] for response in responses]

    assert asyncio.run(fire()) == [3] * 7
    assert server.stats.peak_in_flight == 3


def test_hold_gives_up_on_a_wave_that_never_fills(make_server: MakeServer) -> None:
    server = make_server()
    with httpx.Client(base_url=server.url) as client:
        held = client.get("/hold", params={"group": "lonely", "n": 2, "total": 1})
    assert held.status_code == 200  # the total releases the only request


def test_sequential_requests_never_overlap(server: ThreadedServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        for n in range(5):
            client.get(f"/items/{n}")
    assert server.stats.peak_in_flight == 1
    assert [arrival.target for arrival in server.stats.arrivals] == [
        f"/items/{n}" for n in range(5)
    ]


def test_latency_is_part_of_the_in_flight_time(make_server: MakeServer) -> None:
    server = make_server(latency_ms=1000)

    async def fire() -> None:
        async with httpx.AsyncClient(base_url=server.url) as client:
            await asyncio.gather(*(client.get(f"/items/{n}") for n in range(3)))

    started = time.monotonic()
    asyncio.run(fire())
    assert time.monotonic() - started >= 1.0
    assert server.stats.peak_in_flight == 3


def test_a_cancelled_client_request_is_seen_as_aborted(server: ThreadedServer) -> None:
    async def cancel_midway() -> None:
        async with httpx.AsyncClient(base_url=server.url) as client:
            request = asyncio.ensure_future(client.get("/slow", params={"ms": 5000}))
            await asyncio.sleep(0.1)
            request.cancel()
            await asyncio.gather(request, return_exceptions=True)

    asyncio.run(cancel_midway())
    deadline = time.monotonic() + 2
    while server.stats.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (server.stats.in_flight, server.stats.aborted) == (0, 1)


def test_flaky_fails_the_first_attempts_of_each_key(client: httpx.Client) -> None:
    params = {"key": "a", "fail": 2, "status": 429, "retry_after": 1}
    statuses = [client.get("/flaky", params=params).status_code for _ in range(3)]
    assert statuses == [429, 429, 200]
    assert client.get("/flaky", params=params).json() == {"key": "a", "attempt": 4}
    assert client.get("/flaky", params={"key": "b", "fail": 1}).status_code == 503
    failing = client.get("/flaky", params={"key": "c", "retry_after": 3})
    assert failing.headers["Retry-After"] == "3"


def test_stats_reset_forgets_flaky_keys(server: ThreadedServer, client: httpx.Client) -> None:
    assert client.get("/flaky", params={"key": "k"}).status_code == 503
    server.stats.reset()
    assert client.get("/flaky", params={"key": "k"}).status_code == 503


def test_fail_endpoint_returns_the_requested_status(client: httpx.Client) -> None:
    response = client.get("/fail", params={"status": 502, "ms": 10})
    assert response.status_code == 502
    assert response.json() == {"error": "requested failure", "status": 502}


def test_fail_paths_inject_failures(make_server: MakeServer) -> None:
    server = make_server(fail_paths={"/items/3": 500})
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/items/2").status_code == 200
        assert client.get("/items/3").status_code == 500
    assert server.stats.per_path == {"/items/2": 1, "/items/3": 1}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_echo_returns_the_request(client: httpx.Client, method: str) -> None:
    response = client.request(
        method, "/echo", params={"q": "1"}, json={"a": [1, 2]}, headers={"X-Token": "t"}
    )
    body = response.json()
    assert (body["method"], body["path"], body["query"]) == (method, "/echo", {"q": "1"})
    assert body["json"] == {"a": [1, 2]}
    assert body["headers"]["X-Token"] == "t"


# --- introspection ------------------------------------------------------------------------


def test_stats_endpoint_reports_and_resets_without_counting_itself(
    server: ThreadedServer, client: httpx.Client
) -> None:
    client.get("/items/1", params={"x": "y"})
    client.get("/items/1")
    snapshot = _get(client, "/_stats")
    assert snapshot["total"] == 2 and snapshot["peak_in_flight"] == 1
    assert snapshot["in_flight"] == snapshot["aborted"] == 0
    assert snapshot["per_path"] == {"/items/1": 2}
    assert [arrival[1:] for arrival in snapshot["arrivals"]] == [
        ["GET", "/items/1?x=y"],
        ["GET", "/items/1"],
    ]
    assert client.post("/_stats/reset").json() == {"reset": True}
    assert server.stats.total == 0 and server.stats.arrivals == []


def test_threaded_server_starts_fast_on_an_ephemeral_port() -> None:
    started = time.perf_counter()
    with serve_in_thread(ServerConfig(books=10)) as server:
        elapsed = time.perf_counter() - started
        assert httpx.get(f"{server.url}/books").json()["total"] == 10
    assert elapsed < 5  # no fixed wait for the server to come up (generous: a loaded machine)
    assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_command_line_serves_until_signalled(signum: signal.Signals) -> None:
    command = [sys.executable, "-m", "reqon.demo", "--port", "0", "--latency-ms", "5"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            assert line.startswith("listening on http://127.0.0.1:")
            url = line.removeprefix("listening on ")
            assert httpx.get(f"{url}/items/5").json() == {"id": 5, "value": "item-5"}
            process.send_signal(signum)
            assert process.wait(timeout=5) == 0
        finally:
            process.kill()
