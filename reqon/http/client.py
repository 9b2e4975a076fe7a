"""Every HTTP request a mission makes (§6.3): the per-source request pipeline.

`HttpRuntime` owns one `httpx.AsyncClient` for the whole run — httpx is the API, aiohttp
the transport (measured in `bench/README.md`: 3 to 6 times cheaper per request than
httpx's own pool under concurrency) — and one `SourceClient` per declared source.
`SourceClient.send` runs one logical request through the gates of §6.3.9 for each
attempt:

1. circuit breaker (`reqon.http.breaker`): refuse at once while open;
2. the OAuth token, if the source uses `oauth2` (`reqon.http.auth`);
3. rate limiter (`reqon.http.ratelimit`): wait, fairly and holding no slot;
4. a `maxInFlight` slot;
5. send and receive the complete body within the attempt's timeout.

It retries what §6.3.5 calls retryable, honours `Retry-After`, re-sends once after an
OAuth refresh, applies `allow`, decodes the body and turns every failure into a
`RunError` of the right kind whose message is free of secrets. Everything is
cancellable: cancelling the calling task aborts the request in flight and closes its
connection.
"""

from __future__ import annotations

import asyncio
import errno
import re
import ssl
import sys
import time
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from http.cookiejar import CookieJar
from typing import Any, Final, NamedTuple
from urllib.parse import unquote, urlsplit

import aiohttp

# httpx's package imports its command-line tool (click, rich, pygments: some 50 ms) whenever
# click is installed, as it is next to Ray (`reqon[ray]`). reqon never uses that tool; a
# None entry makes its import fail, and httpx then keeps a stub in its place.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
import httpx  # noqa: E402
from httpx_aiohttp import AiohttpTransport  # noqa: E402

from reqon import __version__
from reqon.http.auth import SECRET_SETTINGS, OAuth2, TokenReply, make_auth
from reqon.http.breaker import CircuitBreaker
from reqon.http.credentials import Credentials
from reqon.errors import ConfigError, ErrorKind, RunError
from reqon.http.codec import (
    FORM_TYPE,
    HeaderList,
    body_excerpt,
    build_url,
    decode_body,
    encode_body,
    encode_form,
    merge_headers,
    parse_retry_after,
)
from reqon.http.ratelimit import RateLimiter, Turn
from reqon.http.secrets import Secrets
from reqon.http.model import Allow, HttpRequest, HttpResponse, RetryPolicy, SourceSettings
from reqon.values import Value, to_string

__all__ = [
    "Allow",
    "HttpRequest",
    "HttpResponse",
    "HttpRuntime",
    "MAX_REDIRECTS",
    "RETRYABLE_STATUSES",
    "RetryPolicy",
    "SourceClient",
    "SourceSettings",
]

MAX_REDIRECTS: Final = 10
MIN_POOL_PER_ORIGIN: Final = 100
RETRYABLE_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
RETRY_AFTER_STATUSES: Final = frozenset({429, 503})
# Retried only when the step asks for it with an explicit `retry` option (docs/http.md).
NON_IDEMPOTENT_METHODS: Final = frozenset({"POST", "PATCH"})
DEFAULT_HEADERS: Final[Mapping[str, Value]] = {
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": f"reqon/{__version__}",
}


# The request and response values are in `http_model.py` (imported above).


# --- one attempt's result ---------------------------------------------------------------


class _Reply(NamedTuple):
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    url: str | None  # the final URL when redirected, else None (the request URL)


class _Failed(NamedTuple):
    kind: str  # "timeout" | "network"
    detail: str


class _TooLarge(Exception):
    """The body passed `maxResponseBytes`; raised inside the attempt's read loop."""


class _Prepared(NamedTuple):
    method: str
    url: str
    shown_url: str
    headers: HeaderList
    content: bytes | None


def _response_headers(response: httpx.Response) -> dict[str, str]:
    """Lower-case names, repeated headers joined with ", " (§6.3.4).

    Read from the raw pairs: httpx's `Headers` re-guesses the text encoding of every
    header on each access, which costs more than the rest of this function.
    """
    headers: dict[str, str] = {}
    for raw_name, raw_value in response.headers.raw:
        name = raw_name.decode("latin-1").lower()
        try:
            value = raw_value.decode("utf-8")
        except UnicodeDecodeError:
            value = raw_value.decode("latin-1")
        if name in headers:
            headers[name] = f"{headers[name]}, {value}"
        else:
            headers[name] = value
    return headers


