"""Run lanes (docs/scheduling.md, reqon/engine/lanes.py): overlapping daemon runs of one mission
keep their own run state and journal, a manual run and the daemon keep out of each other's lane,
and what runs killed in any lane journaled is replayed at the next start.

Real daemon processes against a real API, as in test_daemon.py: the moments that matter (a run
in flight, both runs stopped in the middle of a loop) are read from the server's counters, and
runs that must be "still going" wait at a gate the test opens, never for a duration.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.api import DaemonApi
from tests.daemon.processes import PATIENCE_S, ROOT, Daemon, history, wait_until, write

OVERLAP = """
mission Held {
  schedule: every 1 second { skipIfRunning: false, maxConcurrency: 2 }
  source Api { auth: none, base: env("API_URL") }
  store done: file("held")
  action Hold {
    get "/hold/held" { params: { ms: 2500 }, timeout: 60s }
    store response -> done { key: .id }
  }
  run Hold
}
"""


def state(data: Path, key: str) -> dict[str, Any]:
    return json.loads((data / "runs" / f"{key}.json").read_text("utf-8"))  # type: ignore[no-any-return]


def journal_entries(data: Path, key: str) -> list[dict[str, Any]]:
    lines = (data / "runs" / f"{key}.journal").read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines[1:]]  # the first line names the journal


def reqon(*argv: str, url: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, API_URL=url)
    return subprocess.run([sys.executable, "-m", "reqon.cli", *argv], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=PATIENCE_S)


def succeeded_lanes(data: Path, mission: str) -> list[int]:
    return [int(r.get("lane", 1)) for r in history(data, mission) if r["status"] == "succeeded"]  # type: ignore


def test_two_overlapping_runs_each_keep_their_own_state_and_journal(tmp_path: Path, api: DaemonApi,
                                                                    daemons: Callable[..., Daemon]) -> None:
    data = tmp_path / "data"
    daemon = daemons(write(tmp_path, OVERLAP), data, api.url, "--daemon")
    # Lane 2 is taken only while lane 1 is held: one succeeded run in each means two overlapped.
    wait_until(lambda: succeeded_lanes(data, "Held").count(1) >= 2 and 2 in succeeded_lanes(data, "Held"),
               "runs succeeded in both lanes", daemon)
    daemon.signal(signal.SIGTERM)
    assert api.seen.peak["held"] == 2, daemon.log
    first, second = state(data, "Held"), state(data, "Held.2")
    assert (first["mission"], first["lane"], second["mission"], second["lane"]) == ("Held", 1, "Held", 2)
    assert first["run"] != second["run"] and first["journal"]["id"] != second["journal"]["id"]
    assert (data / "runs" / "Held.journal").exists() and (data / "runs" / "Held.2.journal").exists()
    assert not (data / "runs" / "Held.3.json").exists()  # maxConcurrency 2: never a third lane
    assert not (data / "runs" / "Held.2.history.jsonl").exists()  # one history per mission
    runs = history(data, "Held")
    assert len({r["run"] for r in runs}) == len(runs)  # every run once, whatever its lane
    assert "in lane 2" in daemon.log and "in lane 3" not in daemon.log
    # Stores complete: each succeeded run stored the id the server gave it.
    stored = json.loads((data / "held.json").read_text("utf-8"))
    assert len(stored) >= len(succeeded_lanes(data, "Held")), daemon.log
    assert set(stored) <= {str(n) for n in range(1, api.seen.count("held") + 1)}
    listing = reqon("runs", "--data-dir", str(data), url=api.url)
    rows = listing.stdout.splitlines()[1:]
    assert {row.split()[0] for row in rows} == {"Held"} and len(rows) == len(runs), listing.stdout
    assert sum("lane 2 (overlapped another run)" in row for row in rows) == sum(r.get("lane") == 2 for r in runs)


LOOPING = """
mission Lanes {
  schedule: every 1 second { skipIfRunning: false, maxConcurrency: 2 }
  source Api { auth: none, base: env("API_URL") }
  store items: file("items")
  action Fetch {
    get "/batch/batches" { params: { count: 5 } }
    for item in response {
      get "/item/lanes" { params: { id: item.id, stallAt: 4, stalls: 2 }, timeout: 600s }
      store response -> items { key: .id }
    }
  }
  run Fetch
}
"""


def test_kill_9_with_both_lanes_mid_loop_loses_nothing(tmp_path: Path, api: DaemonApi,
                                                       daemons: Callable[..., Daemon]) -> None:
    data = tmp_path / "data"
    mission = write(tmp_path, LOOPING)
    first = daemons(mission, data, api.url, "--daemon", "--verbose")
    # Both runs wait at their 4th item: items 1-3 of each are journaled, none is flushed yet.
    wait_until(lambda: api.in_flight("stalled:lanes") == 2, "both lanes stopped at their 4th item", first)
    first.signal(signal.SIGKILL)
    assert (api.seen.count("batches"), api.seen.count("lanes")) == (2, 2 * 4)  # items 1-4 of two runs
    journaled = {key: [e["i"] for e in journal_entries(data, key)] for key in ("Lanes", "Lanes.2")}
    assert journaled == {"Lanes": [0, 1, 2], "Lanes.2": [0, 1, 2]}
    before = json.loads((data / "items.json").read_text("utf-8")) if (data / "items.json").exists() else {}
    lost = {f"c{run}-{i}" for run in (1, 2) for i in (1, 2, 3)}
    assert not lost & set(before)  # only the journals hold them
    api.open_gates()
    second = daemons(mission, data, api.url, "--daemon", "--verbose")
    wait_until(lambda: (data / "items.json").exists()
               and lost <= set(json.loads((data / "items.json").read_text("utf-8"))),
               "the killed runs' records", second)
    wait_until(lambda: second.log.count("journaled by the last run") == 2, "both replays reported", second)
    second.signal(signal.SIGTERM)
    assert "replayed the store writes of 3 loop iterations journaled by the last run\n" in second.log
    assert "replayed the store writes of 3 loop iterations journaled by the last run in lane 2" in second.log
    killed = [r for r in history(data, "Lanes") if r["status"] == "running"]
    assert sorted(int(r["lane"]) for r in killed) == [1, 2], history(data, "Lanes")  # type: ignore[call-overload]
    stored = json.loads((data / "items.json").read_text("utf-8"))
    assert all(stored[key] == {"id": key} for key in lost)


GATED = """
mission Gated {
  schedule: every EVERY { retryOnFailure: { maxAttempts: 3, initialDelay: 0 } }
  source Api { auth: none, base: env("API_URL") }
  store done: file("gated")
  action Wait {
    get "/gate/gated" { timeout: 600s }
    store response -> done { key: .id }
  }
  run Wait
}
"""


def test_a_manual_run_is_refused_while_the_daemon_holds_lane_1(tmp_path: Path, api: DaemonApi,
                                                               daemons: Callable[..., Daemon]) -> None:
    data = tmp_path / "data"
    mission = write(tmp_path, GATED.replace("EVERY", "1 hour"))
    daemon = daemons(mission, data, api.url, "--daemon")
    wait_until(lambda: api.in_flight("gated") == 1, "the daemon's run at the gate", daemon)
    manual = reqon("run", str(mission), "--data-dir", str(data), url=api.url)
    assert manual.returncode == 3, manual.stderr
    assert (f"reqon: mission Gated is already running on data directory {data.resolve()} (pid {daemon.pid}, "
            "started ") in manual.stderr
    assert "Traceback" not in manual.stderr
    assert api.seen.count("gated") == 1  # the refused run sent nothing
    api.open_gates()
    wait_until(lambda: [r["status"] for r in history(data, "Gated")] == ["succeeded"], "the daemon's run", daemon)
    daemon.signal(signal.SIGTERM)
    assert [r["trigger"] for r in history(data, "Gated")] == ["schedule"]


def test_the_daemon_skips_not_fails_a_due_run_while_a_manual_run_holds_lane_1(
        tmp_path: Path, api: DaemonApi, daemons: Callable[..., Daemon]) -> None:
    data = tmp_path / "data"
    mission = write(tmp_path, GATED.replace("EVERY", "1 second"))
    env = dict(os.environ, API_URL=api.url)
    manual = subprocess.Popen([sys.executable, "-m", "reqon.cli", "run", str(mission), "--data-dir", str(data)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        wait_until(lambda: api.in_flight("gated") == 1, "the manual run at the gate")
        daemon = daemons(mission, data, api.url, "--daemon", "--json-log")

        def events(name: str) -> list[dict[str, Any]]:
            return [e for e in (json.loads(line) for line in daemon.log.splitlines() if line.startswith("{"))
                    if e["event"] == name]
        wait_until(lambda: len(events("schedule.skip")) >= 2, "two skipped due runs", daemon)
        skip = events("schedule.skip")[0]
        assert skip["level"] == "warning" and skip["mission"] == "Gated"
        assert (f"due run skipped: mission Gated is already running on data directory {data.resolve()}: held by "
                f"reqon run Gated (pid {manual.pid}, started ") in skip["message"]
        assert api.seen.count("gated") == 1  # the daemon sent nothing while the lane was held
        assert not events("schedule.retry") and not events("schedule.run.end")  # skipped, not failed
        api.open_gates()
        assert manual.wait(timeout=PATIENCE_S) == 0
    finally:
        if manual.poll() is None:
            manual.kill()
        manual.wait()
        assert manual.stderr is not None
        manual.stderr.close()
    wait_until(lambda: any(e["status"] == "succeeded" for e in events("schedule.run.end")),
               "the daemon's run once the lane is free", daemon)
    daemon.signal(signal.SIGTERM)
    assert not events("schedule.retry") and not events("schedule.gave-up")
    runs = history(data, "Gated")
    assert runs[0]["trigger"] == "manual" and runs[0]["status"] == "succeeded"
    assert any(r["trigger"] == "schedule" and r["status"] == "succeeded" for r in runs[1:])


PG_OVERLAP = """
mission Shared {
  schedule: every 1 second { skipIfRunning: false, maxConcurrency: 2 }
  source Api { auth: none, base: env("API_URL") }
  store done: sql("done")
  action Hold {
    get "/hold/shared" { params: { ms: 2500 }, timeout: 60s }
    store response -> done { key: .id }
  }
  run Hold
}
"""


def test_overlapping_runs_with_database_use_a_row_and_an_advisory_lock_per_lane(
        tmp_path: Path, api: DaemonApi, daemons: Callable[..., Daemon], pg_url: str) -> None:
    import psycopg

    data = tmp_path / "data"

    def recorded() -> list[dict[str, Any]]:
        try:
            with psycopg.connect(pg_url) as connection:
                return [row[0] for row in connection.execute(
                    "SELECT entry FROM reqon_run_history ORDER BY recorded_at").fetchall()]
        except psycopg.Error:  # the table is created by the first run
            return []

    def lanes_succeeded() -> list[int]:
        return [int(e.get("lane", 1)) for e in recorded() if e["status"] == "succeeded"]
    daemon = daemons(write(tmp_path, PG_OVERLAP), data, api.url, "--daemon", "--database", pg_url)
    wait_until(lambda: lanes_succeeded().count(1) >= 2 and 2 in lanes_succeeded(), "runs in both lanes", daemon)
    daemon.signal(signal.SIGTERM)
    assert api.seen.peak["shared"] == 2, daemon.log
    assert "already running against" not in daemon.log, daemon.log  # the advisory lock is per lane
    with psycopg.connect(pg_url) as connection:
        states: dict[str, Any] = dict(connection.execute("SELECT mission, state FROM reqon_runs").fetchall())
        stored = {row[0] for row in connection.execute("SELECT key FROM done").fetchall()}
    assert set(states) == {"Shared", "Shared.2"}
    assert [(s["mission"], s["lane"]) for _, s in sorted(states.items())] == [("Shared", 1), ("Shared", 2)]
    assert len(stored) >= len(lanes_succeeded())
    assert not (data / "runs" / "Shared.json").exists()  # the run state lives in the database
    listing = reqon("runs", "--data-dir", str(data), "--database", pg_url, url=api.url)
    rows = listing.stdout.splitlines()[1:]
    assert len(rows) == len(recorded()) and {row.split()[0] for row in rows} == {"Shared"}, listing.stdout
    assert any("lane 2" in row for row in rows)


@pytest.mark.parametrize("key, mission, lane", [("Held", "Held", 0), ("Held.2", "Held", 1), ("Held.10", "Held", 9),
                                                ("Held.1", "Held.1", 0), ("Held.x", "Held.x", 0)])
def test_lane_keys_read_back(key: str, mission: str, lane: int) -> None:
    from reqon.engine.lanes import lane_key, lane_of
    assert lane_of(key) == (mission, lane)
    if mission == "Held":
        assert lane_key(mission, lane) == key
