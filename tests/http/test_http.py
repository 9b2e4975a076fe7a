"""The request pipeline of §6.3 against real servers on 127.0.0.1.

Pure encoding rules are checked as functions (`build_url`, `decode_body`); everything
that crosses the network is checked from the server's side: what it received, when, how
many requests it had in flight and which ones the client abandoned.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import quote

import pytest

from reqon.errors import RunError
from reqon.http.client import (
    Allow,
    HttpRequest,
    HttpResponse,
    HttpRuntime,
    RetryPolicy,
    SourceClient,
    SourceSettings,
)
from reqon.http.codec import build_url, decode_body, join_url
from reqon.http.secrets import Secrets
from tests.hostile_server import HostileServer

T = TypeVar("T")
pytestmark = pytest.mark.timeout(30)

FAST = RetryPolicy(max_attempts=3, initial_delay_ms=10)
ONCE = RetryPolicy(max_attempts=1)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@asynccontextmanager
async def api(
    url: str, secrets: Secrets | None = None, **settings: Any
) -> AsyncIterator[SourceClient]:
    runtime = await HttpRuntime.open(
        [SourceSettings(name="Api", base_url=url, **settings)], secrets=secrets
    )
    try:
        yield runtime.source("Api")
    finally:
        await runtime.aclose()


def send(url: str, request: HttpRequest, **settings: Any) -> HttpResponse:
    async def go() -> HttpResponse:
        async with api(url, **settings) as source:
            return await source.send(request)

    return run(go())


def failure(url: str, request: HttpRequest, **settings: Any) -> RunError:
    with pytest.raises(RunError) as caught:
        send(url, request, **settings)
    return caught.value


def free_port() -> int:
    """A port nobody listens on: bound once by us, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


# --- §6.3.1 URL and query ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "path", "url"),
    [
        ("http://h/api", "/tickets", "http://h/api/tickets"),
        ("http://h/api/", "/tickets", "http://h/api/tickets"),
        ("http://h/api//", "tickets", "http://h/api/tickets"),
        ("http://h", "", "http://h"),
        ("http://h/api", "https://other.example/x?y=1", "https://other.example/x?y=1"),
    ],
)
def test_urls_are_joined_by_concatenation(base: str, path: str, url: str) -> None:
    assert join_url(base, path) == url


@pytest.mark.parametrize(
    ("path", "params", "extra", "auth", "query"),
    [
        ("/x", [("tag", ["a", "b"])], [], [], "tag=a&tag=b"),
        ("/x", [("a", None), ("b", 1)], [], [], "b=1"),
        ("/x", [("q", "two words/&=?")], [], [], "q=two%20words%2F%26%3D%3F"),
        ("/x", [("n", 1.0), ("f", 0.5), ("big", 1e21), ("t", True)], [], [],
         "n=1&f=0.5&big=1e%2B21&t=true"),
        ("/x", [("é", "ü")], [], [], "%C3%A9=%C3%BC"),
        ("/x?a=1&b=2", [("c", 3), ("a", 9)], [], [], "a=9&b=2&c=3"),
        ("/x?page=7", [("limit", 5)], [("since", "2025"), ("page", 2)], [],
         "page=2&limit=5&since=2025"),
        ("/x", [("a", 1), ("b", 2), ("a", [3, 4])], [], [], "a=3&a=4&b=2"),
        ("/x?a=1", [("a", None)], [], [], ""),
        ("/x", [("k", "mine")], [], [("k", "secret-key")], "k=secret-key"),
        ("/x?raw=%2Fkept", [("p", 1)], [], [], "raw=%2Fkept&p=1"),
    ],
)  # fmt: skip
def test_query_order_replacement_and_encoding(
    path: str, params: list[Any], extra: list[Any], auth: list[Any], query: str
) -> None:
    url = build_url("http://h", path, params, extra, auth)
    assert url == ("http://h/x?" + query if query else "http://h/x")


def test_object_query_values_fail_with_kind_runtime() -> None:
    with pytest.raises(RunError) as caught:
        build_url("http://h", "/x", [("filter", {"a": 1})])
    assert caught.value.kind == "runtime"
    assert "'filter'" in caught.value.message


