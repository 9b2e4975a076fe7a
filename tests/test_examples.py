"""Every example mission runs: the project's own `examples/` against the demo server, and
the spec's `../shared/spec/examples/` against a small local server that serves what each
needs (their hard-coded `http://127.0.0.1:88NN` bases are rewritten in a temporary copy;
06 gets a warehouse server of its own and writes its `postgrest` store through
tests/postgrest_server.py into the real test PostgreSQL; 08's OpenAPI document gets a
scripted museum server of its own that records every request).
Spec examples whose features do not exist yet are skipped with the reason.
"""
from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import psycopg
import pytest
from aiohttp import web

from reqon.checker import check_loaded
from reqon.demo.server import ThreadedServer, make_catalog
from reqon.loader import load_path
from tests.conftest import RunResult, run_mission_path
from tests.postgrest_server import serve as serve_postgrest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SPEC_EXAMPLES = Path(__file__).parents[1].parent / "shared/spec/examples"


def run(path: Path, tmp_path: Path, url: str, *args: str) -> RunResult:
    result = run_mission_path(path, tmp_path, *args, url=url)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    return result


def counts(result: RunResult) -> dict[str, int]:
    return {name: len(records) for name, records in result.stores.items()}


# --------------------------------------------------------------------------- examples/


def test_every_project_example_is_covered() -> None:
    assert {p.stem for p in EXAMPLES.glob("*.vague")} == set(PROJECT_EXPECTED) | {"scheduled-sync"}


def _with_pages() -> int:
    return sum(1 for book in make_catalog(0, 120).books if book["pages"] is not None)


PROJECT_EXPECTED: dict[str, dict[str, int]] = {
    "bookstore-catalogue": {"books": 120, "prices": 120, "stock": _with_pages(), "catalogue": 120},
    "failure-modes": {"pages": 2, "mirrors": 1, "incidents": 1},
    "match-and-flow": {"wanted": 14, "found": 12, "missing": 2},
    "pagination": {"by_offset": 120, "by_page": 120, "by_cursor": 120},
    "openapi-call": {"books": 120, "prices": sum(1 for b in make_catalog(0, 120).books if b["year"] < 1970)},
    "webhook-job": {"events": 2},
}
PROJECT_ARGS = {"webhook-job": ("--webhook-port", "0")}


@pytest.mark.parametrize("name", sorted(PROJECT_EXPECTED))
def test_project_example_runs_green(name: str, tmp_path: Path, demo_server: ThreadedServer) -> None:
    demo_server.stats.reset()
    result = run(EXAMPLES / f"{name}.vague", tmp_path, demo_server.url, *PROJECT_ARGS.get(name, ()))
    assert result.code == 0, result.stderr
    assert counts(result) == PROJECT_EXPECTED[name]
    assert "succeeded" in result.stderr


def test_scheduled_example_runs_once(tmp_path: Path, demo_server: ThreadedServer) -> None:
    """`--once` runs both missions of the scheduled example, in order, into their file stores."""
    result = run_mission_path(EXAMPLES / "scheduled-sync.vague", tmp_path, "--once", url=demo_server.url)
    assert result.code == 0, result.stderr
    assert result.stderr.index("PriceWatch: run succeeded") < result.stderr.index("NightlyCatalogue: run started")
    prices = json.loads((result.data_dir / "prices.json").read_text("utf-8"))
    books = json.loads((result.data_dir / "books.json").read_text("utf-8"))
    assert (len(prices), len(books)) == (5, 120)


def test_failure_modes_example_details(tmp_path: Path, demo_server: ThreadedServer) -> None:
    result = run(EXAMPLES / "failure-modes.vague", tmp_path, demo_server.url)
    assert result.stores["mirrors"] == [{"mirror": "fast", "slept": 20}]
    assert result.stores["incidents"] == [
        {"stage": 3, "action": "ArchiveToBrokenService", "kind": "http", "status": 500}]
    assert "winner FastMirror" in result.stderr


# --------------------------------------------------------------------------- the spec's examples

needs_spec = pytest.mark.skipif(not SPEC_EXAMPLES.is_dir(), reason=f"{SPEC_EXAMPLES} does not exist")


