"""A local HTTP server that misbehaves on purpose, for the HTTP layer's tests.

The demo bookstore (`reqon.demo.server`) is a well-behaved API; this one answers with
whatever a test asks for, so that retries, rate limits, OAuth refreshes, redirects,
decoding rules and cancellation can be checked against a real socket. It records every
request (arrival time, method, raw query, headers, body), the requests in flight and
their peak, and the requests whose client went away (`aborted`).

Endpoints:

* ``ANY /echo`` → ``{"method", "path", "query", "pairs", "headers", "body", "content_type"}``
  (``query`` is the raw query string, ``pairs`` the decoded pairs in order)
* ``ANY /respond?status=&body=&type=&h.<Name>=`` → that status, body text, Content-Type
  (``type=none`` sends none) and extra headers
* ``GET /flaky/{key}?fail=&status=&retry_after=`` → fails ``fail`` times per key, then 200
* ``GET /slow?ms=&peak=`` → ``{"slept"}`` after ``ms`` milliseconds; with ``peak``, the wait
  starts only once ``peak`` requests have been in flight at once (at most 30 s), so that a
  test of a concurrency limit needs no timing
* ``GET /protected`` → 200 only with the headers in ``state.expected``, else 401
* ``POST /oauth/token`` → a new token (``state.oauth`` says how); ``GET /oauth/data``
  → 200 with the current token, else 401
* ``GET /quota`` → 200 with ``X-RateLimit-Remaining``/``-Reset`` for a quota of
  ``state.quota`` requests per ``state.quota_window_s``; 429 once spent
* ``GET /redirect/loop``, ``/redirect/chain/{n}``, ``ANY /redirect/see-other``
* ``GET /huge?bytes=`` → streamed bytes; ``state.huge_sent`` counts what went out
* ``GET /gzip`` → a gzip-compressed JSON body
* ``GET /reset`` → the connection is closed without an answer
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from reqon.demo.server import ThreadedServer
from multidict import CIMultiDict

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    """One request as the server received it; ``at`` is ``time.monotonic()``."""

    at: float
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class OAuthConfig:
    """How ``/oauth/token`` behaves; tests change it between requests."""

    expires_in: float | None = None
    fail_status: int | None = None  # answer every token request with this status
    delay_ms: float = 0
    rotate_refresh: bool = False
    client_id: str = "client-7"
    client_secret: str = "cl1ent-s3cret"
    refresh_token: str = "refresh-0001"


@dataclass
class HostileState:
    """What the server saw and how it is told to behave; guarded by ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: list[Seen] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0
    aborted: int = 0
    attempts: Counter[str] = field(default_factory=Counter)
    expected: dict[str, str] = field(default_factory=dict)
    oauth: OAuthConfig = field(default_factory=OAuthConfig)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    tokens_issued: int = 0
    current_token: str | None = None
    token_expires_at: float | None = None
    quota: int = 5
    quota_window_s: float = 1.0
    quota_started: float = 0.0
    quota_used: int = 0
    huge_sent: int = 0

    def paths(self, path: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.path == path]

    def revoke_token(self) -> None:
        """Make the current token invalid, as if it had expired on the server."""
        with self.lock:
            self.current_token = None


_STATE = web.AppKey("state", HostileState)


def _state(request: web.Request) -> HostileState:
    return request.app[_STATE]


@web.middleware
async def _record(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = _state(request)
    body = await request.read()
    with state.lock:
        state.seen.append(
            Seen(time.monotonic(), request.method, request.path, _raw_query(request),
                 dict(request.headers), body)
        )  # fmt: skip
        state.in_flight += 1
        state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
    try:
        return await handler(request)
    except asyncio.CancelledError:
        with state.lock:
            state.aborted += 1
        raise
    finally:
        with state.lock:
            state.in_flight -= 1


def _raw_query(request: web.Request) -> str:
    """The query exactly as sent (aiohttp's `query_string` is already decoded)."""
    return request.raw_path.partition("?")[2]


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "query": _raw_query(request),
            "pairs": parse_qsl(_raw_query(request), keep_blank_values=True),
            "headers": [[k, v] for k, v in request.headers.items()],
            "body": body.decode("utf-8", errors="replace"),
            "content_type": request.headers.get("Content-Type"),
        }
    )


class _UntypedResponse(web.Response):
    """aiohttp always adds a Content-Type to a non-empty body; this one sends none."""

    async def _write_headers(self) -> None:
        self.headers.popall("Content-Type", None)
        await super()._write_headers()


async def _respond(request: web.Request) -> web.Response:
    query = request.query
    headers = CIMultiDict((k[2:], v) for k, v in query.items() if k.startswith("h."))
    kind = query.get("type", "application/json")
    response_class = _UntypedResponse if kind == "none" else web.Response
    response = response_class(
        status=int(query.get("status", "200")),
        body=query.get("body", "").encode(),
        headers=headers,
    )
    if kind != "none":
        response.headers["Content-Type"] = kind
    return response


async def _flaky(request: web.Request) -> web.Response:
    state = _state(request)
    key = request.match_info["key"]
    with state.lock:
        state.attempts[key] += 1
        attempt = state.attempts[key]
    if attempt <= int(request.query.get("fail", "1")):
        headers = {}
        if "retry_after" in request.query:
            headers["Retry-After"] = request.query["retry_after"]
        status = int(request.query.get("status", "503"))
        return web.json_response({"error": "flaky", "attempt": attempt}, status=status,
                                 headers=headers)  # fmt: skip
    return web.json_response({"key": key, "attempt": attempt})