def test_the_server_receives_the_query_as_built(hostile: HostileServer) -> None:
    request = HttpRequest(
        "GET", "/echo?fixed=1", params=[("tag", ["x y", "z"]), ("skip", None)],
        extra_params=[("page", 2)],
    )  # fmt: skip
    response = send(hostile.url, request)
    assert response.body["query"] == "fixed=1&tag=x%20y&tag=z&page=2"
    assert response.body["pairs"] == [["fixed", "1"], ["tag", "x y"], ["tag", "z"], ["page", "2"]]


# --- §6.3.2 headers, §6.3.3 bodies ------------------------------------------------------


def received_headers(response: HttpResponse) -> dict[str, str]:
    return {k.lower(): v for k, v in response.body["headers"]}


def test_header_precedence_defaults_source_step(hostile: HostileServer) -> None:
    request = HttpRequest(
        "GET", "/echo",
        headers={"x-team": "step", "X-Step": 42, "x-drop": None, "accept": "text/csv"},
    )  # fmt: skip
    response = send(
        hostile.url, request,
        headers={"X-Team": "source", "X-Drop": "source", "X-Source": True},
    )  # fmt: skip
    headers = received_headers(response)
    assert headers["x-team"] == "step"
    assert headers["x-step"] == "42"
    assert headers["x-source"] == "true"
    assert "x-drop" not in headers
    assert headers["accept"] == "text/csv"
    assert headers["user-agent"].startswith("reqon/")


def test_auth_header_wins_over_explicit_authorization(hostile: HostileServer) -> None:
    request = HttpRequest("GET", "/echo", headers={"authorization": "Bearer step"})
    response = send(
        hostile.url, request, headers={"Authorization": "Bearer source"},
        auth_kind="bearer", auth_settings={"token": "real-token"},
    )  # fmt: skip
    assert received_headers(response)["authorization"] == "Bearer real-token"


def test_json_body_gets_its_content_type(hostile: HostileServer) -> None:
    response = send(hostile.url, HttpRequest("POST", "/echo", body={"n": 2.0, "l": [1, None]}))
    assert response.body["body"] == '{"n":2,"l":[1,null]}'
    assert response.body["content_type"] == "application/json"


def test_form_body(hostile: HostileServer) -> None:
    request = HttpRequest(
        "POST", "/echo", headers={"Content-Type": "application/x-www-form-urlencoded"},
        body={"name": "a b", "tags": ["x", "y"], "none": None},
    )  # fmt: skip
    response = send(hostile.url, request)
    assert response.body["body"] == "name=a%20b&tags=x&tags=y"
    assert response.body["content_type"] == "application/x-www-form-urlencoded"


def test_form_body_must_be_an_object(hostile: HostileServer) -> None:
    request = HttpRequest(
        "POST", "/echo", headers={"content-type": "application/x-www-form-urlencoded"},
        body=[1, 2],
    )  # fmt: skip
    error = failure(hostile.url, request)
    assert error.kind == "runtime"
    assert not hostile.state.seen


def test_text_body_is_sent_as_is_and_other_types_as_json(hostile: HostileServer) -> None:
    plain = HttpRequest("PUT", "/echo", headers={"Content-Type": "text/plain"}, body="l1\nl2")
    assert send(hostile.url, plain).body["body"] == "l1\nl2"
    xml = HttpRequest("PUT", "/echo", headers={"Content-Type": "application/xml"}, body="<a/>")
    echoed = send(hostile.url, xml)
    assert echoed.body["body"] == '"<a/>"'
    assert echoed.body["content_type"] == "application/xml"


def test_get_without_body_sends_no_content_type(hostile: HostileServer) -> None:
    response = send(hostile.url, HttpRequest("GET", "/echo"))
    assert response.body["content_type"] is None
    assert response.body["body"] == ""


# --- §6.3.4 decoding and the http binding -----------------------------------------------


def respond(
    status: int = 200, body: str = "", type_: str = "application/json", **headers: str
) -> str:
    query = [("status", str(status)), ("body", body), ("type", type_)]
    query += [(f"h.{name.replace('_', '-')}", value) for name, value in headers.items()]
    return "/respond?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query)


