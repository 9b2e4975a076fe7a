"""Auth kinds (§3.1.1) against a server that answers 401 until the right credential
arrives, and an OAuth token endpoint that counts every token it hands out."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

from reqon.http.auth import OAuth2, TokenReply
from reqon.errors import ConfigError, RunError
from reqon.http.client import HttpRequest, HttpRuntime, RetryPolicy, SourceClient, SourceSettings
from reqon.http.secrets import Secrets
from tests.hostile_server import HostileServer

T = TypeVar("T")
pytestmark = pytest.mark.timeout(30)

CLIENT = {"clientId": "client-7", "clientSecret": "cl1ent-s3cret"}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@asynccontextmanager
async def api(
    url: str, kind: str, settings: dict[str, Any], secrets: Secrets | None = None
) -> AsyncIterator[SourceClient]:
    source = SourceSettings(name="Api", base_url=url, auth_kind=kind, auth_settings=settings)
    runtime = await HttpRuntime.open([source], secrets=secrets)
    try:
        yield runtime.source("Api")
    finally:
        await runtime.aclose()


def get(url: str, kind: str, settings: dict[str, Any], path: str = "/protected") -> Any:
    async def go() -> Any:
        async with api(url, kind, settings) as source:
            return await source.send(HttpRequest("GET", path))

    return run(go())


def oauth(hostile: HostileServer, **settings: Any) -> dict[str, Any]:
    return {"tokenUrl": f"{hostile.url}/oauth/token", **settings}


# --- static kinds -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "settings", "expected"),
    [
        ("bearer", {"token": "right-token"}, {"Authorization": "Bearer right-token"}),
        ("basic", {"username": "reader", "password": "pa55word"},
         {"Authorization": "Basic " + base64.b64encode(b"reader:pa55word").decode()}),
        ("api_key", {"key": "k-123456"}, {"X-API-Key": "k-123456"}),
        ("api_key", {"key": "k-123456", "header": "X-Token", "prefix": "Token"},
         {"X-Token": "Token k-123456"}),
    ],
)  # fmt: skip
def test_static_kinds_send_the_right_credential(
    hostile: HostileServer, kind: str, settings: dict[str, Any], expected: dict[str, str]
) -> None:
    hostile.state.expected = expected
    assert get(hostile.url, kind, settings).body == {"ok": True}


def test_a_wrong_credential_is_a_401_failure_not_retried(hostile: HostileServer) -> None:
    hostile.state.expected = {"Authorization": "Bearer right-token"}
    with pytest.raises(RunError) as caught:
        get(hostile.url, "bearer", {"token": "wrong-token"})
    assert caught.value.kind == "http" and caught.value.status == 401
    assert "401 Unauthorized after 1 attempt" in caught.value.message
    assert len(hostile.state.paths("/protected")) == 1


def test_api_key_in_the_query(hostile: HostileServer) -> None:
    response = get(hostile.url, "api_key", {"key": "k-123456", "query": "apikey"}, "/echo?a=1")
    assert response.body["pairs"] == [["a", "1"], ["apikey", "k-123456"]]
    assert "X-API-Key" not in dict(response.body["headers"])
    assert response.url.endswith("/echo?a=1&apikey=***")


# --- oauth2 -----------------------------------------------------------------------------


def test_client_credentials_grant_on_first_use(hostile: HostileServer) -> None:
    async def go() -> list[int]:
        settings = oauth(hostile, **CLIENT, scopes=["read", "write"])
        async with api(hostile.url, "oauth2", settings) as source:
            request = HttpRequest("GET", "/oauth/data")
            return [(await source.send(request)).status for _ in range(3)]

    assert run(go()) == [200, 200, 200]
    [form] = hostile.state.token_requests
    assert form == {"grant_type": "client_credentials", "client_id": "client-7",
                    "client_secret": "cl1ent-s3cret", "scope": "read write"}  # fmt: skip
    assert hostile.state.paths("/oauth/token")[0].headers["Content-Type"] == (
        "application/x-www-form-urlencoded"
    )


def test_refresh_token_grant_and_rotation(hostile: HostileServer) -> None:
    hostile.state.oauth.rotate_refresh = True

    async def go() -> None:
        settings = oauth(hostile, refreshToken="refresh-0001")
        async with api(hostile.url, "oauth2", settings) as source:
            await source.send(HttpRequest("GET", "/oauth/data"))
            hostile.state.revoke_token()
            await source.send(HttpRequest("GET", "/oauth/data"))

    run(go())
    grants = [(f["grant_type"], f["refresh_token"]) for f in hostile.state.token_requests]
    assert grants == [("refresh_token", "refresh-0001"), ("refresh_token", "refresh-0002")]


def test_a_401_storm_causes_exactly_one_refresh(hostile: HostileServer) -> None:
    hostile.state.oauth.delay_ms = 100

    async def go() -> list[int]:
        async with api(hostile.url, "oauth2", oauth(hostile, **CLIENT)) as source:
            await source.send(HttpRequest("GET", "/oauth/data"))
            hostile.state.revoke_token()
            storm = [source.send(HttpRequest("GET", "/oauth/data?ms=50")) for _ in range(10)]
            return [response.attempts for response in await asyncio.gather(*storm)]

    assert run(go()) == [1] * 10  # the re-send after a refresh is not an attempt
    assert len(hostile.state.token_requests) == 2  # the first token, then one refresh
    rejected = [s for s in hostile.state.paths("/oauth/data") if s.headers["Authorization"]
                == "Bearer access-0001"]  # fmt: skip
    assert len(rejected) == 11


def test_expiring_token_is_renewed_before_use(hostile: HostileServer) -> None:
    """`expires_in: 1` → renewed after half its life (tokens under a minute), so the API
    never sees the expired token."""
    hostile.state.oauth.expires_in = 1.0

    async def go() -> None:
        async with api(hostile.url, "oauth2", oauth(hostile, **CLIENT)) as source:
            await source.send(HttpRequest("GET", "/oauth/data"))
            await asyncio.sleep(0.6)
            await source.send(HttpRequest("GET", "/oauth/data"))

    run(go())
    assert len(hostile.state.token_requests) == 2
    assert len(hostile.state.paths("/oauth/data")) == 2


def test_long_lived_tokens_are_renewed_30_seconds_early() -> None:
    now = [1000.0]
    answers = iter([b'{"access_token":"tok-1","expires_in":3600}', b'{"access_token":"tok-2"}'])

    async def transport(url: str, form: list[tuple[str, str]]) -> TokenReply:
        return TokenReply(200, "OK", "application/json", next(answers))

    async def go() -> list[str]:
        auth = OAuth2("Api", {"tokenUrl": "http://id/token", **CLIENT}, Secrets(), transport,
                      clock=lambda: now[0])  # fmt: skip
        tokens = [await auth.token()]
        now[0] += 3569
        tokens.append(await auth.token())
        now[0] += 1
        tokens.append(await auth.token())
        return tokens

    assert run(go()) == ["tok-1", "tok-1", "tok-2"]


def test_a_second_401_is_an_ordinary_failure(hostile: HostileServer) -> None:
    async def go() -> None:
        async with api(hostile.url, "oauth2", oauth(hostile, **CLIENT)) as source:
            await source.send(HttpRequest("GET", "/respond?status=401&body=no"))

    with pytest.raises(RunError) as caught:
        run(go())
    assert caught.value.kind == "http" and caught.value.status == 401
    assert "after 1 attempt" in caught.value.message
    assert len(hostile.state.paths("/respond")) == 2
    assert len(hostile.state.token_requests) == 2


def test_an_access_token_without_a_grant_is_not_refreshed(hostile: HostileServer) -> None:
    with pytest.raises(RunError) as caught:
        get(hostile.url, "oauth2", {"accessToken": "given-token"}, "/oauth/data")
    assert caught.value.status == 401
    assert hostile.state.token_requests == []
    assert hostile.state.paths("/oauth/data")[0].headers["Authorization"] == "Bearer given-token"


@pytest.mark.parametrize("fail_status", [400, 401, 503])
def test_a_failing_token_request_is_kind_auth(hostile: HostileServer, fail_status: int) -> None:
    hostile.state.oauth.fail_status = fail_status
    secrets = Secrets()

    async def go() -> None:
        async with api(hostile.url, "oauth2", oauth(hostile, **CLIENT), secrets) as source:
            source.token_retry = RetryPolicy(initial_delay_ms=10)
            await source.send(HttpRequest("GET", "/oauth/data", retry=RetryPolicy(max_attempts=1)))

    with pytest.raises(RunError) as caught:
        run(go())
    error = caught.value
    assert error.kind == "auth"
    assert error.message.startswith("token request for source Api failed: ")
    assert f"answered {fail_status}" in error.message
    assert CLIENT["clientSecret"] not in error.message
    assert not hostile.state.paths("/oauth/data")
    # the token request follows §6.3.5: a 503 is retried (3 attempts), a 400 is not
    assert len(hostile.state.token_requests) == (3 if fail_status == 503 else 1)


def test_an_unreachable_token_endpoint_is_kind_auth(hostile: HostileServer) -> None:
    settings = {"tokenUrl": "http://127.0.0.1:9/token", **CLIENT}

    async def go() -> None:
        async with api(hostile.url, "oauth2", settings) as source:
            source.token_retry = RetryPolicy(initial_delay_ms=10)
            await source.send(HttpRequest("GET", "/oauth/data"))

    with pytest.raises(RunError) as caught:
        run(go())
    assert caught.value.kind == "auth"
    assert "connection refused" in caught.value.message


def test_cancelling_the_only_waiter_aborts_the_token_request(hostile: HostileServer) -> None:
    hostile.state.oauth.delay_ms = 10_000

    async def go() -> None:
        async with api(hostile.url, "oauth2", oauth(hostile, **CLIENT)) as source:
            task = asyncio.create_task(source.send(HttpRequest("GET", "/oauth/data")))
            deadline = time.monotonic() + 5
            while hostile.state.in_flight == 0:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            while hostile.state.aborted == 0:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)

    run(go())
    assert hostile.state.aborted == 1 and hostile.state.in_flight == 0


def test_tokens_obtained_at_run_time_become_secrets(hostile: HostileServer) -> None:
    secrets = Secrets()

    async def go() -> None:
        async with api(hostile.url, "oauth2", oauth(hostile, **CLIENT), secrets) as source:
            await source.send(HttpRequest("GET", "/oauth/data"))

    run(go())
    assert "access-0001" in secrets
    assert secrets.redact("sent access-0001 and cl1ent-s3cret") == "sent *** and ***"
    assert "client-7" not in secrets  # a client id is not a secret


def test_without_a_credentials_object_the_environment_is_still_read(
    hostile: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQON_API_TOKEN", "from-env-token")
    response = get(hostile.url, "bearer", {}, "/echo")
    assert ["Authorization", "Bearer from-env-token"] in response.body["headers"]


def test_a_missing_credential_fails_before_any_request(
    hostile: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQON_API_TOKEN", raising=False)
    with pytest.raises(ConfigError) as caught:
        get(hostile.url, "bearer", {"token": None})
    assert "source Api (auth bearer) is missing the credential token" in str(caught.value)
    assert not hostile.state.seen
