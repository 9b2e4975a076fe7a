"""Malicious servers through `reqon run` (issue 7, point 4).

Each misbehaviour of tests/hostile_server.py must give one clear error that names the
request, the action and the file:line:col of the step, end the run the way its stage mode
says (wait-all fails the mission, best-effort records the failure in `errors` and goes on),
and never produce a traceback or an internal error. The HTTP layer's own tests cover the
mechanics; these check what a user of `reqon run` sees.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import RunResult, run_mission_text


@dataclass(frozen=True)
class Case:
    step: str
    kind: str
    message: str  # a regular expression for the message after the request line


def respond(body: str, content_type: str = "application/json") -> str:
    return f"/respond?body={quote(body, safe='')}&type={quote(content_type, safe='')}"


FAST = "retry: { maxAttempts: 2, initialDelay: 10ms }"
CASES = {
    "invalid JSON": Case(f'get "{respond("{not json")}" {{ {FAST} }}', "decode",
                         r"malformed JSON at line 1 column 2 \(char 1\): .*; body: \{not json"),
    "NaN in JSON": Case(f'get "{respond("[NaN]")}"', "decode", r"malformed JSON: NaN is not JSON"),
    "wrong content type": Case(f'get "{respond("GIF89a", "image/gif")}"', "decode",
                               r"unsupported content type image/gif"),
    "huge body": Case('get "/huge" { params: { bytes: 64000000 } }', "decode",
                      r"the response body is larger than 100000 bytes \(maxResponseBytes\)"),
    "huge declared body": Case('get "/huge" { params: { bytes: 4000000, length: "declared" } }', "decode",
                               r"the response body is larger than 100000 bytes \(maxResponseBytes\)"),
    "reset connection": Case(f'get "/reset" {{ {FAST} }}', "network",
                             r"failed after 2 attempts: the server closed the connection"),
    "never answers": Case(f'get "/slow" {{ params: {{ ms: 30000 }}, timeout: 200ms, {FAST} }}', "timeout",
                          r"timed out after 2 attempts \(timeout 0\.2s\)"),
    "redirect loop": Case('get "/redirect/loop"', "http", r"too many redirects \(more than 10\)"),
}

MISSION = """
mission Hostile {
  source Bad { auth: none, base: env("DEMO_URL"), maxResponseBytes: 100000, timeout: 5s }
  store out: file("out")
  store report: file("report")

  action Victim {
    %s
    store { id: "victim" } -> out
  }
  action Healthy {
    get "/echo"
    store { id: "healthy" } -> out
  }
  action Report {
    store { id: "errors", entries: errors } -> report
  }
  run [Victim, Healthy] { mode: "%s" } then Report
}
"""
VICTIM_LINE = 8  # the line of the step in MISSION


def run_case(case: Case, mode: str, tmp_path: Path, url: str) -> RunResult:
    result = run_mission_text(MISSION % (case.step, mode), tmp_path, url=url)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    return result


def request_error(case: Case, url: str) -> str:
    """kind: METHOD URL: message — the request first, then what went wrong."""
    return rf"{case.kind}: GET {re.escape(url)}/\S+:? {case.message}"


@pytest.mark.parametrize("name", CASES)
def test_wait_all_fails_the_mission_with_an_error_naming_request_action_and_position(
        name: str, tmp_path: Path, hostile: Any) -> None:
    case = CASES[name]
    result = run_case(case, "wait-all", tmp_path, hostile.url)
    assert result.code == 1
    position = rf"{re.escape(str(tmp_path / 'mission.vague'))}:{VICTIM_LINE}:5"
    assert re.search(rf"^  Victim: {position}: {request_error(case, hostile.url)}", result.stderr, re.M), \
        result.stderr
    assert "error: stage 1 [Victim, Healthy] failed (mode wait-all)" in result.stderr
    assert re.search(r"^  Healthy: completed$", result.stderr, re.M)
    assert result.stores["out"] == [{"id": "healthy"}] and result.stores["report"] == []


@pytest.mark.parametrize("name", CASES)
def test_best_effort_records_the_failure_in_errors_and_goes_on(name: str, tmp_path: Path, hostile: Any) -> None:
    case = CASES[name]
    result = run_case(case, "best-effort", tmp_path, hostile.url)
    assert result.code == 0, result.stderr
    [entry] = result.stores["report"][0]["entries"]
    assert entry["stage"] == 1 and entry["action"] == "Victim" and entry["kind"] == case.kind
    assert entry["at"] == f"{tmp_path / 'mission.vague'}:{VICTIM_LINE}:5"
    assert re.fullmatch(rf"GET {re.escape(hostile.url)}/\S+:? {case.message}.*", entry["message"], re.S)
    assert f"tolerated failure: stage 1 Victim: {case.kind}:" in result.stderr


def test_a_huge_body_is_abandoned_early(tmp_path: Path, hostile: Any) -> None:
    run_case(CASES["huge body"], "wait-all", tmp_path, hostile.url)
    # socket buffers on loopback hold a few MB; the client must stop reading long before 64 MB
    assert hostile.state.huge_sent < 32_000_000


def test_a_server_that_never_answers_costs_the_timeout_not_more(tmp_path: Path, hostile: Any) -> None:
    result = run_case(CASES["never answers"], "wait-all", tmp_path, hostile.url)
    assert result.elapsed_s < 8  # two attempts of the source's 5 s would take 10 s
    assert len(hostile.state.paths("/slow")) == 2


def test_a_hostile_item_in_a_parallel_loop_fails_the_loop_with_its_position(tmp_path: Path, hostile: Any) -> None:
    text = """
mission Loop {
  source Bad { auth: none, base: env("DEMO_URL"), timeout: 5s }
  store out: file("out")
  action Walk {
    for path in ["/echo", "/echo", "%s", "/echo"] parallel {
      get path
      store { id: path } -> out
    }
  }
  run Walk
}
""" % respond("{oops")
    result = run_mission_text(text, tmp_path, url=hostile.url)
    assert result.code == 1
    assert re.search(rf"Walk: \S+mission\.vague:7:7: decode: GET {re.escape(hostile.url)}/respond\S+: "
                     r"malformed JSON", result.stderr), result.stderr
    assert "Traceback" not in result.stderr


def test_deeply_nested_json_is_a_decode_error() -> None:
    """Nesting deeper than Python can read is malformed for us, not an internal error. (A URL
    cannot carry such a body to the hostile server: the request line is limited to 8 KB.)"""
    from reqon.errors import RunError
    from reqon.http.codec import decode_body

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))  # as the CLI runs
    with pytest.raises(RunError) as caught:
        decode_body(200, "application/json", b"[" * 100_000 + b"]" * 100_000)
    assert caught.value.kind == "decode" and caught.value.message.startswith("malformed JSON")


def test_a_lone_surrogate_in_a_response_survives_the_stores_and_output(tmp_path: Path, hostile: Any) -> None:
    text = """
mission Odd {
  source Bad { auth: none, base: env("DEMO_URL") }
  store out: file("out")
  action Take {
    get "%s"
    store response -> out
  }
  run Take
}
""" % respond('{"id": "odd", "text": "\\ud800"}')
    result = run_mission_text(text, tmp_path, url=hostile.url)
    assert result.code == 0, result.stderr
    assert result.stores["out"] == [{"id": "odd", "text": "\ud800"}]