@pytest.mark.parametrize(
    ("status", "body", "type_", "decoded"),
    [
        (200, "", "application/json", None),
        (204, "", "application/json", None),
        (200, '{"a":[1,2.5,null]}', "application/json; charset=utf-8", {"a": [1, 2.5, None]}),
        (200, '{"a":1}', "application/problem+json", {"a": 1}),
        (200, '[true]', "none", [True]),
        (200, "plain words", "text/plain", "plain words"),
        (200, "<p>x</p>", "text/html; charset=utf-8", "<p>x</p>"),
    ],
)  # fmt: skip
def test_bodies_decode_by_content_type(
    hostile: HostileServer, status: int, body: str, type_: str, decoded: Any
) -> None:
    response = send(hostile.url, HttpRequest("GET", respond(status, body, type_)))
    assert response.status == status
    assert response.body == decoded


def test_unsupported_content_type_is_a_decode_error(hostile: HostileServer) -> None:
    error = failure(hostile.url, HttpRequest("GET", respond(200, "PNG", "image/png")))
    assert error.kind == "decode"
    assert "unsupported content type image/png" in error.message


def test_malformed_json_quotes_position_and_200_characters(hostile: HostileServer) -> None:
    body = '{"items": [1, 2,, 3], "pad": "' + "x" * 400 + '"}'
    error = failure(hostile.url, HttpRequest("GET", respond(200, body)))
    assert error.kind == "decode"
    assert error.message.startswith("GET http://127.0.0.1:")
    assert "malformed JSON at line 1 column 17" in error.message
    excerpt = error.message.split("; body: ", 1)[1]
    assert excerpt.startswith('{"items": [1, 2,, 3]')
    assert len(excerpt) == 201 and excerpt.endswith("…")


def test_json_without_nan_literals() -> None:
    with pytest.raises(RunError) as caught:
        decode_body(200, "application/json", b"[NaN]")
    assert caught.value.kind == "decode"


def test_body_over_the_limit_fails_as_soon_as_it_passes(hostile: HostileServer) -> None:
    total = 8 * 2**20
    error = failure(hostile.url, HttpRequest("GET", f"/huge?bytes={total}"),
                    max_response_bytes=2**20)  # fmt: skip
    assert error.kind == "decode"
    assert "larger than 1048576 bytes" in error.message
    assert hostile.state.huge_sent < total


def test_declared_length_over_the_limit_fails_before_reading(hostile: HostileServer) -> None:
    error = failure(
        hostile.url, HttpRequest("GET", "/huge?bytes=300000&length=declared"),
        max_response_bytes=1000,
    )  # fmt: skip
    assert error.kind == "decode"


def test_gzip_bodies_are_decompressed_and_broken_ones_are_decode_errors(
    hostile: HostileServer,
) -> None:
    assert send(hostile.url, HttpRequest("GET", "/gzip")).body == {"zipped": True}
    error = failure(hostile.url, HttpRequest("GET", respond(200, "not gzip",
                                                            Content_Encoding="gzip")))  # fmt: skip
    assert error.kind == "decode"
    assert "Content-Encoding" in error.message


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_cookies_are_not_replayed(hostile: HostileServer, host: str) -> None:
    """By a host name too: aiohttp's own jar (below httpx's) keeps cookies of named hosts."""
    async def go() -> HttpResponse:
        async with api(hostile.url.replace("127.0.0.1", host)) as source:
            await source.send(HttpRequest("GET", respond(200, "{}", Set_Cookie="session=abc")))
            return await source.send(HttpRequest("get", "/echo"))

    response = run(go())
    assert response.body["method"] == "GET"
    assert "cookie" not in received_headers(response)


def test_binding_and_response_headers(hostile: HostileServer) -> None:
    response = send(hostile.url, HttpRequest("GET", respond(200, "{}", X_Multi="a", X_Other="b")
                                             + "&h.X-Multi=c"))  # fmt: skip
    assert response.headers["x-multi"] == "a, c"
    binding = response.binding(pages=3, elapsed_ms=12.4)
    assert binding["method"] == "GET"
    assert binding["status"] == 200
    assert binding["pages"] == 3 and binding["elapsedMs"] == 12
    assert binding["attempts"] == 1
    assert binding["headers"]["x-other"] == "b"
    assert binding["url"].startswith(hostile.url + "/respond?")


# --- redirects --------------------------------------------------------------------------


def test_redirects_are_followed_up_to_ten(hostile: HostileServer) -> None:
    response = send(hostile.url, HttpRequest("GET", "/redirect/chain/10"))
    assert response.body == {"arrived": True}
    assert response.url == hostile.url + "/redirect/chain/0"
    error = failure(hostile.url, HttpRequest("GET", "/redirect/chain/11"))
    assert error.kind == "http"
    assert "too many redirects" in error.message


