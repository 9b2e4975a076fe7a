"""Run state and `--resume` (LANGUAGE.md §8.5): decisions in-process, crash safety with real kills.

The kill test is the proof of the durability rule: `reqon run` is killed with SIGKILL at
seeded random moments of a paginated, parallel mission writing to `file`, `nosql` and
`sql` stores; after every kill the stores must be intact, and `--resume` must end with
exactly the stores of an uninterrupted run while sending fewer requests than a full run.
"""
from __future__ import annotations

import contextlib
import io
import json
import queue
import random
import sqlite3
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reqon.cli import main
from reqon.demo.server import ThreadedServer
from tests.conftest import MakeServer, run_mission_text, start_reqon_run

ROOT = Path(__file__).resolve().parents[1]

HARVEST = """
mission Harvest {
  source Shelf { auth: none, base: env("DEMO_URL"), timeout: 5s }

  store books: sql("books")
  store prices: file("prices")
  store stock: sql("stock")
  store authors: nosql("authors")

  action ListBooks {
    get "/books" { params: { per_page: 20 }, paginate: page(page, 20) }
    store response -> books { key: .isbn }
  }

  action FetchPrices {
    concurrency: 4
    for book in books parallel {
      get "/prices/{book.isbn}"
      store { isbn: book.isbn, amount: response.amount } -> prices { key: .isbn }
    }
  }

  action FetchStock {
    for book in books {
      get "/stock/{book.isbn}"
      store { isbn: book.isbn, onHand: response.on_hand } -> stock { key: .isbn }
      for author in book.authors parallel {
        store { name: author, isbn: book.isbn } -> authors { key: author + "/" + book.isbn }
      }
    }
  }

  run ListBooks then [FetchPrices, FetchStock]
}
"""

LATENCY_MS = 8
SEED = 20240611
SCENARIOS = 20
WORKERS = 3
TWICE_EVERY = 3  # every third scenario also kills its first resumed run


# --------------------------------------------------------------------------- processes


def start(mission: Path, data_dir: Path, output: Path, server: ThreadedServer, *args: str) -> subprocess.Popen[str]:
    return start_reqon_run(mission, data_dir, output, server.url, "--quiet", *args, stdout=subprocess.DEVNULL)


