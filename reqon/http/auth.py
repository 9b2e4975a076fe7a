"""What every request to a source carries to authenticate itself (§3.1.1).

The auth kinds are independent of the HTTP client: a static kind is a header or a query
parameter computed once per run; `oauth2` owns a token that it obtains, refreshes and
shares, and it reaches the network only through a :data:`TokenTransport` the request
pipeline hands it. That keeps the token logic (expiry, single-flight refresh, the one
refresh a 401 earns) testable and free of transport details.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from reqon.errors import RunError
from reqon.http.codec import body_excerpt, decode_body
from reqon.http.secrets import Secrets
from reqon.values import Value, to_string

__all__ = [
    "AUTH_KINDS",
    "Auth",
    "EARLY_REFRESH_S",
    "OAuth2",
    "SECRET_SETTINGS",
    "StaticAuth",
    "TokenReply",
    "TokenTransport",
    "make_auth",
]

AUTH_KINDS = ("none", "bearer", "basic", "api_key", "oauth2")
DEFAULT_API_KEY_HEADER = "X-API-Key"
EARLY_REFRESH_S = 30.0
# The settings whose values are secrets (§3.1.1); the others (username, clientId, header
# and parameter names, tokenUrl) are shown in messages like any other text.
SECRET_SETTINGS = frozenset(
    {"token", "password", "key", "accessToken", "refreshToken", "clientSecret"}
)


@dataclass(frozen=True, slots=True)
class TokenReply:
    """The parts of a token endpoint's answer that the token logic needs."""

    status: int
    reason: str
    content_type: str | None
    body: bytes


# POSTs a form to a token URL; raises RunError (network, timeout, ...) when no answer came.
TokenTransport = Callable[[str, list[tuple[str, str]]], Awaitable[TokenReply]]


def _text(settings: Mapping[str, Value], name: str) -> str | None:
    value = settings.get(name)
    if value is None:
        return None
    return value if isinstance(value, str) else to_string(value)