def test_redirect_loop_fails_without_retrying(hostile: HostileServer) -> None:
    error = failure(hostile.url, HttpRequest("GET", "/redirect/loop", retry=FAST))
    assert error.kind == "http" and "too many redirects" in error.message
    assert len(hostile.state.paths("/redirect/loop")) == 11


@pytest.mark.parametrize(("host", "kept"), [("127.0.0.1", True), ("localhost", False)])
def test_authorization_follows_a_redirect_to_the_same_origin_only(hostile: HostileServer, host: str,
                                                                  kept: bool) -> None:
    target = hostile.url.replace("127.0.0.1", host) + "/echo"
    request = HttpRequest("GET", respond(302, "", Location=target), headers={"Authorization": "Bearer s3cret"})
    response = send(hostile.url, request)
    assert response.body["method"] == "GET" and response.url == target
    assert ("authorization" in received_headers(response)) is kept


def test_303_turns_a_post_into_a_get(hostile: HostileServer) -> None:
    response = send(hostile.url, HttpRequest("POST", "/redirect/see-other", body={"a": 1}))
    assert response.body["method"] == "GET"
    assert response.body["query"] == "after=303"
    assert response.body["body"] == ""


# --- §6.3.5 statuses, retries and failures ----------------------------------------------


def arrival_gaps(hostile: HostileServer, path: str) -> list[float]:
    times = [seen.at for seen in hostile.state.paths(path)]
    return [later - earlier for earlier, later in zip(times, times[1:])]


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [
        ("exponential", [0.1, 0.2, 0.4]),
        ("linear", [0.1, 0.2, 0.3]),
        ("constant", [0.1, 0.1, 0.1]),
    ],
)
def test_retries_reach_success_with_the_configured_backoff(
    hostile: HostileServer, backoff: str, expected: list[float]
) -> None:
    retry = RetryPolicy(max_attempts=4, backoff=backoff, initial_delay_ms=100, explicit=True)
    response = send(hostile.url, HttpRequest("GET", "/flaky/k?fail=3", retry=retry))
    assert response.status == 200 and response.attempts == 4
    gaps = arrival_gaps(hostile, "/flaky/k")
    assert len(gaps) == 3
    for gap, delay in zip(gaps, expected, strict=True):
        assert delay * 0.9 - 0.005 <= gap <= delay * 1.1 + 0.08, gaps


def test_max_delay_caps_the_backoff(hostile: HostileServer) -> None:
    retry = RetryPolicy(max_attempts=4, initial_delay_ms=100, max_delay_ms=150)
    send(hostile.url, HttpRequest("GET", "/flaky/k?fail=3", retry=retry))
    gaps = arrival_gaps(hostile, "/flaky/k")
    assert gaps[2] <= 0.165 + 0.08 and gaps[2] >= 0.135 - 0.005


def test_delay_formula() -> None:
    policy = RetryPolicy(initial_delay_ms=100, max_delay_ms=1000)
    for k, nominal in [(1, 100), (2, 200), (3, 400), (5, 1000), (60, 1000)]:
        assert nominal * 0.9 <= policy.delay_ms(k) <= nominal * 1.1


@pytest.mark.parametrize("retry_after", ["1", "http-date"])
def test_retry_after_is_honoured(hostile: HostileServer, retry_after: str) -> None:
    if retry_after == "http-date":
        retry_after = email.utils.formatdate(time.time() + 2, usegmt=True)
    retry = RetryPolicy(max_attempts=2, initial_delay_ms=10)
    path = f"/flaky/k?fail=1&status=429&retry_after={quote(retry_after)}"
    response = send(hostile.url, HttpRequest("GET", path, retry=retry))
    assert response.attempts == 2
    [gap] = arrival_gaps(hostile, "/flaky/k")
    assert 0.95 <= gap <= 2.5


def test_final_429_is_kind_rate_limit(hostile: HostileServer) -> None:
    error = failure(hostile.url, HttpRequest("GET", "/flaky/k?fail=9&status=429", retry=FAST))
    assert error.kind == "rate-limit" and error.status == 429
    assert len(hostile.state.paths("/flaky/k")) == 3


@pytest.mark.parametrize(("status", "sent"), [(500, 3), (502, 3), (504, 3), (408, 3),
                                              (501, 1), (505, 1), (404, 1), (400, 1)])  # fmt: skip