def state_of(data_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((data_dir / "runs" / "Harvest.json").read_text("utf-8"))
    except FileNotFoundError:
        return None


def wait_until_running(process: subprocess.Popen[str], data_dir: Path, run_before: str | None) -> None:
    """The run has started (imports done, stores open) once it recorded itself as running."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        state = state_of(data_dir)
        if state is not None and state["run"] != run_before and state["status"] == "running":
            return
        time.sleep(0.005)


def kill_after(process: subprocess.Popen[str], data_dir: Path, delay_s: float) -> bool:
    """SIGKILL `delay_s` after the run started; False when it had already ended by then."""
    before = state_of(data_dir)
    wait_until_running(process, data_dir, before["run"] if before else None)
    time.sleep(delay_s)
    alive = process.poll() is None
    process.kill()
    process.communicate(timeout=30)
    return alive


def assert_intact(data_dir: Path) -> None:
    """What a kill may never do: a damaged store file, a damaged database, a torn state file."""
    for path in [data_dir / "prices.json", data_dir / "nosql" / "authors.json", data_dir / "runs" / "Harvest.json"]:
        if path.exists():
            json.loads(path.read_text("utf-8"), object_pairs_hook=no_duplicate_keys)
    database = data_dir / "reqon.db"
    if database.exists():
        with contextlib.closing(sqlite3.connect(database)) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys in {keys[:5]}…"
    return dict(pairs)


@dataclass
class Reference:
    output: dict[str, Any]
    requests: int
    work_s: float


@pytest.fixture(scope="module")
def harvest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("harvest") / "harvest.vague"
    path.write_text(HARVEST, encoding="utf-8")
    return path


def reference_run(mission: Path, tmp_path: Path, server: ThreadedServer) -> Reference:
    data_dir, output = tmp_path / "reference", tmp_path / "reference.json"
    before = server.stats.total
    process = start(mission, data_dir, output, server)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    state = state_of(data_dir)
    assert state is not None and state["status"] == "succeeded"
    stores = json.loads(output.read_text("utf-8"), object_pairs_hook=no_duplicate_keys)
    assert {name: len(records) for name, records in stores.items()} == \
        {"authors": len(stores["authors"]), "books": 120, "prices": 120, "stock": 120}
    assert len({(a["name"], a["isbn"]) for a in stores["authors"]}) == len(stores["authors"])
    return Reference(stores, server.stats.total - before, state["durationS"])


@dataclass
class Scenario:
    first_killed: bool
    kills: int
    resumes: int
    resumed_requests: int


def scenario(n: int, mission: Path, tmp_path: Path, server: ThreadedServer, reference: Reference) -> Scenario:
    """Kill a fresh run (and in some scenarios its first resume too), then resume until success."""
    rng = random.Random(SEED + n)
    data_dir, output = tmp_path / f"s{n}" / "data", tmp_path / f"s{n}" / "out.json"
    first_killed = kill_after(start(mission, data_dir, output, server), data_dir,
                              rng.uniform(0.2, 0.9) * reference.work_s)
    kills = int(first_killed)
    assert_intact(data_dir)
    if first_killed:
        assert state_of(data_dir)["status"] == "running"  # nobody recorded an end
    if n % TWICE_EVERY == 0:
        killed = kill_after(start(mission, data_dir, output, server, "--resume"), data_dir,
                            rng.uniform(0.05, 0.5) * reference.work_s)
        kills += killed
        assert_intact(data_dir)
    before = server.stats.total  # what the resume that finishes the work costs
    resumes = 0
    while True:
        process = start(mission, data_dir, output, server, "--resume")
        _, stderr = process.communicate(timeout=60)
        resumes += 1
        assert "Traceback" not in stderr
        if process.returncode == 0:
            break
        assert resumes < 3, stderr
    assert json.loads(output.read_text("utf-8"), object_pairs_hook=no_duplicate_keys) == reference.output
    assert_intact(data_dir)
    return Scenario(first_killed, kills, resumes, server.stats.total - before)


def test_sigkill_at_seeded_points_then_resume_converges_with_fewer_requests(
        harvest: Path, tmp_path: Path, make_server: MakeServer) -> None:
    servers: queue.Queue[ThreadedServer] = queue.Queue()
    for _ in range(WORKERS):
        servers.put(make_server(latency_ms=LATENCY_MS))
    reference = reference_run(harvest, tmp_path, servers.queue[0])

    def run(n: int) -> Scenario:
        server = servers.get()  # one scenario per server at a time: its request count is ours
        try:
            return scenario(n, harvest, tmp_path, server, reference)
        finally:
            servers.put(server)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(run, range(SCENARIOS)))
    kills = sum(r.kills for r in results)
    print(f"\n{kills} SIGKILL points survived in {SCENARIOS} scenarios; full run {reference.requests} requests, "
          f"resumed runs {[r.resumed_requests for r in results]}")
    assert kills >= 20
    # A resume never repeats more than a full run; a kill during the first stage may leave it
    # nothing to skip, so only the total over every scenario must be strictly smaller.
    assert all(r.resumed_requests <= reference.requests for r in results)
    killed = [r for r in results if r.first_killed]
    assert sum(r.resumed_requests for r in killed) < len(killed) * reference.requests


# --------------------------------------------------------------------------- decisions, in-process

WALK = """
mission Resumable {
  source Api { auth: none, base: env("DEMO_URL"), timeout: 5s }
  store items: file("items")
  store seen: sql("seen")
  store notes: nosql("notes")

  action Load {
    get "/pages" { params: { size: 10, total: 10 } }
    store response.items -> items { key: .id }
  }
  action Optional {
    get "/fail" { params: { status: 404 } }
  }
  action Walk {
    concurrency: 2
    for item in items%s {
      get "/items/{item.id}"
      store { id: item.id, errorsSeen: length(errors) } -> seen { key: .id }
    }
  }
  action Other {
    get "/items/100"
    store { id: "other" } -> notes
  }
  run Load then Optional { mode: "best-effort" } then [Walk, Other]
}
"""


def walk(parallel: bool = False) -> str:
    return WALK % (" parallel" if parallel else "")


def recorded(tmp_path: Path, mission: str = "Resumable") -> dict[str, Any]:
    state = json.loads((tmp_path / "data" / "runs" / f"{mission}.json").read_text("utf-8"))
    assert isinstance(state, dict)
    return state


def item_requests(server: ThreadedServer) -> list[str]:
    return sorted(a.target for a in server.stats.arrivals if a.target.startswith("/items/"))


def fail_walk_at_item_7(tmp_path: Path, make_server: MakeServer, parallel: bool = False) -> dict[str, Any]:
    """Run 1: Walk fails at item 7 (404, not retried), Other completes, stage 3 fails."""
    broken = make_server(fail_paths={"/items/7": 404}, latency_ms=5)
    first = run_mission_text(walk(parallel), tmp_path, url=broken.url)
    assert first.code == 1, first.stderr
    state = recorded(tmp_path)
    assert state["status"] == "failed"
    assert [s["status"] for s in state["stages"]] == ["succeeded", "succeeded with tolerated failures", "failed"]
    assert state["stages"][2]["completedBranches"] == [1]  # Other
    assert [e["action"] for e in state["errors"]] == ["Optional"]
    return state


def walk_loop(state: dict[str, Any]) -> dict[str, Any]:
    [loop] = [record for key, record in state["loops"].items() if key.startswith("3.0/")]
    assert isinstance(loop, dict)
    return loop


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
def test_resume_skips_done_stages_completed_branches_and_iterations(
        tmp_path: Path, make_server: MakeServer, parallel: bool) -> None:
    state = fail_walk_at_item_7(tmp_path, make_server, parallel)
    done = {int(i) for i in walk_loop(state)["done"]}
    if not parallel:
        assert done == set(range(7))
    assert 7 not in done
    healthy = make_server()
    resumed = run_mission_text(walk(parallel), tmp_path, "--resume", url=healthy.url)
    assert resumed.code == 0, resumed.stderr
    assert "resuming run" in resumed.stderr and "2 of 3 stages done earlier" in resumed.stderr
    assert "done earlier" in resumed.stderr  # the summary
    # Nothing of stages 1 and 2, nothing of Other, only the iterations that had not completed.
    assert item_requests(healthy) == sorted(f"/items/{i}" for i in range(10) if i not in done)
    assert healthy.stats.total == 10 - len(done)
    # errors starts with the recorded entry, so the re-run iterations see it too.
    assert resumed.keyed("seen", "id") == {i: {"id": i, "errorsSeen": 1} for i in range(10)}
    assert resumed.stores["notes"] == [{"id": "other"}]
    final = recorded(tmp_path)
    assert final["status"] == "succeeded" and final["resumes"] == state["run"] and final["loops"] == {}
    assert [e["action"] for e in final["errors"]] == ["Optional"]


def test_a_changed_loop_list_runs_the_loop_whole(tmp_path: Path, make_server: MakeServer) -> None:
    fail_walk_at_item_7(tmp_path, make_server)
    items = tmp_path / "data" / "items.json"
    records = json.loads(items.read_text("utf-8"))
    records["10"] = {"id": 10, "value": "item-10"}
    items.write_text(json.dumps(records), encoding="utf-8")
    healthy = make_server()
    resumed = run_mission_text(walk(), tmp_path, "--resume", url=healthy.url)
    assert resumed.code == 0, resumed.stderr
    assert "has 11 elements, 10 when it last ran: running it whole" in resumed.stderr
    assert item_requests(healthy) == sorted(f"/items/{i}" for i in range(11))


def test_a_changed_element_runs_again_with_the_unfinished_ones(tmp_path: Path, make_server: MakeServer) -> None:
    fail_walk_at_item_7(tmp_path, make_server)
    items = tmp_path / "data" / "items.json"
    records = json.loads(items.read_text("utf-8"))
    records["2"]["value"] = "changed"
    items.write_text(json.dumps(records), encoding="utf-8")
    healthy = make_server()
    resumed = run_mission_text(walk(), tmp_path, "--resume", url=healthy.url)
    assert resumed.code == 0, resumed.stderr
    assert item_requests(healthy) == sorted(["/items/2", "/items/7", "/items/8", "/items/9"])


def test_a_changed_pipeline_runs_from_the_start_and_says_why(tmp_path: Path, make_server: MakeServer) -> None:
    fail_walk_at_item_7(tmp_path, make_server)
    healthy = make_server()
    changed = walk().replace("then [Walk, Other]", "then [Other, Walk]")
    resumed = run_mission_text(changed, tmp_path, "--resume", url=healthy.url)
    assert resumed.code == 0, resumed.stderr
    assert ("nothing to resume: the pipeline changed since the last run (was Load then Optional then "
            "[Walk, Other], now Load then Optional then [Other, Walk]); running Resumable from the first stage"
            ) in resumed.stderr
    assert healthy.stats.count("/pages") == 1 and len(item_requests(healthy)) == 11


def test_nothing_to_resume_after_success_or_without_a_state(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    first = run_mission_text(walk(), tmp_path, "--resume", url=server.url)
    assert first.code == 0, first.stderr
    assert f"nothing to resume: no recorded run in {tmp_path / 'data' / 'runs'}" in first.stderr
    again = run_mission_text(walk(), tmp_path, "--resume", url=server.url)
    assert again.code == 0
    assert "nothing to resume: the last run succeeded; running Resumable from the first stage" in again.stderr
    assert server.stats.count("/pages") == 2


def test_a_damaged_state_is_reported_and_replaced(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    (tmp_path / "data" / "runs").mkdir(parents=True)
    (tmp_path / "data" / "runs" / "Resumable.json").write_text('{"format": 1, "stat', encoding="utf-8")
    result = run_mission_text(walk(), tmp_path, "--resume", url=server.url)
    assert result.code == 0, result.stderr
    assert "warning: --resume: ignoring the run state:" in result.stderr and "is not valid JSON" in result.stderr
    assert recorded(tmp_path)["status"] == "succeeded"


def test_resume_warns_about_memory_stores(tmp_path: Path, make_server: MakeServer) -> None:
    text = walk().replace('store notes: nosql("notes")', 'store notes: memory("notes")')
    broken = make_server(fail_paths={"/items/7": 404})
    assert run_mission_text(text, tmp_path, url=broken.url).code == 1
    resumed = run_mission_text(text, tmp_path, "--resume", url=make_server().url)
    assert resumed.code == 0, resumed.stderr
    assert ("warning: --resume: memory store notes start empty; the work that filled them earlier is not "
            "run again") in resumed.stderr
    assert resumed.stores["notes"] == []  # Other completed earlier and is not run again


def test_json_log_carries_the_resume_decision_as_an_event(tmp_path: Path, make_server: MakeServer) -> None:
    result = run_mission_text(walk(), tmp_path, "--resume", "--json-log", url=make_server().url)
    events = [json.loads(line) for line in result.stderr.splitlines()]
    [decision] = [e for e in events if e["event"] == "run.resume"]
    assert decision["mission"] == "Resumable" and decision["message"].startswith("nothing to resume")


# --------------------------------------------------------------------------- reqon runs


def runs_command(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["runs", *args])
    return code, out.getvalue(), err.getvalue()


def test_reqon_runs_lists_status_start_duration_and_resumptions(tmp_path: Path, make_server: MakeServer) -> None:
    first = fail_walk_at_item_7(tmp_path, make_server)
    resumed = run_mission_text(walk(), tmp_path, "--resume", url=make_server().url)
    assert resumed.code == 0
    second = recorded(tmp_path)
    code, out, _ = runs_command("--data-dir", str(tmp_path / "data"))
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["MISSION", "RUN", "TRIGGER", "STATUS", "STARTED", "DURATION"]
    assert [row.split()[:5] for row in rows] == [
        ["Resumable", first["run"], "manual", "failed", first["startedAt"]],
        ["Resumable", second["run"], "manual", "succeeded", second["startedAt"]],
    ]
    assert rows[1].endswith(f"resumes {first['run']}")
    assert all(row.split()[5].endswith("s") for row in rows)
    # PATH restricts the list to the missions of that file.
    assert runs_command(str(tmp_path / "mission.vague"), "--data-dir", str(tmp_path / "data"))[1] == out
    other = tmp_path / "other.vague"
    other.write_text('mission Other { action A { let x = 1 } run A }', encoding="utf-8")
    code, out, err = runs_command(str(other), "--data-dir", str(tmp_path / "data"))
    assert (code, out) == (0, "") and "no recorded runs" in err


def test_a_killed_run_is_listed_as_unfinished_and_a_torn_history_line_is_skipped(
        tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    assert run_mission_text(walk(), tmp_path, url=server.url).code == 0
    state_file = tmp_path / "data" / "runs" / "Resumable.json"
    killed = json.loads(state_file.read_text("utf-8"))
    killed.update(status="running", run="killed000000")  # what SIGKILL leaves behind
    state_file.write_text(json.dumps(killed), encoding="utf-8")
    history = tmp_path / "data" / "runs" / "Resumable.history.jsonl"
    with history.open("a", encoding="utf-8") as f:
        f.write('{"mission": "Resumable", "run": "torn')  # a crash in the middle of an append
    _, out, _ = runs_command("--data-dir", str(tmp_path / "data"))
    assert ["killed000000", "manual", "running"] in [line.split()[1:4] for line in out.splitlines()] and "no end recorded (still running, or killed)" in out
    assert "torn" not in out
    assert run_mission_text(walk(), tmp_path, url=server.url).code == 0  # records the killed run in the history
    _, out, _ = runs_command("--data-dir", str(tmp_path / "data"))
    assert [row.split()[3] for row in out.splitlines()[1:]] == ["succeeded", "running", "succeeded"]


def test_no_run_state_for_dry_run(tmp_path: Path) -> None:
    result = run_mission_text(walk(), tmp_path, "--dry-run", url="http://127.0.0.1:9")
    assert result.code == 0, result.stderr
    assert not (tmp_path / "data").exists()