def spec_paths() -> list[str]:
    if not SPEC_EXAMPLES.is_dir():
        return []
    return sorted(p.name for p in SPEC_EXAMPLES.iterdir() if p.suffix == ".vague" or p.is_dir() and p.name[0].isdigit())


@needs_spec
@pytest.mark.parametrize("name", spec_paths())
def test_spec_example_checks_clean(name: str) -> None:
    loaded = load_path(str(SPEC_EXAMPLES / name))
    diagnostics = loaded.diagnostics + check_loaded(loaded)
    assert [f"{d.code} {d.message}" for d in diagnostics] == []


SEEN: Counter[str] = Counter()  # requests per "METHOD path" at the spec server, reset per test


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers)


def _require(request: web.Request, header: str, value: str) -> None:
    if request.headers.get(header) != value:
        raise web.HTTPUnauthorized(text='{"error": "unauthorized"}', content_type="application/json")


@web.middleware
async def _count(request: web.Request, handler: Any) -> web.StreamResponse:
    SEEN[f"{request.method} {request.path}"] += 1
    return await handler(request)


def spec_app() -> web.Application:
    """What the spec examples expect at their ports, each port under the prefix /pNN."""
    app = web.Application(middlewares=[_count])
    routes = web.RouteTableDef()

    # 02-failure-modes: stations (api_key header), two forecast mirrors, an archive
    @routes.get("/p10/regions/{region}/readings")
    async def readings(request: web.Request) -> web.Response:
        _require(request, "X-Station-Key", "station-key")
        region = request.match_info["region"]
        return _json({"readings": [{"station_id": f"{region}-{i}", "taken_at": "2025-03-09T08:00:00Z", "t": i}
                                   for i in range(2)]})

    @routes.get("/p11/forecast/today")
    async def north(request: web.Request) -> web.Response:
        await asyncio.sleep(0.4)
        return _json({"days": [1, 2]})

    @routes.get("/p12/forecast/today")
    async def south(request: web.Request) -> web.Response:
        return _json({"days": [3]})

    @routes.post("/p13/archive/readings")
    async def archive_readings(request: web.Request) -> web.Response:
        return _json({"archived": (await request.json())["count"]})

    @routes.post("/p13/archive/forecast")
    async def archive_forecast(request: web.Request) -> web.Response:
        return _json({"error": "archive full"}, status=507)

    # 03-pagination: tickets (offset), comments (page, data.comments), events (cursor)
    tickets = [{"id": f"T{i:03d}", "updated_at": f"2025-03-{1 + i % 28:02d}T10:00:00Z", "comment_count": i % 3}
               for i in range(120)]
    limits = {"X-RateLimit-Remaining": "100000", "X-RateLimit-Reset": "1"}

    @routes.get("/p20/api/tickets")
    async def list_tickets(request: web.Request) -> web.Response:
        _require(request, "Authorization", "Bearer tracker-token")
        offset, limit = int(request.query["offset"]), int(request.query["limit"])
        return _json({"tickets": tickets[offset:offset + limit]}, headers=limits)

    @routes.get("/p20/api/tickets/{id}/comments")
    async def comments(request: web.Request) -> web.Response:
        ticket = next(t for t in tickets if t["id"] == request.match_info["id"])
        page = int(request.query["page"])
        items = [{"id": f"c{n}"} for n in range(ticket["comment_count"])] if page == 1 else []
        return _json({"data": {"comments": items}}, headers=limits)

    @routes.get("/p20/api/events")
    async def events(request: web.Request) -> web.Response:
        after = request.query.get("after")
        start = int(after) if after else 0
        page = [{"event_id": f"e{n}"} for n in range(start, min(start + 200, 250))]
        nxt = str(start + 200) if start + 200 < 250 else None
        return _json({"events": page, "page": {"next": nxt}}, headers=limits)

    # 04-match-and-flow: oauth2 client credentials, parcels in every state
    parcel_calls: Counter[str] = Counter()

    @routes.post("/p30/oauth/token")
    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        assert form["grant_type"] == "client_credentials" and form["client_id"] == "courier-id"
        return _json({"access_token": "courier-access", "expires_in": 3600})

    @routes.get("/p30/v2/manifest")
    async def manifest(request: web.Request) -> web.Response:
        _require(request, "Authorization", "Bearer courier-access")
        return _json([{"id": f"P{i}", "status": "delivered" if i == 6 else "in_transit"} for i in range(1, 7)])

    @routes.get("/p30/v2/parcels/{id}")
    async def parcel(request: web.Request) -> web.Response:
        _require(request, "Authorization", "Bearer courier-access")
        pid = request.match_info["id"]
        parcel_calls[pid] += 1
        first = parcel_calls[pid] == 1
        if pid == "P1":
            return _json({"id": pid, "status": "delivered", "delivered_at": "2025-03-09", "signed_by": "Ann"})
        if pid == "P2":
            return _json({"id": pid, "status": "in_transit", "eta": "2025-03-12"})
        if pid == "P3" and first:
            return _json({"error": "slow down", "retry_after": 0}, status=429)
        if pid == "P3":
            return _json({"id": pid, "status": "delivered", "delivered_at": "2025-03-10"})
        if pid == "P4" and first:
            return _json({"error": "session expired", "session": "s-1"}, status=419)
        if pid == "P4":
            return _json({"id": pid, "status": "in_transit"})
        return _json({"error": "unknown parcel"}, status=404)

    @routes.post("/p30/v2/session/renew")
    async def renew(request: web.Request) -> web.Response:
        return _json({"renewed": True})

    # 05-map-validate: two branch systems behind basic auth
    basic = "Basic YnJhbmNoLXVzZXI6YnJhbmNoLXB3"  # branch-user:branch-pw

    @routes.get("/p40/old-branch/loans")
    async def old_loans(request: web.Request) -> web.Response:
        _require(request, "Authorization", basic)
        return _json({"loans": [
            {"loan_ref": "1", "book": {"isbn": "9780261102217", "title": " The Hobbit "}, "borrower": "ANN",
             "due": "2020-01-01"},
            {"loan_ref": "2", "book": {"isbn": "0261102214", "title": "Silmarillion"}, "borrower": "Bob",
             "due": "2999-01-01"}]})

    @routes.get("/p40/new-branch/loans")
    async def new_loans(request: web.Request) -> web.Response:
        _require(request, "Authorization", basic)
        return _json([
            {"id": "a", "item": {"isbn": "9780261102218", "title": "Dune"}, "member": {"id": "ann", "name": "Ann"},
             "dueDate": "2021-05-01", "renewals": 4},
            {"id": "b", "item": {"isbn": "9780261102219", "title": "Emma"}, "member": {"id": "cy", "name": "Cy"},
             "dueDate": "2022-05-01"}])

    # 07-auth-and-resilience: one endpoint per auth kind
    @routes.get("/p60/v1/current")
    async def meteo(request: web.Request) -> web.Response:
        assert request.headers["User-Agent"] == "weather-feeds/1.0"
        return _json({"temp": 11.5, "lat": request.query["lat"]})

    @routes.get("/p61/radar/latest")
    async def radar(request: web.Request) -> web.Response:
        _require(request, "Authorization", "Bearer radar-token")
        return _json({"echoes": 3})

    @routes.get("/p62/strikes")
    async def strikes(request: web.Request) -> web.Response:
        _require(request, "Authorization", "Bearer lightning-token")
        return _json({"strikes": [1, 2, 3, 4]})

    @routes.get("/p63/buoys/active")
    async def buoys(request: web.Request) -> web.Response:
        _require(request, "Authorization", "Basic YnVveS1yZWFkZXI6YnVveS1wdw==")  # buoy-reader:buoy-pw
        return _json([{"id": "b1"}])

    @routes.get("/p64/index")
    async def pollen(request: web.Request) -> web.Response:
        if request.query.get("apikey") != "pollen-key":
            return _json({"error": "bad key"}, status=401)
        return _json({"grass": "high"})

    @routes.post("/p65/token")
    async def sat_token(request: web.Request) -> web.Response:
        form = await request.post()
        assert form["scope"] == "imagery.read imagery.list"
        return _json({"access_token": "sat-access"})

    @routes.get("/p65/api/passes")
    async def passes(request: web.Request) -> web.Response:
        _require(request, "Authorization", "Bearer sat-access")
        return _json({"passes": [{"at": "12:00"}]})

    # 10-multi-file: a film distributor (bearer) and a cinema chain
    @routes.get("/p90/films")
    async def films(request: web.Request) -> web.Response:
        _require(request, "Authorization", "Bearer distributor-token")
        return _json({"films": [{"ref": "f1", "title": "Alpha", "runtime_minutes": 100, "rating": "PG"},
                                {"ref": "f2", "title": "Beta", "runtime_minutes": 90}]})

    @routes.get("/p91/cinemas")
    async def cinemas(request: web.Request) -> web.Response:
        return _json({"cinemas": [{"slug": "north"}, {"slug": "south"}, {"slug": "closed"}]})

    @routes.get("/p91/cinemas/{slug}/showtimes")
    async def showtimes(request: web.Request) -> web.Response:
        slug = request.match_info["slug"]
        if slug == "closed":
            return _json({"closed": True})
        return _json([{"film_id": "f1", "cinema": slug, "starts_at": "2025-03-09T20:00:00Z"},
                      {"film_id": "f2", "cinema": slug, "starts_at": "2025-03-09T18:00:00Z"}])

    # 09-schedule-and-webhooks: a roster (offset pages), a print shop that calls back, an archive
    volunteers = [{"id": f"v{i}", "display_name": f"Volunteer {i}"} for i in range(3)]
    callbacks: list[Any] = []

    @routes.get("/p80/volunteers")
    async def list_volunteers(request: web.Request) -> web.Response:
        _require(request, "Authorization", "Bearer roster-token")
        offset, limit = int(request.query["offset"]), int(request.query["limit"])
        return _json(volunteers[offset:offset + limit])

    @routes.post("/p81/jobs")
    async def print_job(request: web.Request) -> web.Response:
        from aiohttp import ClientSession
        body = await request.json()

        async def report(state: str) -> None:
            async with ClientSession() as session:
                await session.post(body["callback"], json={"batch": body["batch"], "state": state})
        await report("queued")  # before the answer: the wait step has not started yet
        callbacks.append(asyncio.get_running_loop().create_task(report("printed")))
        return _json({"accepted": len(body["names"])}, status=202)

    @routes.post("/p80/archive")
    async def archive_season(request: web.Request) -> web.Response:
        return _json({"archived": (await request.json())["season"]})

    app.add_routes(routes)
    return app


