"""The parallel engine of LANGUAGE.md §7, checked from the HTTP server's side.

Every mission here runs through `reqon run` (in-process) against a real demo
server on 127.0.0.1 that counts what it saw: the peak number of requests in
flight, arrival order, requests whose client hung up (`aborted`). Latencies are
small but long enough that branches overlap; assertions are on counts, never on
sleeps alone.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from reqon.demo.server import ThreadedServer
from tests.conftest import MakeServer, RunResult, run_mission_text

pytestmark = pytest.mark.timeout(60)

SOURCE = 'source Api { auth: none, base: env("DEMO_URL") }'
ERROR_FIELDS = {"stage", "action", "kind", "message", "status", "at"}


def mission(body: str, *, settings: str = "", name: str = "Par") -> str:
    return f"mission {name} {{\n  {settings}\n  {SOURCE}\n{body}\n}}\n"


def slow_branch(name: str, ms: int, store: str = "done") -> str:
    """An action that waits `ms` at the server, then records that it finished."""
    return (f'  action {name} {{\n    get "/slow" {{ params: {{ ms: {ms}, b: "{name}" }} }}\n'
            f'    store {{ id: "{name}", slept: response.slept }} -> {store}\n  }}\n')


def failing_branch(name: str, status: int = 500, ms: int = 0) -> str:
    return (f'  action {name} {{\n    get "/fail" {{ params: {{ status: {status}, ms: {ms}, b: "{name}" }}, '
            f'retry: {{ maxAttempts: 1 }} }}\n  }}\n')


def position(text: str, needle: str) -> str:
    """`line:col` (1-based) of the first occurrence of `needle` in `text`."""
    offset = text.index(needle)
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"{line}:{col}"


def branch_param(target: str) -> str | None:
    values = parse_qs(urlsplit(target).query).get("b")
    return values[0] if values else None


def wait_until_idle(server: ThreadedServer, seconds: float = 3.0) -> int:
    """The server's in-flight count once it reaches 0 (or whatever it is after `seconds`)."""
    deadline = time.monotonic() + seconds
    while server.stats.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.stats.in_flight


_EXECUTOR_ARGS: list[str] = []