class StaticAuth:
    """`none`, `bearer`, `basic` and `api_key`: the same header or parameter every time."""

    kind: str
    headers: tuple[tuple[str, str], ...]
    query: tuple[tuple[str, str], ...]

    def __init__(
        self,
        kind: str,
        headers: tuple[tuple[str, str], ...] = (),
        query: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.kind = kind
        self.headers = headers
        self.query = query


class OAuth2:
    """An OAuth 2.0 access token shared by every request to one source.

    At most one token request is in flight: callers that need a new token while one is
    being fetched await the same task. A token request that every caller has abandoned
    (cancelled) is cancelled too, so its connection is closed like any other request's.
    """

    kind = "oauth2"
    headers: tuple[tuple[str, str], ...] = ()
    query: tuple[tuple[str, str], ...] = ()

    def __init__(
        self,
        source: str,
        settings: Mapping[str, Value],
        secrets: Secrets,
        transport: TokenTransport,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._secrets = secrets
        self._transport = transport
        self._clock = clock
        self._access = _text(settings, "accessToken")
        self._refresh = _text(settings, "refreshToken")
        self._token_url = _text(settings, "tokenUrl")
        self._client_id = _text(settings, "clientId")
        self._client_secret = _text(settings, "clientSecret")
        scopes = settings.get("scopes")
        self._scope = " ".join(map(to_string, scopes)) if isinstance(scopes, list) else None
        self._refresh_at: float | None = None
        self._pending: asyncio.Task[str] | None = None
        self._waiters = 0
        self.token_requests = 0

    @property
    def can_refresh(self) -> bool:
        """Whether a new token can be obtained at all (else a 401 is an ordinary failure)."""
        has_grant = self._refresh is not None or (
            self._client_id is not None and self._client_secret is not None
        )
        return self._token_url is not None and has_grant

    async def token(self) -> str:
        """The access token for the next request, obtained or renewed if needed."""
        access = self._access
        if access is not None and (self._refresh_at is None or self._clock() < self._refresh_at):
            return access
        if access is not None and not self.can_refresh:
            return access
        return await self._renew()

    async def renew_after_401(self, rejected: str) -> str | None:
        """A new token after `rejected` drew a 401, or None if none can be had.

        When another request has already replaced `rejected`, its token is returned
        without a new token request: a storm of 401s costs exactly one refresh.
        """
        if not self.can_refresh:
            return None
        if self._access is not None and self._access != rejected:
            return self._access
        return await self._renew()

    async def _renew(self) -> str:
        pending = self._pending
        if pending is None or pending.done():
            pending = self._pending = asyncio.ensure_future(self._request_token())
        self._waiters += 1
        try:
            return await asyncio.shield(pending)
        finally:
            self._waiters -= 1
            if self._waiters == 0 and not pending.done():
                pending.cancel()

    def header(self, token: str) -> tuple[str, str]:
        return ("Authorization", f"Bearer {token}")

    async def _request_token(self) -> str:
        assert self._token_url is not None, "token() without a way to get a token"
        self.token_requests += 1
        try:
            reply = await self._transport(self._token_url, self._grant_form())
        except RunError as exc:
            raise self._failure(exc.message) from None
        return self._accept(reply)

    def _grant_form(self) -> list[tuple[str, str]]:
        if self._refresh is not None:
            form = [("grant_type", "refresh_token"), ("refresh_token", self._refresh)]
        else:
            form = [("grant_type", "client_credentials")]
        if self._client_id is not None:
            form.append(("client_id", self._client_id))
        if self._client_secret is not None:
            form.append(("client_secret", self._client_secret))
        if self._scope:
            form.append(("scope", self._scope))
        return form

    def _accept(self, reply: TokenReply) -> str:
        if not 200 <= reply.status < 300:
            detail = f"{reply.status} {reply.reason}: {body_excerpt(reply.body)}".rstrip(": ")
            raise self._failure(f"the token endpoint answered {detail}")
        try:
            payload = decode_body(reply.status, reply.content_type, reply.body)
        except RunError as exc:
            raise self._failure(exc.message) from None
        if not isinstance(payload, dict):
            raise self._failure("the token response is not a JSON object")
        access = payload.get("access_token")
        if not isinstance(access, str) or not access:
            raise self._failure("the token response has no access_token")
        self._secrets.add(access)
        refresh = payload.get("refresh_token")
        if isinstance(refresh, str) and refresh:
            self._secrets.add(refresh)
            self._refresh = refresh
        self._access = access
        self._refresh_at = self._refresh_instant(payload.get("expires_in"))
        return access

    def _refresh_instant(self, expires_in: Value) -> float | None:
        """Renew 30 s before expiry — or half-way for tokens that live under a minute,
        which would otherwise be renewed before every request."""
        if isinstance(expires_in, str):
            try:
                expires_in = float(expires_in)
            except ValueError:
                return None
        if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool):
            return None
        early = min(EARLY_REFRESH_S, expires_in / 2)
        return self._clock() + expires_in - early

    def _failure(self, detail: str) -> RunError:
        message = f"token request for source {self._source} failed: {detail}"
        return RunError("auth", self._secrets.redact(message))


Auth = StaticAuth | OAuth2


def make_auth(
    source: str,
    kind: str,
    settings: Mapping[str, Value],
    secrets: Secrets,
    transport: TokenTransport,
) -> Auth:
    """The auth of one source from its resolved settings (see `Credentials`)."""
    if kind == "none":
        return StaticAuth("none")
    if kind == "bearer":
        return StaticAuth(kind, headers=(("Authorization", f"Bearer {_text(settings, 'token')}"),))
    if kind == "basic":
        pair = f"{_text(settings, 'username')}:{_text(settings, 'password')}"
        encoded = base64.b64encode(pair.encode()).decode("ascii")
        secrets.add(encoded)
        return StaticAuth(kind, headers=(("Authorization", f"Basic {encoded}"),))
    if kind == "api_key":
        return _api_key(settings, secrets)
    if kind == "oauth2":
        return OAuth2(source, settings, secrets, transport)
    raise ValueError(f"unknown auth kind {kind!r}")


def _api_key(settings: Mapping[str, Value], secrets: Secrets) -> StaticAuth:
    key = _text(settings, "key") or ""
    query = _text(settings, "query")
    if query is not None:
        secrets.add_query_name(query)
        return StaticAuth("api_key", query=((query, key),))
    header = _text(settings, "header") or DEFAULT_API_KEY_HEADER
    prefix = _text(settings, "prefix")
    return StaticAuth("api_key", headers=((header, f"{prefix} {key}" if prefix else key),))