@pytest.fixture(scope="module")
def spec_server() -> Any:
    server = ThreadedServer(spec_app())
    yield server
    server.close()


SPEC_ENV = {
    "STATION_KEY": "station-key", "REQON_TRACKER_TOKEN": "tracker-token", "COURIER_CLIENT_ID": "courier-id",
    "COURIER_CLIENT_SECRET": "courier-secret", "REQON_BRANCHES_USERNAME": "branch-user",
    "REQON_BRANCHES_PASSWORD": "branch-pw", "REQON_RADAR_TOKEN": "radar-token", "LIGHTNING_TOKEN": "lightning-token",
    "BUOY_PASSWORD": "buoy-pw", "POLLEN_KEY": "pollen-key", "SAT_CLIENT_ID": "sat", "SAT_CLIENT_SECRET": "sat-secret",
    "REQON_DISTRIBUTOR_TOKEN": "distributor-token", "REQON_PRICING_TOKEN": "pricing-token",
    "REQON_ROSTER_TOKEN": "roster-token", "PRINT_KEY": "print-key",
}


def local_copy(name: str, tmp_path: Path, url: str) -> Path:
    """A copy of spec example `name` whose `http://127.0.0.1:88NN` URLs point at `url/pNN`."""
    source = SPEC_EXAMPLES / name
    target = tmp_path / "example" / name
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        target.parent.mkdir(parents=True)
        shutil.copy(source, target)
    for path in [target] if target.is_file() else target.rglob("*.vague"):
        text = path.read_text("utf-8")
        path.write_text(re.sub(r"http://127\.0\.0\.1:88(\d\d)", rf"{url}/p\1", text), encoding="utf-8")
    return target


