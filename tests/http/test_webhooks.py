"""The webhook server (LANGUAGE.md §8.1) on a real socket: every status, body decoding, buffering."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from reqon.errors import ConfigError, RunError
from reqon.http.webhooks import MAX_BODY_BYTES, WebhookServer, decode_event

Scenario = Callable[[WebhookServer, aiohttp.ClientSession], Awaitable[None]]


def serve(scenario: Scenario, **kwargs: Any) -> list[tuple[str, int, str]]:
    """Run `scenario` against a server on an ephemeral port; returns the server's event log."""
    log: list[tuple[str, int, str]] = []

    async def main() -> None:
        server = WebhookServer("127.0.0.1", 0, on_event=lambda p, s, n: log.append((p, s, n)), **kwargs)
        await server.start()
        try:
            async with aiohttp.ClientSession() as session:
                await scenario(server, session)
        finally:
            await server.close()
    asyncio.run(main())
    return log


async def post(session: aiohttp.ClientSession, url: str, data: bytes | str = b"{}", method: str = "POST",
               content_type: str | None = "application/json") -> tuple[int, Any]:
    headers = {"Content-Type": content_type} if content_type else {}
    async with session.request(method, url, data=data, headers=headers) as response:
        return response.status, json.loads(await response.read())


def test_every_status_of_8_1() -> None:
    owner = object()

    async def scenario(server: WebhookServer, session: aiohttp.ClientSession) -> None:
        base = server.listening_on
        async with session.get(base + "/health") as health:
            assert (health.status, await health.json()) == (200, {"status": "ok"})
        assert (await post(session, base + "/hooks/a"))[0] == 404  # not registered yet
        server.register("/hooks/a", owner)
        assert await post(session, base + "/hooks/a", b'{"n": 1}') == (202, {"received": True})
        assert (await post(session, base + "/hooks/a?x=1", b'{"n": 2}', method="PUT"))[0] == 202  # query ignored
        assert (await post(session, base + "/hooks/a", method="DELETE"))[0] == 405
        assert (await post(session, base + "/hooks/a/", b"{}"))[0] == 404  # compared exactly
        assert (await post(session, base + "/hooks/a", b"{not json"))[0] == 400
        assert (await post(session, base + "/hooks/a", b"x" * (MAX_BODY_BYTES + 1)))[0] == 413
        registration = server.paths["/hooks/a"]
        assert [await registration.next_event(), await registration.next_event()] == [{"n": 1}, {"n": 2}]
        for n in range(3):
            assert (await post(session, base + "/hooks/a", str(n)))[0] == 202
        assert (await post(session, base + "/hooks/a", b"3"))[0] == 429  # buffer full (limit 3 here)
        assert await registration.next_event() == 0
        assert (await post(session, base + "/hooks/a", b"4"))[0] == 202  # room again
        server.release("/hooks/a", owner)
        assert (await post(session, base + "/hooks/a"))[0] == 404
    log = serve(scenario, buffer_limit=3)
    assert [status for _, status, _ in log] == [404, 202, 202, 405, 404, 400, 413, 202, 202, 202, 429, 202, 404]


def test_bodies_are_decoded_by_content_type() -> None:
    assert decode_event("application/json", b'{"a": [1, 2.5]}') == {"a": [1, 2.5]}
    assert decode_event("application/vnd.api+json", b"[true]") == [True]
    assert decode_event(None, b'"plain"') == "plain"
    assert decode_event("application/json", b"") is None
    assert decode_event("application/x-www-form-urlencoded", b"a=1&b=x+y&a=2&c=") == {"a": ["1", "2"],
                                                                                     "b": "x y", "c": ""}
    assert decode_event("text/plain; charset=utf-8", "héllo".encode()) == "héllo"
    for bad in (b"{", b"NaN", b"[1,]"):
        with pytest.raises(ValueError):
            decode_event("application/json", bad)


def test_a_path_has_one_owner_at_a_time() -> None:
    first, second = object(), object()

    async def scenario(server: WebhookServer, session: aiohttp.ClientSession) -> None:
        held = server.register("/p", first)
        assert server.register("/p", first) is held  # webhookUrl then wait: the same registration
        with pytest.raises(RunError, match="webhook path /p is already awaited"):
            server.register("/p", second)
        with pytest.raises(RunError, match="starting with '/'"):
            server.register("p", second)
        server.register("/q", first)
        server.release_all(first)
        assert server.paths == {}
        assert server.url("/x/y") == server.listening_on + "/x/y"
    serve(scenario)


def test_public_url_and_port_in_use() -> None:
    async def main() -> None:
        server = WebhookServer("127.0.0.1", 0, public_url="https://hooks.example.org/base/")
        await server.start()
        try:
            assert server.url("/cb/1") == "https://hooks.example.org/base/cb/1"
            taken = WebhookServer("127.0.0.1", server.port)
            with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{server.port}"):
                await taken.start()
        finally:
            await server.close()
    asyncio.run(main())


def test_events_arriving_before_the_waiter_are_kept_in_order() -> None:
    async def scenario(server: WebhookServer, session: aiohttp.ClientSession) -> None:
        registration = server.register("/early", object())
        statuses = await asyncio.gather(*(post(session, server.listening_on + "/early", str(n)) for n in range(1)))
        for n in range(1, 20):
            statuses.append(await post(session, server.listening_on + "/early", str(n)))
        assert all(status == 202 for status, _ in statuses)
        assert [await registration.next_event() for _ in range(20)] == list(range(20))
        waiter = asyncio.ensure_future(registration.next_event())
        await asyncio.sleep(0)
        assert not waiter.done()
        await post(session, server.listening_on + "/early", b'"late"')
        assert await asyncio.wait_for(waiter, 30) == "late"
    serve(scenario)