def test_which_statuses_are_retried(hostile: HostileServer, status: int, sent: int) -> None:
    error = failure(hostile.url, HttpRequest("GET", respond(status, "{}"), retry=FAST))
    assert error.kind == "http" and error.status == status
    assert len(hostile.state.paths("/respond")) == sent


@pytest.mark.parametrize(("method", "retry", "sent"), [
    ("POST", FAST, 1), ("PATCH", FAST, 1), ("PUT", FAST, 3), ("DELETE", FAST, 3),
    ("POST", RetryPolicy(max_attempts=3, initial_delay_ms=10, explicit=True), 3),
])  # fmt: skip
def test_post_and_patch_are_retried_only_when_asked(
    hostile: HostileServer, method: str, retry: RetryPolicy, sent: int
) -> None:
    request = HttpRequest(method, respond(503, "{}"), body={"a": 1}, retry=retry)
    error = failure(hostile.url, request)
    assert error.status == 503
    assert len(hostile.state.paths("/respond")) == sent


def test_allowed_statuses_are_results_and_never_retried(hostile: HostileServer) -> None:
    allow = Allow(statuses=frozenset({404}), classes=frozenset({5}))
    missing = send(hostile.url, HttpRequest("GET", respond(404, '{"e":1}'), allow=allow))
    assert missing.status == 404 and missing.body == {"e": 1}
    busy = send(hostile.url, HttpRequest("GET", respond(503, '{"e":2}'), allow=allow, retry=FAST))
    assert busy.status == 503 and busy.attempts == 1
    assert len(hostile.state.paths("/respond")) == 2
    error = failure(hostile.url, HttpRequest("GET", respond(409, "{}"), allow=allow))
    assert error.status == 409


def test_error_message_names_request_status_attempts_and_body(hostile: HostileServer) -> None:
    body = '{"error":"maintenance","detail":"' + "d" * 500 + '"}'
    error = failure(hostile.url, HttpRequest("GET", respond(503, body), retry=FAST))
    assert error.message.startswith(f"GET {hostile.url}/respond?")
    excerpt = error.message.split(" returned 503 Service Unavailable after 3 attempts: ")[1]
    assert excerpt.startswith('{"error":"maintenance"')
    assert len(excerpt) == 201 and excerpt.endswith("…")


# --- §6.3.6 timeouts, network failures, cancellation ------------------------------------


def test_attempt_timeout_is_kind_timeout_and_retryable(hostile: HostileServer) -> None:
    started = time.monotonic()
    error = failure(hostile.url, HttpRequest("GET", "/slow?ms=60000", timeout_ms=150, retry=FAST))
    assert error.kind == "timeout"
    assert "timed out after 3 attempts" in error.message
    assert time.monotonic() - started < 20  # not the minutes the server would take
    assert len(hostile.state.paths("/slow")) == 3


def test_source_timeout_applies_without_a_step_timeout(hostile: HostileServer) -> None:
    error = failure(hostile.url, HttpRequest("GET", "/slow?ms=3000", retry=ONCE), timeout_ms=100)
    assert error.kind == "timeout"


def test_refused_connection_is_kind_network() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    error = failure(url, HttpRequest("GET", "/x", retry=FAST))
    assert error.kind == "network"
    assert "connection refused" in error.message
    assert "after 3 attempts" in error.message


def test_connection_closed_without_answer_is_kind_network(hostile: HostileServer) -> None:
    error = failure(hostile.url, HttpRequest("GET", "/reset", retry=FAST))
    assert error.kind == "network"
    assert "the server closed the connection" in error.message
    # aiohttp re-sends an idempotent request once on a dropped connection (RFC 9112 §9.3.1)
    assert 3 <= len(hostile.state.paths("/reset")) <= 6