def run_spec(name: str, tmp_path: Path, spec_server: ThreadedServer, monkeypatch: pytest.MonkeyPatch,
             *args: str) -> RunResult:
    for key, value in SPEC_ENV.items():
        monkeypatch.setenv(key, value)
    SEEN.clear()
    result = run(local_copy(name, tmp_path, spec_server.url), tmp_path, spec_server.url, *args)
    assert result.code == 0, result.stderr
    return result


@needs_spec
def test_spec_01_parallel_fanout(tmp_path: Path, demo_server: ThreadedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its Shelf and Pricing endpoints are exactly the demo server's."""
    for key, value in SPEC_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SHELF_URL", demo_server.url)
    monkeypatch.setenv("PRICING_URL", demo_server.url)
    result = run(SPEC_EXAMPLES / "01-parallel-fanout.vague", tmp_path, demo_server.url)
    assert result.code == 0, result.stderr
    assert counts(result) == {"books": 120, "prices": 120, "stock": _with_pages(), "catalogue": 120}


@needs_spec
def test_spec_02_failure_modes(tmp_path: Path, spec_server: ThreadedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_spec("02-failure-modes.vague", tmp_path, spec_server, monkeypatch)
    assert counts(result) == {"readings": 6, "forecasts": 1, "incidents": 1}
    assert result.stores["forecasts"] == [{"mirror": "south", "days": [3]}]
    [incident] = result.stores["incidents"]
    assert (incident["stage"], incident["action"], incident["kind"]) == (3, "ArchiveForecast", "http")
    assert "winner ForecastSouth" in result.stderr
    assert SEEN["POST /p13/archive/readings"] == 1


@needs_spec
def test_spec_03_pagination(tmp_path: Path, spec_server: ThreadedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_spec("03-pagination.vague", tmp_path, spec_server, monkeypatch)
    assert counts(result) == {"tickets": 120, "comments": 120, "events": 250}  # 40 tickets with 1, 40 with 2
    assert SEEN["GET /p20/api/tickets"] == 2 and SEEN["GET /p20/api/events"] == 2
    checkpoints = (result.data_dir / "sync" / "TicketTrackerSync.json").read_text("utf-8")
    assert '"syncedAt": "2025-03-28T10:00:00.000Z"' in checkpoints and "tracker-events" in checkpoints


@needs_spec
def test_spec_04_match_and_flow(tmp_path: Path, spec_server: ThreadedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_spec("04-match-and-flow.vague", tmp_path, spec_server, monkeypatch)
    assert counts(result) == {"parcels": 6, "delivered": 2, "parcel_dlq": 1, "signatures": 1}
    assert result.stores["signatures"] == [{"id": "P1", "signer": "Ann"}]
    assert result.stores["parcel_dlq"][0]["id"] == "P5"
    parcels = {p["id"]: p for p in result.stores["parcels"]}
    assert parcels["P1"]["status"] == "delivered" and parcels["P1"]["_partial"] is False
    assert parcels["P2"]["eta"] == "2025-03-12"
    assert (SEEN["GET /p30/v2/parcels/P3"], SEEN["GET /p30/v2/parcels/P4"], SEEN["POST /p30/v2/session/renew"]) \
        == (2, 2, 1)
    assert SEEN["GET /p30/v2/parcels/P6"] == 0  # already delivered in the manifest
    assert SEEN["POST /p30/oauth/token"] == 1


@needs_spec
def test_spec_05_map_validate(tmp_path: Path, spec_server: ThreadedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_spec("05-map-validate.vague", tmp_path, spec_server, monkeypatch)
    assert counts(result) == {"loans": 4, "overdue": 2}
    overdue = {o["borrower"]: o for o in result.stores["overdue"]}
    assert overdue["ann"]["count"] == 2 and overdue["ann"]["severity"] == "warning"
    assert overdue["ann"]["titles"] == ["Dune", "The Hobbit"] and overdue["ann"]["heavyRenewer"] is True
    assert overdue["cy"]["severity"] == "reminder" and overdue["cy"]["note"] == 'generated by "reqon"\tv1'
    assert "validation warnings: 1" in result.stderr


WAREHOUSE_SHELVES = [{"code": "A1", "aisle": "north"}, {"code": "B2", "aisle": "south"},
                     {"code": "C3", "aisle": "east"}]  # C3 is empty
WAREHOUSE_TITLES = {"A1": [{"isbn": "111", "title": "Dune"}, {"isbn": "222", "title": "Emma"}],
                    "B2": [{"isbn": "333", "title": "Kim"}], "C3": []}
# the details repeat no title: hydration must merge them into the listed record; 222 is free
WAREHOUSE_DETAILS = {"111": {"isbn": "111", "author": "Herbert", "price": 8.125},
                     "222": {"isbn": "222", "author": "Austen", "price": 0},
                     "333": {"isbn": "333", "author": "Kipling", "price": 15}}


def warehouse_app(seen: Counter[str]) -> web.Application:
    """Spec example 06's Warehouse under /p50 (its base `http://127.0.0.1:8850`, see local_copy)."""
    routes = web.RouteTableDef()

    @routes.get("/p50/shelves")
    async def shelves(request: web.Request) -> web.Response:
        seen[request.path] += 1
        return _json({"shelves": WAREHOUSE_SHELVES})

    @routes.get("/p50/shelves/{code}/titles")
    async def titles(request: web.Request) -> web.Response:
        seen[request.path] += 1
        return _json(WAREHOUSE_TITLES[request.match_info["code"]])

    @routes.get("/p50/titles/{isbn}")
    async def details(request: web.Request) -> web.Response:
        seen[request.path] += 1
        return _json(WAREHOUSE_DETAILS[request.match_info["isbn"]])

    app = web.Application()
    app.add_routes(routes)
    return app


@needs_spec
def test_spec_06_stores(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every store kind, the postgrest one through tests/postgrest_server.py into the real PostgreSQL."""
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE public_titles (id TEXT PRIMARY KEY, title TEXT, shelf TEXT, price NUMERIC)")
    key = "sb-example-key-06"
    monkeypatch.setenv("REQON_POSTGREST_KEY", key)
    monkeypatch.delenv("REQON_POSTGREST_SCHEMA", raising=False)
    seen: Counter[str] = Counter()
    postgrest, state = serve_postgrest(pg_url, key)
    try:
        monkeypatch.setenv("REQON_POSTGREST_URL", postgrest.url)
        with ThreadedServer(warehouse_app(seen)) as warehouse:
            result = run(local_copy("06-stores.vague", tmp_path, warehouse.url), tmp_path, warehouse.url)
    finally:
        postgrest.close()
    assert result.code == 0, result.stderr
    assert key not in result.stderr

    assert result.stores["scratch"] == WAREHOUSE_SHELVES  # keyed by code, listed in key order
    titles = result.keyed("titles", "isbn")
    assert titles == {isbn: {**listed, **WAREHOUSE_DETAILS[isbn], "_partial": False}
                      for listed in sum(WAREHOUSE_TITLES.values(), []) for isbn in [listed["isbn"]]}
    assert json.loads((result.data_dir / "titles.json").read_text("utf-8")).keys() == titles.keys()
    assert result.keyed("shelves", "code") == {
        "A1": {"code": "A1", "aisle": "north", "titleCount": 2, "isbns": ["111", "222"]},
        "B2": {"code": "B2", "aisle": "south", "titleCount": 1, "isbns": ["333"]},
        "C3": {"code": "C3", "aisle": "east", "titleCount": 0, "isbns": []}}
    [audit] = result.stores["audit"]
    assert {k: audit[k] for k in ("shelfCount", "titleCount", "firstShelf", "emptyShelves")} == {
        "shelfCount": 3, "titleCount": 3, "firstShelf": "north", "emptyShelves": 1}
    assert isinstance(audit["runAt"], str) and audit["runAt"]

    # priced titles only (222 is free); round(8.125, 2) is half away from zero
    published = [("111", "Dune", "A1", Decimal("8.13")), ("333", "Kim", "B2", Decimal("15"))]
    with psycopg.connect(pg_url) as connection:
        assert connection.execute("SELECT id, title, shelf, price FROM public_titles ORDER BY id").fetchall() \
            == published
    assert result.stores["published"] == [{"id": i, "title": t, "shelf": s, "price": float(p)}
                                          for i, t, s, p in published]
    assert [(r.method, r.path, r.query, r.body) for r in state.requests] == [
        *[request for i, t, s, p in published for request in (
            ("GET", "/public_titles", f'select=*&id=in.("{i}")', None),  # upsert reads the row first
            ("POST", "/public_titles", "on_conflict=id", [{"id": i, "title": t, "shelf": s, "price": float(p)}]))],
        ("GET", "/public_titles", "select=*&order=id.asc&limit=1000&offset=0", None),  # --output
    ]
    assert all(r.headers["apikey"] == key for r in state.requests)

    assert seen == Counter({"/p50/shelves": 1, **{f"/p50/shelves/{c}/titles": 1 for c in WAREHOUSE_TITLES},
                            **{f"/p50/titles/{i}": 1 for i in WAREHOUSE_DETAILS}})


@needs_spec
def test_spec_07_auth_and_resilience(tmp_path: Path, spec_server: ThreadedServer,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_spec("07-auth-and-resilience.vague", tmp_path, spec_server, monkeypatch, "--verbose")
    assert counts(result) == {"observations": 6}
    keys = ("buoys", "lightning", "open-meteo", "pollen", "radar", "satellite")  # --output is in key order
    observations = dict(zip(keys, result.stores["observations"]))
    assert observations["open-meteo"] == {"temp": 11.5, "lat": "51.5"}
    assert observations["radar"] == {"echoes": 3} and observations["pollen"] == {"grass": "high"}
    assert observations["buoys"] == {"buoys": [{"id": "b1"}]}
    assert observations["lightning"] == {"strikes": 4}
    assert observations["satellite"] == {"passes": [{"at": "12:00"}]}
    for secret in ("radar-token", "lightning-token", "buoy-pw", "pollen-key", "sat-secret", "sat-access"):
        assert secret not in result.stderr
    assert "apikey=***" in result.stderr


@dataclass
class MuseumRequest:
    method: str
    raw_path: str  # as sent: percent-encoding and query intact
    body: Any


MUSEUM_PAGES: dict[str | None, dict[str, Any]] = {
    None: {"objects": [
        {"id": "monet-1872", "title": "Impression, Sunrise", "gallery": "impressionism", "year": 1872, "onLoan": False},
        {"id": "degas/1881 b", "title": "Little Dancer", "gallery": "impressionism", "year": 1881, "onLoan": False},
        {"id": "cassatt-1905", "title": "Mother and Child", "gallery": "impressionism", "year": 1905,
         "onLoan": False}],
        "next": "page-2"},
    "page-2": {"objects": [
        {"id": "renoir-1876", "title": "Bal du moulin", "gallery": "impressionism", "year": 1876, "onLoan": True},
        {"id": "sisley-1874", "title": "Flood at Port-Marly", "gallery": "impressionism", "year": 1874},
        {"id": "morisot-undated", "title": "Cradle", "gallery": "impressionism", "year": None, "onLoan": False},
        {"id": "monet-1919", "title": "Water Lilies", "gallery": "impressionism", "year": 1919, "onLoan": True}],
        "next": None},
}
# not on loan (or not said), before 1900 or undated; `for` walks a store in key order (§6.6.5)
MUSEUM_LOANS = ["degas/1881 b", "monet-1872", "morisot-undated", "sisley-1874"]


def museum_app(log: list[MuseumRequest]) -> web.Application:
    """The museum of spec example 08 under /collection: listObjects pages by `cursor`, getObject
    answers one object without its required `id` (off-schema), requestLoan numbers the loans.
    Routed by hand on the raw path, so that an objectId with `%2F` stays one segment."""
    objects = {o["id"]: o for page in MUSEUM_PAGES.values() for o in page["objects"]}

    async def handle(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        log.append(MuseumRequest(request.method, request.raw_path, body))
        parts = [unquote(part) for part in request.raw_path.split("?")[0].split("/")]
        match request.method, parts:
            case "GET", ["", "collection", "objects"]:
                return _json(MUSEUM_PAGES[request.query.get("cursor")])
            case "GET", ["", "collection", "objects", object_id]:
                found = {**objects[object_id], "onLoan": objects[object_id].get("onLoan", False)}
                if object_id == "sisley-1874":
                    del found["id"]  # required by MuseumObject: validateResponses warns
                return _json(found)
            case "POST", ["", "collection", "objects", object_id, "loans"]:
                loans = sum(1 for r in log if r.method == "POST")
                return _json({"loanId": f"L{loans}-{object_id}", "status": "pending"}, status=201)
        return _json({"error": "not found"}, status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@needs_spec
def test_spec_08_openapi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The museum document's server is rewritten to a scripted server that records each request."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # its own OpenAPI document cache
    log: list[MuseumRequest] = []
    with ThreadedServer(museum_app(log)) as server:
        mission = local_copy("08-openapi.vague", tmp_path, server.url)
        document = (SPEC_EXAMPLES / "openapi" / "museum.yaml").read_text("utf-8")
        assert "http://127.0.0.1:8870/collection" in document
        (mission.parent / "openapi").mkdir()
        (mission.parent / "openapi" / "museum.yaml").write_text(
            document.replace("http://127.0.0.1:8870", server.url), encoding="utf-8")
        result = run(mission, tmp_path, server.url)
    assert result.code == 0, result.stderr

    listed = [o["id"] for page in MUSEUM_PAGES.values() for o in page["objects"]]
    assert [o["id"] for o in result.stores["objects"]] == sorted(listed)  # --output lists in key order
    assert result.keyed("objects", "id")["sisley-1874"] == MUSEUM_PAGES["page-2"]["objects"][1]  # as listed
    stored = json.loads((result.data_dir / "museum-objects.json").read_text("utf-8"))
    assert sorted(stored) == sorted(listed)
    assert result.stores["loan_requests"] == [
        {"objectId": oid, "loanId": f"L{n}-{oid}", "status": "pending"} for n, oid in enumerate(MUSEUM_LOANS, 1)]

    assert [(r.method, r.raw_path, r.body) for r in log] == [
        ("GET", "/collection/objects?gallery=impressionism", None),
        ("GET", "/collection/objects?gallery=impressionism&cursor=page-2", None),
        *[request for oid in MUSEUM_LOANS for request in (
            ("GET", f"/collection/objects/{quote(oid, safe='')}", None),
            ("POST", f"/collection/objects/{quote(oid, safe='')}/loans", {"borrower": "City Gallery", "weeks": 6}))],
    ]
    assert "/collection/objects/degas%2F1881%20b" in {r.raw_path for r in log}

    mismatches = [line for line in result.stderr.splitlines() if "does not match the OpenAPI document" in line]
    assert mismatches == [f"{mission}:23:7: warning: call Museum.getObject: response 200 does not match the OpenAPI"
                          " document: $: 'id' is a required property"], result.stderr  # sisley's detail only
    assert "validation warnings: 1" in result.stderr and "requests: 10" in result.stderr


@needs_spec
def test_spec_09_schedule_and_webhooks(tmp_path: Path, spec_server: ThreadedServer,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`--once` runs the three missions in order; the print shop's callbacks reach `wait`."""
    for key, value in SPEC_ENV.items():
        monkeypatch.setenv(key, value)
    SEEN.clear()
    path = local_copy("09-schedule-and-webhooks.vague", tmp_path, spec_server.url)
    result = run(path, tmp_path, spec_server.url, "--once", "--webhook-port", "0")
    assert result.code == 0, result.stderr
    order = [result.stderr.index(f"{m}: run succeeded") for m in ("RosterSync", "BadgePrinting", "SeasonArchive")]
    assert order == sorted(order)
    assert SEEN["POST /p81/jobs"] == 1 and SEEN["POST /p80/archive"] == 1
    jobs = json.loads((result.data_dir / "print-jobs.json").read_text("utf-8"))
    assert [job["state"] for job in jobs.values()] == ["printed"]  # eventFilter dropped "queued"


@needs_spec
def test_spec_10_multi_file(tmp_path: Path, spec_server: ThreadedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_spec("10-multi-file", tmp_path, spec_server, monkeypatch)
    assert counts(result) == {"films": 2, "showtimes": 4, "listings": 2}
    listings = {f["id"]: f for f in result.stores["listings"]}
    assert listings["f1"]["screenings"] == 2 and listings["f1"]["venues"] == ["north", "south"]
    assert listings["f2"]["rating"] == "unrated"