async def _slow(request: web.Request) -> web.Response:
    ms = float(request.query.get("ms", "100"))
    peak = int(request.query.get("peak", "0"))
    state = _state(request)
    deadline = time.monotonic() + 30
    while state.peak_in_flight < peak and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    await asyncio.sleep(ms / 1000)
    return web.json_response({"slept": ms})


async def _protected(request: web.Request) -> web.Response:
    expected = _state(request).expected
    for name, value in expected.items():
        if request.headers.get(name) != value:
            return web.json_response({"error": "unauthorized"}, status=401)
    return web.json_response({"ok": True})


async def _token(request: web.Request) -> web.Response:
    state = _state(request)
    form = dict(parse_qsl((await request.read()).decode()))
    config = state.oauth
    with state.lock:
        state.token_requests.append(form)
    if config.delay_ms:
        await asyncio.sleep(config.delay_ms / 1000)
    if config.fail_status is not None:
        return web.json_response({"error": "invalid_client"}, status=config.fail_status)
    grant = form.get("grant_type")
    valid = (grant == "refresh_token" and form.get("refresh_token") == config.refresh_token) or (
        grant == "client_credentials"
        and form.get("client_id") == config.client_id
        and form.get("client_secret") == config.client_secret
    )
    if not valid:
        return web.json_response({"error": "invalid_grant"}, status=400)
    with state.lock:
        state.tokens_issued += 1
        token = f"access-{state.tokens_issued:04d}"
        state.current_token = token
        expires = config.expires_in
        state.token_expires_at = None if expires is None else time.monotonic() + expires
        payload: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if expires is not None:
            payload["expires_in"] = expires
        if config.rotate_refresh:
            config.refresh_token = f"refresh-{state.tokens_issued + 1:04d}"
            payload["refresh_token"] = config.refresh_token
    return web.json_response(payload)


async def _oauth_data(request: web.Request) -> web.Response:
    state = _state(request)
    ms = float(request.query.get("ms", "0"))
    if ms:
        await asyncio.sleep(ms / 1000)
    with state.lock:
        token = state.current_token
        expired = state.token_expires_at is not None and time.monotonic() >= state.token_expires_at
    if token is None or expired or request.headers.get("Authorization") != f"Bearer {token}":
        return web.json_response({"error": "invalid_token"}, status=401)
    return web.json_response({"data": [1, 2, 3], "token": token})


async def _quota(request: web.Request) -> web.Response:
    state = _state(request)
    now = time.monotonic()
    with state.lock:
        if now - state.quota_started >= state.quota_window_s:
            state.quota_started, state.quota_used = now, 0
        state.quota_used += 1
        remaining = state.quota - state.quota_used
        reset = state.quota_started + state.quota_window_s - now
    headers = {"X-RateLimit-Remaining": str(max(0, remaining)),
               "X-RateLimit-Reset": f"{reset:.3f}"}  # fmt: skip
    if remaining < 0:
        return web.json_response({"error": "quota"}, status=429, headers=headers)
    return web.json_response({"remaining": remaining}, headers=headers)


async def _redirect_loop(request: web.Request) -> web.Response:
    raise web.HTTPFound("/redirect/loop")


async def _redirect_chain(request: web.Request) -> web.Response:
    n = int(request.match_info["n"])
    if n == 0:
        return web.json_response({"arrived": True})
    raise web.HTTPFound(f"/redirect/chain/{n - 1}")


async def _see_other(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/echo?after=303")


async def _huge(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    total = int(request.query.get("bytes", str(10 * 2**20)))
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    if request.query.get("length") == "declared":
        response.content_length = total
    await response.prepare(request)
    chunk = b" " * 65536
    sent = 0
    while sent < total:
        piece = chunk[: min(len(chunk), total - sent)]
        await response.write(piece)
        sent += len(piece)
        with state.lock:
            state.huge_sent = sent
        await asyncio.sleep(0)
    await response.write_eof()
    return response


async def _gzip(request: web.Request) -> web.Response:
    body = gzip.compress(b'{"zipped": true}')
    return web.Response(body=body, headers={"Content-Encoding": "gzip",
                                            "Content-Type": "application/json"})  # fmt: skip


async def _reset(request: web.Request) -> web.Response:
    transport = request.transport
    assert transport is not None
    transport.abort()
    await asyncio.sleep(60)  # cancelled at once: the connection is gone
    raise AssertionError("unreachable")


def make_hostile_app(state: HostileState) -> web.Application:
    app = web.Application(middlewares=[_record])
    app[_STATE] = state
    router = app.router
    router.add_route("*", "/echo", _echo)
    router.add_route("*", "/respond", _respond)
    router.add_get("/flaky/{key}", _flaky)
    router.add_get("/slow", _slow)
    router.add_get("/protected", _protected)
    router.add_post("/oauth/token", _token)
    router.add_get("/oauth/data", _oauth_data)
    router.add_get("/quota", _quota)
    router.add_get("/redirect/loop", _redirect_loop)
    router.add_get(r"/redirect/chain/{n:\d+}", _redirect_chain)
    router.add_route("*", "/redirect/see-other", _see_other)
    router.add_get("/huge", _huge)
    router.add_get("/gzip", _gzip)
    router.add_get("/reset", _reset)
    return app


class HostileServer(ThreadedServer):
    """The hostile app on its own loop in a daemon thread, on an ephemeral port."""

    def __init__(self) -> None:
        self.state = HostileState()
        super().__init__(make_hostile_app(self.state))