def test_cancellation_aborts_the_request_in_flight(hostile: HostileServer) -> None:
    async def go() -> None:
        async with api(hostile.url) as source:
            task = asyncio.create_task(source.send(HttpRequest("GET", "/slow?ms=10000")))
            await until(lambda: hostile.state.in_flight == 1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await until(lambda: hostile.state.aborted == 1 and hostile.state.in_flight == 0)

    run(go())


def test_cancellation_during_the_body_closes_the_connection(hostile: HostileServer) -> None:
    async def go() -> None:
        async with api(hostile.url, max_response_bytes=2**31) as source:
            request = HttpRequest("GET", f"/huge?bytes={2**31}")
            task = asyncio.create_task(source.send(request))
            await until(lambda: hostile.state.huge_sent > 2**20)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await until(lambda: hostile.state.in_flight == 0)
            sent = hostile.state.huge_sent
            await asyncio.sleep(0.1)
            assert hostile.state.huge_sent == sent < 2**31

    run(go())


def test_cancellation_ends_a_backoff_wait_at_once(hostile: HostileServer) -> None:
    async def go() -> None:
        async with api(hostile.url) as source:
            retry = RetryPolicy(max_attempts=3, initial_delay_ms=20_000)
            request = HttpRequest("GET", "/flaky/k?fail=5", retry=retry)
            task = asyncio.create_task(source.send(request))
            await until(lambda: len(hostile.state.paths("/flaky/k")) == 1)
            await asyncio.sleep(0.05)
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert time.monotonic() - started < 5  # not the 20 s of the backoff

    run(go())


# --- concurrency ------------------------------------------------------------------------


async def gather_sends(source: SourceClient, requests: list[HttpRequest]) -> list[HttpResponse]:
    return await asyncio.gather(*(source.send(r) for r in requests))


def test_max_in_flight_is_the_peak_at_the_server(hostile: HostileServer) -> None:
    async def go() -> None:
        async with api(hostile.url, max_in_flight=3) as source:
            await gather_sends(source, [HttpRequest("GET", "/slow?ms=20&peak=3")] * 12)

    run(go())
    assert hostile.state.peak_in_flight == 3


@pytest.mark.parametrize(("max_in_flight", "peak"), [(None, 100), (130, 130)])
def test_the_pool_is_not_a_hidden_bound(
    hostile: HostileServer, max_in_flight: int | None, peak: int
) -> None:
    """§7.6: per origin at least 100 connections, or maxInFlight if larger."""

    async def go() -> None:
        async with api(hostile.url, max_in_flight=max_in_flight) as source:
            await gather_sends(source, [HttpRequest("GET", f"/slow?ms=20&peak={peak}")] * 140)

    run(go())
    assert hostile.state.peak_in_flight == peak


def test_requests_sent_counts_every_attempt(hostile: HostileServer) -> None:
    async def go() -> int:
        sources = [SourceSettings(name=name, base_url=hostile.url) for name in "AB"]
        runtime = await HttpRuntime.open(sources)
        try:
            await runtime.source("A").send(HttpRequest("GET", "/flaky/a?fail=2", retry=FAST))
            await runtime.source("B").send(HttpRequest("GET", "/echo"))
            return runtime.requests_sent
        finally:
            await runtime.aclose()

    assert run(go()) == 4


# --- secrets ----------------------------------------------------------------------------


def test_api_key_query_is_masked_in_url_and_messages(hostile: HostileServer) -> None:
    key = "k3y-value-0123"
    settings: dict[str, Any] = {"auth_kind": "api_key",
                                "auth_settings": {"key": key, "query": "apikey"}}  # fmt: skip
    ok = send(hostile.url, HttpRequest("GET", "/echo"), **settings)
    assert ok.body["pairs"] == [["apikey", key]]
    assert ok.url == f"{hostile.url}/echo?apikey=***"
    error = failure(hostile.url, HttpRequest("GET", respond(500, key), retry=ONCE), **settings)
    assert key not in error.message
    assert "apikey=***" in error.message


def test_secrets_echoed_in_bodies_never_reach_messages(hostile: HostileServer) -> None:
    token = "bearer-t0ken-xyz"
    secrets = Secrets()
    body = f'{{"error":"bad token {token}"}}'
    error = failure(
        hostile.url, HttpRequest("GET", respond(403, body)), secrets=secrets,
        auth_kind="bearer", auth_settings={"token": token},
    )  # fmt: skip
    assert token not in error.message
    assert "bad token ***" in error.message
    assert token in secrets


def test_the_base_must_be_an_absolute_http_url() -> None:
    from reqon.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        run(HttpRuntime.open([SourceSettings(name="Api", base_url="ftp://x")]))
    assert "source Api" in str(caught.value)


def test_decoded_json_is_plain_python_values(hostile: HostileServer) -> None:
    payload = {"a": [1, 2.5, "s", None, True, {"b": {}}]}
    response = send(hostile.url, HttpRequest("GET", respond(200, json.dumps(payload))))
    assert response.body == payload
