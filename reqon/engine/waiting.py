"""`wait` (LANGUAGE.md §4.11) and `webhookUrl()` (§5.11) on top of the webhook server.

A path belongs to the action invocation that registered it (§8.1). Expressions are
evaluated synchronously and know nothing of invocations, so the invocation running in
the current task is kept in a context variable: the evaluator sets it for the length of
each invocation, and asyncio copies it into the tasks of parallel loops.
"""
from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from reqon import ast
from reqon import values as V
from reqon.engine.expressions import Expressions, Scope
from reqon.errors import RunError

if TYPE_CHECKING:  # aiohttp's web server loads only when a run starts one
    from reqon.http.webhooks import WebhookServer

DEFAULT_TIMEOUT_MS = 5 * 60 * 1000
CURRENT_OWNER: contextvars.ContextVar[object | None] = contextvars.ContextVar("reqon_invocation", default=None)

Write = Callable[[str, list[tuple[str, dict[str, Any]]]], Awaitable[None]]
Warn = Callable[[str], None]


class Webhooks:
    """What the evaluator needs of the webhook server; without a server both uses fail."""

    def __init__(self, server: WebhookServer | None) -> None:
        self.server = server

    def url(self, path: Any) -> str:
        """`webhookUrl(path)`: registers `path` for the current invocation, returns its URL."""
        server = self._server("webhookUrl")
        server.register(path, CURRENT_OWNER.get())
        return server.url(path)

    def release_all(self, owner: object) -> None:
        if self.server is not None:
            self.server.release_all(owner)

    def _server(self, what: str) -> WebhookServer:
        if self.server is None:
            raise RunError.runtime(f"{what}: the webhook server is not enabled (start reqon run with --webhook)")
        return self.server

    async def wait(self, step: ast.Wait, scope: Scope, x: Expressions, write: Write, warn: Warn) -> Any:
        """Collect the expected events; returns what `response` becomes."""
        server = self._server("wait")
        options = {e.key: e.value for e in step.options.entries}
        path = x.eval(options["path"], scope)
        timeout_ms = _number(x, options.get("timeout"), scope, DEFAULT_TIMEOUT_MS)
        expected = int(_number(x, options.get("expectedEvents"), scope, 1))
        retry = x.eval_options(options["retry"], scope) if "retry" in options else {}
        attempts = max(1, int(retry.get("maxAttempts", 1))) if isinstance(retry, dict) else 1
        target, storage_key = _storage(options.get("storage"))
        owner = CURRENT_OWNER.get()
        registration = server.register(path, owner)
        collected: list[Any] = []
        try:
            for _ in range(attempts):
                deadline = time.monotonic() + timeout_ms / 1000
                while len(collected) < expected:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        body = await asyncio.wait_for(registration.next_event(), remaining)
                    except asyncio.TimeoutError:
                        break
                    if not _accepts(x, options.get("eventFilter"), body, scope, warn, path):
                        continue
                    collected.append(body)
                    if target is not None:
                        await write(target, [_record(x, body, storage_key, scope)])
                if len(collected) >= expected:
                    break
        finally:
            server.release(path, owner)
        if len(collected) < expected:
            raise RunError(kind="timeout", message=f"received {len(collected)} of {expected} webhook "
                                                   f"events on {path} within "
                                                   f"{_duration_text(timeout_ms)}"
                                                   + (f" ({attempts} attempts)" if attempts > 1 else ""))
        return collected[0] if expected == 1 else collected


def _accepts(x: Expressions, expr: Any, body: Any, scope: Scope, warn: Warn, path: str) -> bool:
    if expr is None:
        return True
    try:
        return V.truthy(x.eval(expr, scope, body))
    except RunError as exc:
        warn(f"wait {path}: eventFilter failed on an event, not accepted: {exc.message}")
        return False


def _record(x: Expressions, body: Any, key_expr: Any, scope: Scope) -> tuple[str, dict[str, Any]]:
    record = body if isinstance(body, dict) else {"value": body}
    key = x.eval(key_expr, scope, body) if key_expr is not None else None
    if key is None:
        return str(uuid.uuid4()), record
    return (key if isinstance(key, str) else V.to_string(key)), record


def _storage(storage: Any) -> tuple[str | None, Any]:
    """`storage: { target: store, key: expr }` read from the tree: the target names a store
    (it is not evaluated) and the key is evaluated per event, with the body as subject."""
    target, key = None, None
    if isinstance(storage, ast.ObjectLit):
        for entry in storage.entries:
            if isinstance(entry, ast.Entry) and entry.key == "target" and isinstance(entry.value, ast.Var):
                target = entry.value.name
            elif isinstance(entry, ast.Entry) and entry.key == "key":
                key = entry.value
    return target, key


def _number(x: Expressions, expr: Any, scope: Scope, default: float) -> float:
    if expr is None:
        return default
    value = V.to_number(x.eval(expr, scope))
    return float(value) if value is not None else default


def _duration_text(ms: float) -> str:
    for size, unit in ((3_600_000, "h"), (60_000, "m"), (1000, "s")):
        if ms >= size and ms % size == 0:
            return f"{int(ms // size)}{unit}"
    return f"{ms:g}ms"