def _network_detail(exc: BaseException) -> str:
    """A short reason for a transport failure, found on the exception's cause chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, aiohttp.ClientConnectorError):
            if seen.os_error.errno == errno.ECONNREFUSED:
                return "connection refused"
            return f"cannot connect: {seen.os_error.strerror or seen.os_error}"
        if isinstance(seen, aiohttp.ServerDisconnectedError):
            return "the server closed the connection"
        if isinstance(seen, ConnectionResetError):
            return "connection reset by peer"
        if isinstance(seen, aiohttp.ClientPayloadError):
            return "the response ended early"
        seen = seen.__cause__
    return str(exc) or type(exc).__name__


def _attempts(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"


def _reason(status: int, given: str) -> str:
    if given:
        return given
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


# --- the pipeline -----------------------------------------------------------------------


class SourceClient:
    """Sends requests to one source; shared by every branch and iteration using it."""

    # Retry policy of OAuth token requests, which have no step to configure them.
    token_retry: RetryPolicy = RetryPolicy()

    def __init__(
        self,
        settings: SourceSettings,
        client: httpx.AsyncClient,
        resolved_auth: Mapping[str, Value],
        secrets: Secrets,
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self._client = client
        self._secrets = secrets
        self.auth = make_auth(
            settings.name, settings.auth_kind, resolved_auth, secrets, self._post_token_form
        )
        self.limiter = RateLimiter(settings.name, settings.rate_limit)
        self.breaker = (
            CircuitBreaker(settings.name, settings.circuit_breaker)
            if settings.circuit_breaker is not None
            else None
        )
        limit = settings.max_in_flight
        self._slots = asyncio.Semaphore(limit) if limit else None
        self._base_headers = merge_headers((DEFAULT_HEADERS, settings.headers))
        self._auth_names = frozenset(name.lower() for name, _ in self.auth.headers)
        if isinstance(self.auth, OAuth2):
            self._auth_names = frozenset({"authorization"})
        self._plain_headers = self._header_list(self._base_headers)
        self.requests_sent = 0
        self.in_flight = 0  # requests past every gate, holding their slot

    def share_gates(self, gate: Any) -> None:
        """Let `gate` (an object with the limiter's interface) decide request starts and
        hold the `maxInFlight` slots instead of this process: how several processes
        sending to one source keep its rate limit and in-flight cap together."""
        self.limiter = gate
        self._slots = None

    # -- building the request (§6.3.1–§6.3.3) -------------------------------------------

    def _header_list(self, merged: Mapping[str, tuple[str, str | None]]) -> HeaderList:
        """Merged headers as sent: nulls dropped, the auth header winning (§6.3.2)."""
        names = self._auth_names
        headers = [(n, v) for key, (n, v) in merged.items() if v is not None and key not in names]
        headers.extend(self.auth.headers)
        return headers

    def _prepare(self, request: HttpRequest) -> _Prepared:
        url = build_url(
            self.settings.base_url,
            request.path,
            request.params,
            request.extra_params,
            self.auth.query,
        )
        shown_url = self._secrets.redact_url(url)
        method = request.method.upper()
        if request.headers is None and request.body is None:
            return _Prepared(method, url, shown_url, self._plain_headers, None)
        merged = dict(self._base_headers)
        merged.update(merge_headers((request.headers,)))
        content = None
        if request.body is not None:
            given = merged.get("content-type", ("", None))[1]
            content, added_type = encode_body(request.body, given)
            if added_type is not None:
                merged["content-type"] = ("Content-Type", added_type)
        return _Prepared(method, url, shown_url, self._header_list(merged), content)

    # -- sending --------------------------------------------------------------------------

    async def send(self, request: HttpRequest) -> HttpResponse:
        """The whole §6.3 pipeline for one logical request; raises `RunError`."""
        started = time.monotonic()
        prepared = self._prepare(request)
        retry = request.retry
        may_retry = retry.explicit or prepared.method not in NON_IDEMPOTENT_METHODS
        max_attempts = max(1, retry.max_attempts) if may_retry else 1
        timeout_s = (request.timeout_ms or self.settings.timeout_ms) / 1000
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            outcome, token = await self._attempt(prepared, timeout_s)
            if isinstance(outcome, _Reply):
                status = outcome.status
                if status < 400 or request.allow.allows(status):
                    return self._success(prepared, outcome, attempt, started)
                if status == 401 and token is not None and not refreshed:
                    assert isinstance(self.auth, OAuth2)
                    if await self.auth.renew_after_401(token) is not None:
                        refreshed = True
                        attempt -= 1  # §3.1.1: the re-send is not an attempt
                        continue
                if status not in RETRYABLE_STATUSES or attempt >= max_attempts:
                    raise self._status_error(prepared, outcome, attempt)
                await self._pause_before_retry(outcome, retry, attempt)
            else:
                if attempt >= max_attempts:
                    raise self._failure_error(prepared, outcome, attempt, timeout_s)
                await asyncio.sleep(retry.delay_ms(attempt) / 1000)

    async def _pause_before_retry(self, reply: _Reply, retry: RetryPolicy, attempt: int) -> None:
        """Backoff, unless the server named the wait with `Retry-After`: the rate limiter
        has learnt that instant and makes the next attempt (and everyone else) wait for
        it, failing with kind `rate-limit` if it exceeds `maxWait` (§6.3.7)."""
        if reply.status in RETRY_AFTER_STATUSES and "retry-after" in reply.headers:
            if parse_retry_after(reply.headers["retry-after"]) is not None:
                return
        await asyncio.sleep(retry.delay_ms(attempt) / 1000)

    async def _attempt(
        self, prepared: _Prepared, timeout_s: float
    ) -> tuple[_Reply | _Failed, str | None]:
        """One attempt through the gates, and the OAuth token it carried.

        Order: breaker, token, limiter, slot, request. The limiter is waited for before
        the slot so that a rate-limited request holds no slot (§6.3.7); the request's
        start is recorded once it holds the slot, so spacing is kept all the same.
        """
        breaker = self.breaker
        if breaker is not None:
            breaker.check()
        token = await self.auth.token() if isinstance(self.auth, OAuth2) else None
        return await self._gated_exchange(prepared, timeout_s, token), token

    async def _gated_exchange(
        self, prepared: _Prepared, timeout_s: float, token: str | None
    ) -> _Reply | _Failed:
        limiter = self.limiter
        turn = await limiter.acquire()
        try:
            slots = self._slots
            if slots is None:
                return await self._exchange(prepared, timeout_s, token, turn)
            async with slots:
                return await self._exchange(prepared, timeout_s, token, turn)
        finally:
            limiter.release(turn)

    async def _exchange(
        self, prepared: _Prepared, timeout_s: float, token: str | None, turn: Turn | None
    ) -> _Reply | _Failed:
        """Gate (4): one request and its complete body, within the attempt's timeout."""
        headers = prepared.headers
        if token is not None:
            headers = [*headers, ("Authorization", f"Bearer {token}")]
        limiter = self.limiter
        limiter.started(turn)
        self.requests_sent += 1
        self.in_flight += 1
        try:
            return await self._timed_exchange(prepared, headers, timeout_s)
        finally:
            self.in_flight -= 1
            limiter.finished()

    async def _timed_exchange(
        self, prepared: _Prepared, headers: HeaderList, timeout_s: float
    ) -> _Reply | _Failed:
        breaker = self.breaker
        try:
            async with asyncio.timeout(timeout_s):
                reply = await self._round_trip(prepared, headers)
        except TimeoutError:
            if breaker is not None:
                breaker.record_failure()
            return _Failed("timeout", f"timed out after {timeout_s:g}s")
        except httpx.TooManyRedirects:
            raise RunError(
                "http",
                f"{prepared.method} {prepared.shown_url}: too many redirects "
                f"(more than {MAX_REDIRECTS})",
            ) from None
        except httpx.DecodingError:
            raise RunError(
                "decode",
                f"{prepared.method} {prepared.shown_url}: the response body does not match "
                "its Content-Encoding",
            ) from None
        except httpx.RequestError as exc:  # transport failures, malformed responses
            if breaker is not None:
                breaker.record_failure()
            return _Failed("network", self._secrets.redact(_network_detail(exc)))
        except _TooLarge:
            raise RunError(
                "decode",
                f"{prepared.method} {prepared.shown_url}: the response body is larger than "
                f"{self.settings.max_response_bytes} bytes (maxResponseBytes)",
            ) from None
        self.limiter.observe(reply.headers)
        if breaker is not None:
            if reply.status >= 500:
                breaker.record_failure()
            else:
                breaker.record_success()
        return reply

    async def _round_trip(self, prepared: _Prepared, headers: HeaderList) -> _Reply:
        try:
            request = httpx.Request(
                prepared.method, prepared.url, headers=headers, content=prepared.content
            )
        except (httpx.InvalidURL, httpx.LocalProtocolError, ValueError, TypeError) as exc:
            raise RunError.runtime(
                f"{prepared.method} {prepared.shown_url}: invalid request: "
                f"{self._secrets.redact(str(exc))}"
            ) from None
        response = await _send(self._client, request)
        try:
            received = _response_headers(response)
            body = await self._read(response, received.get("content-length"))
        finally:
            await response.aclose()
        final_url = str(response.url) if response.history else None
        return _Reply(response.status_code, response.reason_phrase, received, body, final_url)

    async def _read(self, response: httpx.Response, declared: str | None) -> bytes:
        """The body, failing as soon as it passes `maxResponseBytes` (§6.3.4)."""
        limit = self.settings.max_response_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # -- results --------------------------------------------------------------------------

    def _success(
        self, prepared: _Prepared, reply: _Reply, attempts: int, started: float
    ) -> HttpResponse:
        url = prepared.shown_url if reply.url is None else self._secrets.redact_url(reply.url)
        try:
            body = decode_body(reply.status, reply.headers.get("content-type"), reply.body)
        except RunError as exc:
            message = self._secrets.redact(f"{prepared.method} {url}: {exc.message}")
            raise RunError("decode", message, reply.status) from None
        return HttpResponse(
            prepared.method,
            url,
            reply.status,
            reply.headers,
            body,
            attempts,
            (time.monotonic() - started) * 1000,
            reply.reason,
        )

    def _status_error(self, prepared: _Prepared, reply: _Reply, attempts: int) -> RunError:
        url = prepared.shown_url if reply.url is None else self._secrets.redact_url(reply.url)
        status = reply.status
        line = f"{status} {_reason(status, reply.reason)}".rstrip()
        message = f"{prepared.method} {url} returned {line} after {_attempts(attempts)}"
        excerpt = body_excerpt(reply.body)
        if excerpt:
            message = f"{message}: {excerpt}"
        kind: ErrorKind = "rate-limit" if status == 429 else "http"
        return RunError(kind, self._secrets.redact(message), status)

    def _failure_error(
        self, prepared: _Prepared, failed: _Failed, attempts: int, timeout_s: float
    ) -> RunError:
        what = f"{prepared.method} {prepared.shown_url}"
        if failed.kind == "timeout":
            message = f"{what} timed out after {_attempts(attempts)} (timeout {timeout_s:g}s)"
            return RunError("timeout", message)
        return RunError("network", f"{what} failed after {_attempts(attempts)}: {failed.detail}")

    # -- OAuth token requests -------------------------------------------------------------

    async def _post_token_form(self, url: str, form: list[tuple[str, str]]) -> TokenReply:
        """The token request of §3.1.1, with the source's timeout and the default retry
        policy, but outside the source's limiter, breaker and slots: the identity
        provider is usually another server, whose limits the API's headers do not
        describe."""
        content = encode_form(dict(form))
        prepared = _Prepared(
            "POST",
            url,
            self._secrets.redact_url(url),
            [
                ("Accept", "application/json"),
                ("User-Agent", f"reqon/{__version__}"),
                ("Content-Type", FORM_TYPE),
            ],
            content,
        )
        retry = self.token_retry
        timeout_s = self.settings.timeout_ms / 1000
        attempt = 0
        while True:
            attempt += 1
            self.requests_sent += 1
            outcome = await self._token_attempt(prepared, timeout_s)
            if isinstance(outcome, _Reply):
                if outcome.status not in RETRYABLE_STATUSES or attempt >= retry.max_attempts:
                    return TokenReply(
                        outcome.status,
                        _reason(outcome.status, outcome.reason),
                        outcome.headers.get("content-type"),
                        outcome.body,
                    )
            elif attempt >= retry.max_attempts:
                raise self._failure_error(prepared, outcome, attempt, timeout_s)
            await asyncio.sleep(retry.delay_ms(attempt) / 1000)

    async def _token_attempt(self, prepared: _Prepared, timeout_s: float) -> _Reply | _Failed:
        try:
            async with asyncio.timeout(timeout_s):
                return await self._round_trip(prepared, prepared.headers)
        except TimeoutError:
            return _Failed("timeout", f"timed out after {timeout_s:g}s")
        except httpx.TooManyRedirects:
            raise RunError("auth", f"POST {prepared.shown_url}: too many redirects") from None
        except httpx.RequestError as exc:
            return _Failed("network", self._secrets.redact(_network_detail(exc)))
        except _TooLarge:
            raise RunError("auth", f"POST {prepared.shown_url}: response too large") from None


# --- the run-wide runtime ---------------------------------------------------------------


async def _send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """`client.send(request, stream=True)` without the layers reqon leaves unused (auth
    flows, event hooks, cookie extraction, logging): the transport the client mounts for
    the URL (a proxy's, or the direct one), about 60 µs of 300 µs of CPU per request
    (bench/README.md). Redirects are followed as httpx follows them: the next request is
    httpx's own (`_build_redirect_request`: the method, the body, and no Authorization on
    another origin), the redirect's body read, at most MAX_REDIRECTS of them."""
    history: list[httpx.Response] = []
    while True:
        response = await client._transport_for_url(request.url).handle_async_request(request)
        response.request = request
        if not response.has_redirect_location:
            response.history = history
            return response
        try:
            if len(history) >= MAX_REDIRECTS:
                raise httpx.TooManyRedirects("Exceeded maximum allowed redirects.", request=request)
            following = client._build_redirect_request(request, response)
            await response.aread()
        except BaseException:
            await response.aclose()
            raise
        history.append(response)
        request = following


def _session_factory(per_origin: int) -> aiohttp.ClientSession:
    """aiohttp keeps cookies of its own, below httpx's: its dummy jar is the one that keeps
    none (the default jar replays cookies of named hosts, docs/http.md)."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=per_origin)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


def _proxy_mounts(per_origin: int, secrets: Secrets) -> dict[str, httpx.AsyncBaseTransport | None]:
    """HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY (either case), read as httpx reads
    them. httpx applies the environment only to its own default transport, not to the
    aiohttp transport reqon uses, so the mounts are built here: one aiohttp transport per
    proxy, and NO_PROXY patterns mapped to the direct transport. A password in a proxy URL
    is registered as a secret, so that no message shows it."""
    from httpx._utils import get_environment_proxies  # the parsing httpx itself uses for trust_env

    mounts: dict[str, httpx.AsyncBaseTransport | None] = {}
    for pattern, url in get_environment_proxies().items():
        if url is None:
            mounts[pattern] = None
            continue
        mounts[pattern] = AiohttpTransport(client=lambda: _session_factory(per_origin), proxy=_proxy(url, secrets))
    return mounts


def _proxy(url: str, secrets: Secrets) -> httpx.Proxy:
    """The proxy; its password, if the URL has one, becomes a secret (redacted everywhere).
    (httpx-aiohttp sends the credentials with aiohttp's `proxy_auth`, which aiohttp 3.12
    deprecates; a Proxy-Authorization header would only reach CONNECT tunnels.)"""
    try:
        parts = urlsplit(url)  # raises for an unclosed IPv6 bracket
        port, host = parts.port, parts.hostname  # `port` raises for one out of range or not a number
    except ValueError as exc:
        raise ConfigError(f"the proxy {_without_userinfo(url)} of the environment is not a valid URL: {exc}") from None
    if not host or port == 0:
        raise ConfigError(f"the proxy {_without_userinfo(url)} of the environment is not a valid URL: "
                          f"{'no host' if not host else 'port 0'}")
    if parts.scheme not in ("http", "https"):  # SOCKS would otherwise fail later as "connection refused"
        raise ConfigError(f"the proxy {_without_userinfo(url)} of the environment is a {parts.scheme}:// proxy; "
                          "reqon supports http:// and https:// proxies (unset it, or run with --no-proxy)")
    if parts.password:
        secrets.add(parts.password)
        secrets.add(unquote(parts.password))
    return httpx.Proxy(url)


def _without_userinfo(text: str) -> str:
    """`text` with the user and password of any URL in it masked: a proxy URL that cannot be
    parsed has not had its password registered as a secret."""
    return re.sub(r"//[^/\s]*@", "//***@", text)  # to the last @ of the authority: a password may hold one


class _NoCookies(CookieJar):
    """An API pipeline is not a browser: cookies set by one response are not replayed on
    later requests (this also keeps branches from influencing each other). Ignoring them
    outright, rather than through a refusing policy, also skips parsing every response's
    headers for them (about 1 % of a request's instructions, `bench/README.md`)."""

    def extract_cookies(self, response: object, request: object) -> None:
        return None

    def add_cookie_header(self, request: object) -> None:
        return None


def _no_cookies() -> httpx.Cookies:
    return httpx.Cookies(_NoCookies())


def _new_client(per_origin: int,
                mounts: dict[str, httpx.AsyncBaseTransport | None] | None = None) -> httpx.AsyncClient:
    """The one way this package builds a client: requests and OpenAPI documents alike
    (`mounts`: the proxies of the environment, see `_proxy_mounts`)."""
    return httpx.AsyncClient(
        # With `client=`, TLS is the connector's (aiohttp's context with the system's CAs) and the
        # transport's own context is never used: handing it a bare one saves building a verified
        # context (loading every CA certificate, ~30 ms of start-up) only to throw it away.
        transport=AiohttpTransport(client=lambda: _session_factory(per_origin),
                                   verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)),
        timeout=None,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        cookies=_no_cookies(),
        mounts=mounts,
    )


async def fetch_document(url: str, timeout_ms: float, max_bytes: int, *, proxy: bool = True,
                         secrets: Secrets | None = None) -> bytes:
    """The bytes at `url` (an OpenAPI document fetched at mission start, §3.1.6), with the
    same client, redirects, timeout handling and proxies as a request; raises ConfigError."""
    mounts = _proxy_mounts(MIN_POOL_PER_ORIGIN, secrets if secrets is not None else Secrets()) if proxy else None
    client = _new_client(MIN_POOL_PER_ORIGIN, mounts)
    try:
        async with asyncio.timeout(timeout_ms / 1000):
            headers = {**{k: str(v) for k, v in DEFAULT_HEADERS.items()},
                       "Accept": "application/json, application/yaml;q=0.9, */*;q=0.8"}
            response = await client.send(client.build_request("GET", url, headers=headers),
                                         stream=True)
            try:
                if response.status_code >= 400:
                    raise ConfigError(f"GET {url}: HTTP {response.status_code} "
                                      f"{_reason(response.status_code, response.reason_phrase)}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise ConfigError(f"GET {url}: the document is larger than {max_bytes} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
            finally:
                await response.aclose()
    except TimeoutError:
        raise ConfigError(f"GET {url}: timed out after {timeout_ms / 1000:g}s") from None
    except httpx.HTTPError as exc:
        raise ConfigError(f"GET {url}: {_network_detail(exc)}") from None
    finally:
        await client.aclose()


def _check_base(settings: SourceSettings) -> None:
    if not settings.base_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"source {settings.name}: base must be an absolute http:// or https:// URL"
        )


class HttpRuntime:
    """One shared client (connection pool) for the run and one `SourceClient` per source."""

    def __init__(self, client: httpx.AsyncClient, sources: dict[str, SourceClient]) -> None:
        self._client = client
        self._sources = sources

    @classmethod
    async def open(
        cls,
        sources: Sequence[SourceSettings],
        credentials: Credentials | None = None,
        secrets: Secrets | None = None,
        *,
        proxy: bool = False,
    ) -> HttpRuntime:
        """Build the clients; raises `ConfigError` for a bad base URL or a missing
        credential, naming the source and field. Without `credentials`, settings come
        from the mission and the `REQON_<SOURCE>_<FIELD>` variables of the process.
        With `proxy`, requests go through the proxies of the environment (`_proxy_mounts`)."""
        credentials = credentials if credentials is not None else Credentials()
        secrets = secrets if secrets is not None else Secrets()
        for settings in sources:
            _check_base(settings)
        largest = max((s.max_in_flight or 0 for s in sources), default=0)
        per_origin = max(MIN_POOL_PER_ORIGIN, largest)
        client = _new_client(per_origin, _proxy_mounts(per_origin, secrets) if proxy else None)
        clients: dict[str, SourceClient] = {}
        for settings in sources:
            resolved = _resolve_auth(settings, credentials, secrets)
            clients[settings.name] = SourceClient(settings, client, resolved, secrets)
        return cls(client, clients)

    def source(self, name: str) -> SourceClient:
        return self._sources[name]

    @property
    def sources(self) -> Mapping[str, SourceClient]:
        return self._sources

    @property
    def requests_sent(self) -> int:
        """Requests put on the wire so far, token requests and retries included."""
        return sum(source.requests_sent for source in self._sources.values())

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpRuntime:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _resolve_auth(
    settings: SourceSettings, credentials: Credentials, secrets: Secrets
) -> dict[str, Value]:
    """A source's auth settings by the precedence of §3.1.1, every secret among them
    registered for redaction before the first request."""
    problem = credentials.missing_message(settings)
    if problem is not None:
        raise ConfigError(problem)
    resolved = credentials.settings(settings)
    for name in SECRET_SETTINGS:
        value = resolved.get(name)
        if value is not None:
            secrets.add(value if isinstance(value, str) else to_string(value))
    return resolved
