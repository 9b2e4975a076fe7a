"""The documented error-handling idiom end to end (LANGUAGE.md §4.9.1, §4.10.4, §4.10.6).

A real HTTP server on 127.0.0.1 answers 401 until the mission has refreshed its
session, and 429 once on a rate-limited path. The mission handles both with object
patterns: `{ error: e, code: 401 } -> jump RefreshAuth then retry` and
`{ error: e, code: 429 } -> retry { delay: … }`. The stores and the server's own
request log are asserted; the delay is checked as a lower bound only.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_mission_text

pytestmark = pytest.mark.timeout(60)

RETRY_DELAY_MS = 300


@dataclass
class Seen:
    method: str
    path: str
    session: str | None
    at: float


@dataclass
class ApiState:
    token: str | None = None
    limited_calls: int = 0
    log: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(state: ApiState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            session = self.headers.get("X-Session")
            with state.lock:
                state.log.append(Seen(self.command, self.path, session, time.monotonic()))
                if self.path == "/refresh":
                    state.token = f"token-{len(state.log)}"
                    self._send(200, {"token": state.token})
                elif self.path == "/invoices":
                    if state.token is None or session != state.token:
                        self._send(401, {"error": "session expired", "code": 401})
                    else:
                        self._send(200, {"success": True, "data": [{"id": "i1", "total": 10},
                                                                   {"id": "i2", "total": 20}]})
                elif self.path == "/payments":
                    state.limited_calls += 1
                    if state.limited_calls == 1:
                        self._send(429, {"error": "slow down", "code": 429})
                    else:
                        self._send(200, {"success": True, "data": [{"id": "p1", "amount": 5}]})
                else:
                    self._send(404, {"error": "not found", "code": 404})

        do_GET = do_POST = _answer

    return Handler


@pytest.fixture
def api() -> Iterator[tuple[str, ApiState]]:
    state = ApiState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


MISSION = f"""
mission Billing {{
  source Ledger {{ auth: none, base: env("DEMO_URL") }}
  store session: memory("session")
  store invoices: memory("invoices")
  store payments: memory("payments")
  store failures: memory("failures")

  action RefreshAuth {{
    post Ledger "/refresh"
    store {{ id: "current", token: response.token }} -> session
  }}

  action Invoices {{
    get Ledger "/invoices" {{ headers: {{ "X-Session": session["current"].token ?? "none" }}, allow: [401, 429] }}
    match response {{
      {{ data: items, success: true }} -> store items -> invoices,
      {{ error: e, code: 401 }} -> jump RefreshAuth then retry,
      {{ error: e, code: 429 }} -> retry {{ delay: {RETRY_DELAY_MS}ms }},
      {{ error: e }} -> abort (concat("API error: ", e)),
      _ -> abort "Unexpected response"
    }}
  }}

  action Payments {{
    get Ledger "/payments" {{ headers: {{ "X-Session": session["current"].token }}, allow: [401, 429] }}
    match response {{
      {{ data: [first, ...rest], success: true }} -> store [first, ...rest] -> payments,
      {{ error: e, code: 401 }} -> jump RefreshAuth then retry,
      {{ error: e, code: 429 }} -> retry {{ delay: {RETRY_DELAY_MS}ms }},
      {{ error: e }} -> {{
        store {{ id: "last", error: e }} -> failures
        abort "API error: " + e
      }},
      _ -> abort "Unexpected response"
    }}
  }}

  run Invoices then Payments
}}
"""


def test_401_refreshes_the_session_and_retries_and_429_waits_then_retries(tmp_path: Path,
                                                                          api: tuple[str, ApiState]) -> None:
    url, state = api
    result = run_mission_text(MISSION, tmp_path, url=url)
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr

    assert result.stores["invoices"] == [{"id": "i1", "total": 10}, {"id": "i2", "total": 20}]
    assert result.stores["payments"] == [{"id": "p1", "amount": 5}]
    assert result.stores["failures"] == []
    token = result.stores["session"][0]["token"]

    seen = [(s.method, s.path, s.session) for s in state.log]
    assert seen == [
        ("GET", "/invoices", "none"),        # no session yet: 401
        ("POST", "/refresh", None),          # the 401 arm jumps to RefreshAuth …
        ("GET", "/invoices", token),         # … then retries with the new session: 200
        ("GET", "/payments", token),         # 429 once
        ("GET", "/payments", token),         # the 429 arm retried after its delay
    ]
    first, second = (s.at for s in state.log if s.path == "/payments")
    assert second - first >= RETRY_DELAY_MS / 1000 * 0.9


def test_an_unexpected_error_body_aborts_with_the_bound_message(tmp_path: Path,
                                                                 api: tuple[str, ApiState]) -> None:
    url, state = api
    text = MISSION.replace('get Ledger "/payments"', 'get Ledger "/nowhere"').replace(
        'headers: { "X-Session": session["current"].token }, allow: [401, 429]',
        'headers: { "X-Session": session["current"].token }, allow: [401, 404, 429]')
    assert "allow: [401, 404, 429]" in text
    result = run_mission_text(text, tmp_path, url=url)
    assert result.code == 1, result.stderr
    assert "abort: API error: not found" in result.stderr
    assert result.stores["failures"] == [{"id": "last", "error": "not found"}]
    assert [s.path for s in state.log].count("/nowhere") == 1
