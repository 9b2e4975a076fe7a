"""The webhook server (LANGUAGE.md §8.1): where `wait` steps receive their callbacks.

One aiohttp web server per run (or per daemon) holds a table of registered paths. A path
is registered by its owner (an action invocation) when `webhookUrl(path)` is evaluated or
a `wait` step starts; events for it are buffered from that moment, so a callback that
arrives before the `wait` step starts is kept. Answers never depend on what the mission
later makes of an event: a registered path answers `202` and the `eventFilter` decides
afterwards.

Everything runs on the run's event loop: a request appends to a buffer and wakes the
waiter, with no lock and no thread, so a flood of callbacks cannot disturb a mission
beyond the CPU it takes to answer them.
"""
from __future__ import annotations

import asyncio
import collections
import json
import socket
import urllib.parse
from collections.abc import Callable
from typing import Any

from aiohttp import web

from reqon.errors import ConfigError, RunError
from reqon.http.codec import FORM_TYPE, JSON_TYPE, media_type

MAX_BODY_BYTES = 1024 * 1024
_ACCEPTED = json.dumps({"received": True}).encode()  # the hot path's answer, encoded once
MAX_BUFFERED = 1000
EventLog = Callable[[str, int, str], None]  # (path, status, note)


class Registration:
    """One registered path: its owner and the events not yet taken, in arrival order."""

    def __init__(self, path: str, owner: object, limit: int) -> None:
        self.path = path
        self.owner = owner
        self.limit = limit
        self.events: collections.deque[Any] = collections.deque()
        self.arrived = asyncio.Event()
        self.received = 0

    def offer(self, body: Any) -> bool:
        if len(self.events) >= self.limit:
            return False
        self.events.append(body)
        self.received += 1
        self.arrived.set()
        return True

    async def next_event(self) -> Any:
        """The oldest buffered event, waiting for one if none is there."""
        while not self.events:
            self.arrived.clear()
            await self.arrived.wait()
        return self.events.popleft()


class WebhookServer:
    """Registrations plus the HTTP front; `start` binds, `close` stops and drops everything."""

    def __init__(self, host: str = "127.0.0.1", port: int = 3000, public_url: str | None = None,
                 on_event: EventLog | None = None, buffer_limit: int = MAX_BUFFERED) -> None:
        self.host = host
        self.port = port
        self._public_url = public_url.rstrip("/") if public_url else None
        self.on_event = on_event or (lambda path, status, note: None)
        self.buffer_limit = buffer_limit
        self.paths: dict[str, Registration] = {}
        self.accepted = 0
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Listen; a port in use or a bad host is a configuration error (exit 3)."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            sock = socket.create_server((self.host, self.port), reuse_port=False)
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(f"webhook server cannot listen on {self.host}:{self.port}: "
                              f"{exc.strerror or exc}") from None
        self.port = sock.getsockname()[1]
        site = web.SockSite(runner, sock)
        await site.start()
        self._runner = runner

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.paths.clear()

    @property
    def listening_on(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, path: str) -> str:
        """The public URL of `path` (`webhookUrl`)."""
        return (self._public_url or self.listening_on) + path

    # ------------------------------------------------------------ registrations
    def register(self, path: str, owner: object) -> Registration:
        """Register `path` for `owner`; the owner's earlier registration is reused."""
        if not isinstance(path, str) or not path.startswith("/"):
            raise RunError.runtime(f"a webhook path must be a string starting with '/', got {path!r}")
        held = self.paths.get(path)
        if held is not None:
            if held.owner is owner:
                return held
            raise RunError.runtime(f"webhook path {path} is already awaited")
        registration = Registration(path, owner, self.buffer_limit)
        self.paths[path] = registration
        return registration

    def release(self, path: str, owner: object) -> None:
        held = self.paths.get(path)
        if held is not None and held.owner is owner:
            del self.paths[path]

    def release_all(self, owner: object) -> None:
        for path in [p for p, r in self.paths.items() if r.owner is owner]:
            del self.paths[path]

    # ------------------------------------------------------------ requests
    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path
        if path == "/health" and request.method == "GET" and path not in self.paths:
            return _json(200, {"status": "ok"})
        registration = self.paths.get(path)
        if registration is None:
            return self._answer(path, 404, {"error": f"no wait is registered for {path}"})
        if request.method not in ("POST", "PUT"):
            return self._answer(path, 405, {"error": "use POST or PUT"}, {"Allow": "POST, PUT"})
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return self._answer(path, 413, {"error": "body larger than 1 MiB"})
        try:
            data = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._answer(path, 413, {"error": "body larger than 1 MiB"})
        try:
            body = decode_event(request.headers.get("Content-Type"), data)
        except ValueError as exc:
            return self._answer(path, 400, {"error": str(exc)})
        # Looked up again: the registration may have ended while the body was read.
        if self.paths.get(path) is not registration:
            return self._answer(path, 404, {"error": f"no wait is registered for {path}"})
        if not registration.offer(body):
            return self._answer(path, 429, {"error": f"more than {self.buffer_limit} events are waiting"})
        self.accepted += 1
        self.on_event(path, 202, "")
        return web.Response(status=202, body=_ACCEPTED, content_type=JSON_TYPE)

    def _answer(self, path: str, status: int, body: dict[str, Any],
                headers: dict[str, str] | None = None) -> web.Response:
        self.on_event(path, status, "" if status == 202 else str(body.get("error", "")))
        return _json(status, body, headers)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type=JSON_TYPE, headers=headers)


def decode_event(content_type: str | None, data: bytes) -> Any:
    """An event body as §8.1 decodes it; ValueError for malformed JSON."""
    if not data:
        return None
    kind = media_type(content_type)
    if not kind or kind == JSON_TYPE or kind.endswith("+json"):
        try:
            return json.loads(data, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"malformed JSON: {exc}") from None
    text = data.decode("utf-8", errors="replace")
    if kind == FORM_TYPE:
        form: dict[str, Any] = {}
        for name, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
            if name not in form:
                form[name] = value
            elif isinstance(form[name], list):
                form[name].append(value)
            else:
                form[name] = [form[name], value]
        return form
    return text


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