@pytest.fixture(autouse=True, params=["local", pytest.param("ray", marks=pytest.mark.ray)])
def executor(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test here runs with the local executor and with the Ray executor (issue 15)."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
        _EXECUTOR_ARGS[:] = ["--executor", "ray"]
    yield request.param
    _EXECUTOR_ARGS.clear()


def run(text: str, tmp_path: Path, server: ThreadedServer, *args: str) -> RunResult:
    server.stats.reset()
    result = run_mission_text(text, tmp_path, *args, *_EXECUTOR_ARGS, url=server.url)
    assert "Traceback" not in result.stderr, result.stderr
    return result


# --------------------------------------------------------------------------- limits


def test_max_concurrency_3_over_8_branches_peaks_at_exactly_3(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    names = [f"B{i}" for i in range(1, 9)]
    body = '  store done: memory("done")\n' + "".join(slow_branch(n, 150) for n in names)
    body += f"  run [{', '.join(names)}]\n"
    result = run(mission(body, settings="maxConcurrency: 3"), tmp_path, server)
    assert result.code == 0, result.stderr
    assert server.stats.peak_in_flight == 3
    assert server.stats.count("/slow") == 8
    assert len(result.stores["done"]) == 8


def test_loop_concurrency_5_over_20_items_peaks_at_exactly_5(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    body = """
  store done: memory("done")
  action Loop {
    concurrency: 5
    for n in [%s] parallel {
      get "/slow" { params: { ms: 60, n: n } }
      store { id: n } -> done
    }
  }
  run Loop
""" % ", ".join(str(i) for i in range(20))
    result = run(mission(body), tmp_path, server)
    assert result.code == 0, result.stderr
    assert server.stats.peak_in_flight == 5
    assert sorted(r["id"] for r in result.stores["done"]) == list(range(20))


def test_loop_concurrency_defaults_to_10(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    body = """
  store done: memory("done")
  action Loop {
    for n in [%s] parallel {
      get "/slow" { params: { ms: 60, n: n } }
      store { id: n } -> done
    }
  }
  run Loop
""" % ", ".join(str(i) for i in range(25))
    result = run(mission(body), tmp_path, server)
    assert result.code == 0, result.stderr
    assert server.stats.peak_in_flight == 10
    assert len(result.stores["done"]) == 25


def test_queued_branches_start_in_source_order(tmp_path: Path, make_server: MakeServer) -> None:
    """Limit 2 over five branches with staggered latencies: B3, B4, B5 start one after another."""
    server = make_server()
    latencies = {"B1": 50, "B2": 100, "B3": 100, "B4": 100, "B5": 100}
    body = '  store done: memory("done")\n' + "".join(slow_branch(n, ms) for n, ms in latencies.items())
    body += "  run [B1, B2, B3, B4, B5]\n"
    result = run(mission(body, settings="maxConcurrency: 2"), tmp_path, server)
    assert result.code == 0, result.stderr
    order = [branch_param(a.target) for a in server.stats.arrivals]
    assert set(order[:2]) == {"B1", "B2"}
    assert order[2:] == ["B3", "B4", "B5"]


def test_max_concurrency_1_runs_branches_one_after_another_in_order(tmp_path: Path,
                                                                      make_server: MakeServer) -> None:
    server = make_server()
    names = ["B1", "B2", "B3", "B4"]
    body = '  store done: memory("done")\n' + "".join(slow_branch(n, 20) for n in names)
    body += f"  run [{', '.join(names)}]\n"
    result = run(mission(body, settings="maxConcurrency: 1"), tmp_path, server)
    assert result.code == 0, result.stderr
    assert [branch_param(a.target) for a in server.stats.arrivals] == names
    assert server.stats.peak_in_flight == 1


def test_max_in_flight_caps_the_server_peak_across_branches_and_loops(tmp_path: Path,
                                                                       make_server: MakeServer) -> None:
    server = make_server()
    loop = """
  action %s {
    for n in [1, 2, 3, 4, 5, 6, 7, 8] parallel {
      get "/slow" { params: { ms: 40, n: n } }
      store { id: "%s-" + n } -> done
    }
  }
"""
    body = '  store done: memory("done")\n' + "".join(loop % (n, n) for n in ("L1", "L2", "L3"))
    body += "  run [L1, L2, L3]\n"
    text = mission(body).replace("base: env(\"DEMO_URL\")", "base: env(\"DEMO_URL\"), maxInFlight: 4")
    result = run(text, tmp_path, server)
    assert result.code == 0, result.stderr
    assert server.stats.peak_in_flight == 4
    assert len(result.stores["done"]) == 24


def test_cli_max_concurrency_overrides_stage_and_mission_settings(tmp_path: Path,
                                                                   make_server: MakeServer) -> None:
    server = make_server()
    names = [f"B{i}" for i in range(1, 7)]
    body = '  store done: memory("done")\n' + "".join(slow_branch(n, 80) for n in names)
    body += f"  run [{', '.join(names)}] {{ maxConcurrency: 5 }}\n"
    result = run(mission(body, settings="maxConcurrency: 4"), tmp_path, server, "--max-concurrency", "2")
    assert result.code == 0, result.stderr
    assert server.stats.peak_in_flight == 2
    assert len(result.stores["done"]) == 6


def test_stage_max_concurrency_overrides_the_mission_setting(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    names = [f"B{i}" for i in range(1, 7)]
    body = '  store done: memory("done")\n' + "".join(slow_branch(n, 80) for n in names)
    body += f"  run [{', '.join(names)}] {{ maxConcurrency: 3 }}\n"
    result = run(mission(body, settings="maxConcurrency: 1"), tmp_path, server)
    assert result.code == 0, result.stderr
    assert server.stats.peak_in_flight == 3


# --------------------------------------------------------------------------- wait-all


def test_wait_all_lets_the_others_finish_and_names_the_failure(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    body = '  store done: memory("done")\n' + failing_branch("Broken") + slow_branch("Good1", 100)
    body += slow_branch("Good2", 150) + "  run [Broken, Good1, Good2]\n"
    text = mission(body)
    result = run(text, tmp_path, server)
    assert result.code == 1
    assert {r["id"] for r in result.stores["done"]} == {"Good1", "Good2"}
    at = position(text, 'get "/fail"')
    assert re.search(rf"Broken: \S*mission\.vague:{at}: http: GET \S+/fail\S* returned 500", result.stderr), \
        result.stderr
    assert "stage 1 [Broken, Good1, Good2] failed (mode wait-all)" in result.stderr
    assert "Good1: completed" in result.stderr


def test_wait_all_still_starts_queued_branches_after_a_failure(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    body = '  store done: memory("done")\n' + failing_branch("Broken") + slow_branch("Later", 10)
    body += "  action Never { store { id: \"never\" } -> done }\n"
    body += "  run [Broken, Later] { maxConcurrency: 1 } then Never\n"
    result = run(mission(body), tmp_path, server)
    assert result.code == 1
    assert [r["id"] for r in result.stores["done"]] == ["Later"]  # the next stage never ran


def test_every_failure_of_a_wait_all_stage_is_reported(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    body = failing_branch("First", 500) + failing_branch("Second", 404) + "  run [First, Second]\n"
    result = run(mission(body), tmp_path, server)
    assert result.code == 1
    assert re.search(r"First: \S+:\d+:\d+: http: .* 500", result.stderr)
    assert re.search(r"Second: \S+:\d+:\d+: http: .* 404", result.stderr)


# --------------------------------------------------------------------------- fail-fast


def test_fail_fast_cancels_slow_siblings_and_closes_their_connections(tmp_path: Path,
                                                                       make_server: MakeServer) -> None:
    server = make_server()
    body = '  store done: memory("done")\n' + failing_branch("Broken", ms=100)
    body += slow_branch("Slow1", 5000) + slow_branch("Slow2", 5000) + slow_branch("Queued", 10)
    body += '  run [Broken, Slow1, Slow2, Queued] { mode: "fail-fast", maxConcurrency: 3 }\n'
    result = run(mission(body), tmp_path, server)
    assert result.code == 1
    assert result.elapsed_s < 2.5, result.elapsed_s
    assert result.stores["done"] == []  # the slow writes never happened
    assert wait_until_idle(server) == 0
    assert server.stats.aborted == 2
    assert server.stats.count("/slow") == 2  # Queued never started
    assert "failed (mode fail-fast, first failure in Broken)" in result.stderr
    assert "Slow1: cancelled" in result.stderr


def test_cli_mode_overrides_the_stage_mode(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    body = '  store done: memory("done")\n' + failing_branch("Broken", ms=50) + slow_branch("Slow", 5000)
    body += '  run [Broken, Slow] { mode: "wait-all" }\n'
    result = run(mission(body), tmp_path, server, "--mode", "fail-fast")
    assert result.code == 1
    assert result.elapsed_s < 2.5
    assert wait_until_idle(server) == 0
    assert server.stats.aborted == 1


# --------------------------------------------------------------------------- best-effort


def test_best_effort_always_succeeds_and_records_exact_error_entries(tmp_path: Path,
                                                                     make_server: MakeServer) -> None:
    server = make_server()
    body = """
  store done: memory("done")
  store errs: memory("errs")
%s%s%s
  action Report {
    for e in errors { store { id: e.action, entry: e } -> errs }
  }
  run [Broken, Missing, Good] { mode: "best-effort" } then Report
""" % (failing_branch("Broken", 500), failing_branch("Missing", 404), slow_branch("Good", 20))
    text = mission(body)
    result = run(text, tmp_path, server)
    assert result.code == 0, result.stderr
    assert [r["id"] for r in result.stores["done"]] == ["Good"]
    entries = {r["id"]: r["entry"] for r in result.stores["errs"]}
    assert set(entries) == {"Broken", "Missing"}
    for name, status in (("Broken", 500), ("Missing", 404)):
        entry = entries[name]
        assert set(entry) == ERROR_FIELDS
        assert (entry["stage"], entry["action"], entry["kind"], entry["status"]) == (1, name, "http", status)
        assert "Traceback" not in entry["message"] and f"returned {status}" in entry["message"]
    lines = [position(text, 'get "/fail" { params: { status: 500'), position(text, 'get "/fail" { params: { status: 404')]
    assert entries["Broken"]["at"].endswith(f"mission.vague:{lines[0]}")
    assert entries["Missing"]["at"].endswith(f"mission.vague:{lines[1]}")
    assert "succeeded with tolerated failures" in result.stderr


def test_best_effort_succeeds_even_when_every_branch_fails(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    body = failing_branch("A") + failing_branch("B")
    body += '  store seen: memory("seen")\n  action Count { store { id: "n", n: length(errors) } -> seen }\n'
    body += '  run [A, B] { mode: "best-effort" } then Count\n'
    result = run(mission(body), tmp_path, server)
    assert result.code == 0, result.stderr
    assert result.stores["seen"] == [{"id": "n", "n": 2}]


def test_single_best_effort_stage_is_optional(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    body = failing_branch("A")
    body += '  store seen: memory("seen")\n  action Count { store { id: "n", first: first(errors).action } -> seen }\n'
    body += '  run A { mode: "best-effort" } then Count\n'
    result = run(mission(body), tmp_path, server)
    assert result.code == 0, result.stderr
    assert result.stores["seen"] == [{"id": "n", "first": "A"}]


# --------------------------------------------------------------------------- race


def test_race_first_completion_wins_and_losers_are_cancelled(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    body = """
  store done: memory("done")
  store errs: memory("errs")
%s%s%s
  action Report { for e in errors { store { id: e.action, kind: e.kind } -> errs } }
  run [Slow, Fast, Broken] { mode: "race" } then Report
""" % (slow_branch("Slow", 3000), slow_branch("Fast", 150), failing_branch("Broken"))
    result = run(mission(body), tmp_path, server)
    assert result.code == 0, result.stderr
    assert result.elapsed_s < 2.0
    assert [r["id"] for r in result.stores["done"]] == ["Fast"]
    assert result.stores["errs"] == [{"id": "Broken", "kind": "http"}]  # failed before the win
    assert wait_until_idle(server) == 0
    assert server.stats.aborted == 1
    assert re.search(r"stage 1 \[Slow, Fast, Broken\]: succeeded.*winner Fast", result.stderr), result.stderr


def test_race_fails_when_every_branch_fails(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    body = failing_branch("A") + failing_branch("B", 503) + '  run [A, B] { mode: "race" }\n'
    result = run(mission(body), tmp_path, server)
    assert result.code == 1
    assert "A: " in result.stderr and "B: " in result.stderr


@pytest.mark.parametrize("mode", ["best-effort", "race", "wait-all"])
def test_abort_overrides_every_mode(tmp_path: Path, make_server: MakeServer, mode: str) -> None:
    server = make_server()
    body = """
  store done: memory("done")
  action Stop {
    get "/slow" { params: { ms: 50 } }
    abort "stop everything"
  }
%s
  action After { store { id: "after" } -> done }
  run [Stop, Slow] { mode: "%s" } then After
""" % (slow_branch("Slow", 3000), mode)
    result = run(mission(body), tmp_path, server)
    assert result.code == 1
    assert result.elapsed_s < 2.0
    assert result.stores["done"] == []
    assert "abort: stop everything" in result.stderr
    assert wait_until_idle(server) == 0
    assert server.stats.aborted == 1


def test_abort_in_a_parallel_loop_ends_the_mission(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    body = """
  store done: memory("done")
  action Loop {
    for n in [1, 2, 3, 4] parallel {
      get "/slow" { params: { ms: (n == 2 ? 20 : 2000), n: n } }
      match n { _ where it == 2 -> abort ("bad item " + n), _ -> continue }
      store { id: n } -> done
    }
  }
  run [Loop] { mode: "best-effort" }
"""
    result = run(mission(body), tmp_path, server)
    assert result.code == 1
    assert result.elapsed_s < 1.5
    assert "abort: bad item 2" in result.stderr
    assert result.stores["done"] == []


# --------------------------------------------------------------------------- timeouts


def test_stage_timeout_fails_running_and_queued_branches(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    body = '  store done: memory("done")\n' + slow_branch("Slow", 3000) + slow_branch("Queued", 10)
    body += "  run [Slow, Queued] { timeout: 200ms, maxConcurrency: 1 }\n"
    result = run(mission(body), tmp_path, server)
    assert result.code == 1
    assert result.elapsed_s < 1.5
    assert re.search(r"Slow: \S+mission\.vague:\d+:\d+: timeout: stage 1 timed out after 200ms", result.stderr)
    assert "Queued: timeout: stage 1 timed out after 200ms" in result.stderr
    assert server.stats.count("/slow") == 1
    assert wait_until_idle(server) == 0


def test_best_effort_stage_timeout_records_timeout_entries(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    body = """
  store done: memory("done")
  store errs: memory("errs")
%s%s
  action Report { for e in errors { store { id: e.action, entry: e } -> errs } }
  run [Slow, Quick] { mode: "best-effort", timeout: 300ms } then Report
""" % (slow_branch("Slow", 3000), slow_branch("Quick", 10))
    text = mission(body)
    result = run(text, tmp_path, server)
    assert result.code == 0, result.stderr
    assert [r["id"] for r in result.stores["done"]] == ["Quick"]
    [entry] = [r["entry"] for r in result.stores["errs"]]
    assert set(entry) == ERROR_FIELDS
    assert (entry["action"], entry["kind"], entry["message"]) == ("Slow", "timeout", "stage 1 timed out after 300ms")
    assert entry["at"].endswith("mission.vague:" + position(text, 'get "/slow" { params: { ms: 3000'))
    assert entry["status"] is None


def test_a_queued_branch_that_times_out_has_no_position(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    body = """
  store done: memory("done")
  store errs: memory("errs")
%s%s
  action Report { for e in errors { store { id: e.action, at: e.at, kind: e.kind } -> errs } }
  run [Slow, Queued] { mode: "best-effort", timeout: 200ms, maxConcurrency: 1 } then Report
""" % (slow_branch("Slow", 3000), slow_branch("Queued", 10))
    result = run(mission(body), tmp_path, server, "--json-log")
    assert result.code == 0, result.stderr
    errs = result.keyed("errs", "id")
    assert errs["Queued"] == {"id": "Queued", "at": None, "kind": "timeout"}
    assert errs["Slow"]["at"] is not None
    ends = [json.loads(line) for line in result.stderr.splitlines() if '"branch.end"' in line]
    assert [(e["action"], e["outcome"], e.get("kind")) for e in ends] == [("Slow", "failed", "timeout"),
                                                                           ("Report", "completed", None)]


def test_single_stage_timeout(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    body = '  store done: memory("done")\n' + slow_branch("Slow", 3000) + "  run Slow { timeout: 1s }\n"
    result = run(mission(body), tmp_path, server)
    assert result.code == 1
    assert result.elapsed_s < 2.5
    assert "stage 1 timed out after 1s" in result.stderr


# --------------------------------------------------------------------------- isolation and shared stores


def test_branches_never_see_each_others_bindings(tmp_path: Path, make_server: MakeServer) -> None:
    """A binds `v` and `response`, then waits; B binds the same names meanwhile."""
    server = make_server()
    body = """
  store seen: memory("seen")
  action A {
    get "/items/1"
    let v = response.value
    get "/slow" { params: { ms: 150 } }
    store { id: "A", v: v, slept: response.slept } -> seen
  }
  action B {
    get "/slow" { params: { ms: 50 } }
    get "/items/2"
    let v = response.value
    get "/slow" { params: { ms: 30 } }
    store { id: "B", v: v, slept: response.slept } -> seen
  }
  run [A, B]
"""
    result = run(mission(body), tmp_path, server)
    assert result.code == 0, result.stderr
    assert result.keyed("seen", "id") == {
        "A": {"id": "A", "v": "item-1", "slept": 150},
        "B": {"id": "B", "v": "item-2", "slept": 30},
    }
    assert server.stats.peak_in_flight == 2


def test_parallel_iterations_never_see_each_others_bindings(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    body = """
  store seen: memory("seen")
  action Loop {
    concurrency: 8
    get "/items/99"
    for n in [%s] parallel {
      let before = response.value
      get "/items/{n}"
      let mine = response.value
      get "/slow" { params: { ms: (16 - n) * 10 } }
      store { id: n, before: before, mine: mine, after: response.slept } -> seen
    }
    store { id: 100, outer: response.value } -> seen
  }
  run Loop
""" % ", ".join(str(i) for i in range(1, 16))
    result = run(mission(body), tmp_path, server)
    assert result.code == 0, result.stderr
    seen = result.keyed("seen", "id")
    assert seen.pop(100) == {"id": 100, "outer": "item-99"}  # the loop did not rebind `response`
    assert seen == {n: {"id": n, "before": "item-99", "mine": f"item-{n}", "after": (16 - n) * 10}
                    for n in range(1, 16)}
    assert server.stats.peak_in_flight == 8


@pytest.mark.parametrize("kind", ["memory", "file", "sql", "nosql"])
def test_concurrent_upserts_into_one_store_lose_nothing(tmp_path: Path, make_server: MakeServer, kind: str) -> None:
    """Eight branches upsert their own field into one shared record while two loops of
    30 iterations each upsert a different field into the same 30 records."""
    server = make_server()
    fields = [f"f{i}" for i in range(1, 9)]
    branch = """
  action %s {
    get "/slow" { params: { ms: 600 } }
    store { id: "shared", %s: true } -> merged { upsert: true }
  }
"""
    loop = """
  action %s {
    for n in [%s] parallel {
      get "/items/{n}"
      store { id: "item-" + n, %s: response.value } -> merged { upsert: true }
    }
  }
"""
    numbers = ", ".join(str(i) for i in range(30))
    body = f'  store merged: {kind}("merged")\n'
    body += "".join(branch % (f.upper(), f) for f in fields)
    body += loop % ("LoopA", numbers, "a") + loop % ("LoopB", numbers, "b")
    body += f"  run [{', '.join(f.upper() for f in fields)}, LoopA, LoopB]\n"
    result = run(mission(body), tmp_path, server)
    assert result.code == 0, result.stderr
    merged = result.keyed("merged", "id")
    assert merged.pop("shared") == {"id": "shared", **{f: True for f in fields}}
    assert merged == {f"item-{n}": {"id": f"item-{n}", "a": f"item-{n}", "b": f"item-{n}"} for n in range(30)}
    assert server.stats.peak_in_flight > 8  # the writers really overlapped


# --------------------------------------------------------------------------- parallel loops: failure and nesting


def test_a_failing_iteration_cancels_the_running_ones_and_starts_no_more(tmp_path: Path,
                                                                         make_server: MakeServer) -> None:
    server = make_server()
    body = """
  store done: memory("done")
  action Loop {
    concurrency: 4
    for n in [%s] parallel {
      match n {
        _ where it == 2 -> { get "/fail" { params: { status: 500, ms: 100 }, retry: { maxAttempts: 1 } } },
        _ -> { get "/slow" { params: { ms: 3000, n: n } } }
      }
      store { id: n } -> done
    }
  }
  run Loop
""" % ", ".join(str(i) for i in range(12))
    text = mission(body)
    result = run(text, tmp_path, server)
    assert result.code == 1
    assert result.elapsed_s < 2.0
    assert result.stores["done"] == []
    assert server.stats.count("/slow") == 3  # the other three of the first four; nothing started later
    assert wait_until_idle(server) == 0
    assert server.stats.aborted == 3
    at = position(text, 'get "/fail"')
    assert re.search(rf"Loop: \S+mission\.vague:{at}: http: GET \S+ returned 500", result.stderr), result.stderr


def test_other_failing_iterations_are_counted_in_the_message(tmp_path: Path, make_server: MakeServer,
                                                             executor: str) -> None:
    """Three iterations that fail at their first step, before any of them waits: on one event
    loop all three have failed when the loop sees the first (a failing request instead would
    race with the others' responses on a loaded machine)."""
    server = make_server()
    body = """
  action Loop {
    for n in [1, 2, 3] parallel {
      validate n { assume it > 10 }
      get "/slow" { params: { n: n } }
    }
  }
  run Loop
"""
    result = run(mission(body), tmp_path, server)
    assert result.code == 1
    assert server.stats.count("/slow") == 0
    if executor == "local":
        assert re.search(r"assumption failed: it > 10 \(value: 1\) \(and 2 more failing iterations\)",
                         result.stderr), result.stderr
    else:  # remote failures arrive one by one: those still running when the first arrives are cancelled
        assert re.search(r"assumption failed: it > 10 \(value: \d\)( \(and [12] more failing iterations?\))?\n",
                         result.stderr), result.stderr


def test_nested_parallel_loops_get_a_fresh_pool_per_outer_iteration(tmp_path: Path,
                                                                    make_server: MakeServer) -> None:
    server = make_server()
    body = """
  store done: memory("done")
  action Nested {
    concurrency: 3
    for a in [1, 2] parallel {
      for b in [1, 2, 3, 4, 5, 6] parallel {
        get "/slow" { params: { ms: 80, a: a, b: b } }
        store { id: a * 10 + b } -> done
      }
    }
  }
  run Nested
"""
    result = run(mission(body), tmp_path, server)
    assert result.code == 0, result.stderr
    assert server.stats.peak_in_flight == 6
    assert len(result.stores["done"]) == 12


def test_parallel_loop_inside_each_of_several_branches(tmp_path: Path, make_server: MakeServer) -> None:
    """Loop iterations do not count against the branch limit: 2 branches x 4 iterations."""
    server = make_server()
    loop = """
  action %s {
    concurrency: 4
    for n in [1, 2, 3, 4, 5, 6, 7, 8] parallel { get "/slow" { params: { ms: 80, n: n } } }
  }
"""
    body = loop % "L1" + loop % "L2" + loop % "L3" + "  run [L1, L2, L3] { maxConcurrency: 2 }\n"
    result = run(mission(body), tmp_path, server)
    assert result.code == 0, result.stderr
    assert server.stats.peak_in_flight == 8


def test_cli_max_concurrency_leaves_loop_concurrency_alone(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    body = """
  action Loop {
    concurrency: 5
    for n in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] parallel { get "/slow" { params: { ms: 60, n: n } } }
  }
  run [Loop]
"""
    result = run(mission(body), tmp_path, server, "--max-concurrency", "1")
    assert result.code == 0, result.stderr
    assert server.stats.peak_in_flight == 5


def test_a_cancelled_branch_loses_its_staged_checkpoint(tmp_path: Path, make_server: MakeServer) -> None:
    """fail-fast: Synced fetched with lastSync, then was cancelled while waiting; Done completed."""
    server = make_server()
    body = """
  action Synced {
    get "/items/1" { since: lastSync("cancelled") }
    get "/slow" { params: { ms: 3000 } }
  }
  action Done { get "/items/2" { since: lastSync("completed") } }
%s
  run [Synced, Done, Broken] { mode: "fail-fast" }
""" % failing_branch("Broken", ms=150)
    result = run(mission(body), tmp_path, server)
    assert result.code == 1
    saved = json.loads((result.data_dir / "sync" / "Par.json").read_text("utf-8"))
    assert set(saved) == {"completed"}
    assert server.stats.count("/items/1") == 1
