"""`reqon run --daemon` and `--once` as real processes against a real API (LANGUAGE.md §8.2).

Every assertion counts what the server saw (calls, runs in flight and their peak) or what
the daemon recorded; waits poll for an event with a generous deadline, so a loaded machine
makes the tests slower, not red. Where a count depends on elapsed time, the window is the
one the server itself observed.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.daemon.api import DaemonApi
from tests.daemon.processes import PATIENCE_S, ROOT, Daemon, history, store, wait_until, write

TWO = """
mission Fast {
  schedule: every 1 second
  source Api { auth: none, base: env("API_URL") }
  store ticks: file("fast")
  action Tick { get "/tick/fast" store response -> ticks { key: .id } }
  run Tick
}
mission Slow {
  schedule: every 2 seconds
  source Api { auth: none, base: env("API_URL") }
  store ticks: file("slow")
  action Tick { get "/tick/slow" store response -> ticks { key: .id } }
  run Tick
}
mission Manual {
  source Api { auth: none, base: env("API_URL") }
  action Tick { get "/tick/manual" }
  run Tick
}
"""


def expected_runs(first: float, last: float, interval: float) -> int:
    """Runs due in the window the server observed: at `first`, then every `interval`."""
    return int((last - first) // interval) + 1


def test_two_missions_on_their_intervals_then_sigterm(tmp_path: Path, api: DaemonApi,
                                                      daemons: Callable[..., Daemon]) -> None:
    data = tmp_path / "data"
    daemon = daemons(write(tmp_path, TWO), data, api.url, "--daemon")
    wait_until(lambda: api.seen.count("fast") >= 1 and api.seen.count("slow") >= 1, "the first runs", daemon)
    wait_until(lambda: api.seen.count("fast") >= 5, "five runs of Fast", daemon)
    stopped_at = time.monotonic()
    exit_s = daemon.signal(signal.SIGTERM)
    assert daemon.process.returncode == 0, daemon.log
    assert exit_s < 2.0, f"SIGTERM took {exit_s:.2f}s"
    for name, interval in (("fast", 1.0), ("slow", 2.0)):
        arrivals = api.seen.arrivals[name]
        expected = expected_runs(arrivals[0], stopped_at, interval)
        assert abs(len(arrivals) - expected) <= 1, (name, len(arrivals), expected, daemon.log)
    assert api.seen.count("manual") == 0  # no schedule, not run by the daemon
    # Stores are complete: one record per successful run, written and flushed.
    for mission, target in (("Fast", "fast"), ("Slow", "slow")):
        runs = history(data, mission)
        succeeded = [r for r in runs if r["status"] == "succeeded"]
        assert len(succeeded) >= len(runs) - 1  # at most the run SIGTERM interrupted
        assert len(store(data, target)) >= len(succeeded)
        assert all(r["trigger"] == "schedule" for r in runs)
    assert "Fast: run started; next due" in daemon.log and "Slow: run succeeded in" in daemon.log
    listing = subprocess.run([sys.executable, "-m", "reqon.cli", "runs", "--data-dir", str(data)],
                             capture_output=True, text=True, cwd=ROOT, timeout=PATIENCE_S)
    rows = [line.split() for line in listing.stdout.splitlines()[1:]]
    assert {(row[0], row[2]) for row in rows} == {("Fast", "schedule"), ("Slow", "schedule")}
    assert not (data / "daemon.pid").exists()


OVERLAP = """
mission Held {{
  schedule: every 1 second {{ skipIfRunning: {skip}, maxConcurrency: 2 }}
  source Api {{ auth: none, base: env("API_URL") }}
  action Hold {{ get "/hold/held" {{ params: {{ ms: 3500 }}, timeout: 60s }} }}
  run Hold
}}
"""


def test_skip_if_running_never_runs_a_mission_twice_at_once(tmp_path: Path, api: DaemonApi,
                                                            daemons: Callable[..., Daemon]) -> None:
    daemon = daemons(write(tmp_path, OVERLAP.format(skip="true")), tmp_path / "data", api.url, "--daemon")
    wait_until(lambda: api.seen.count("held") >= 2, "two runs", daemon)
    wait_until(lambda: "due run skipped" in daemon.log, "a skipped due run", daemon)
    daemon.signal(signal.SIGTERM)
    assert api.seen.peak["held"] == 1, daemon.log


def test_max_concurrency_two_overlaps_but_never_three(tmp_path: Path, api: DaemonApi,
                                                      daemons: Callable[..., Daemon]) -> None:
    daemon = daemons(write(tmp_path, OVERLAP.format(skip="false")), tmp_path / "data", api.url, "--daemon")
    wait_until(lambda: api.seen.count("held") >= 4, "four runs", daemon)
    wait_until(lambda: "due run skipped: 2 runs still going" in daemon.log, "a due run skipped at the limit", daemon)
    daemon.signal(signal.SIGTERM)
    assert daemon.process.returncode == 0
    assert api.seen.peak["held"] == 2, daemon.log


RETRIES = """
mission Recovers {
  schedule: every 1 hour
  retryOnFailure: { maxAttempts: 5, initialDelay: 100ms }
  source Api { auth: none, base: env("API_URL") }
  action Try { get "/fail/recovers" { params: { times: 2 }, retry: { maxAttempts: 1 } } }
  run Try
}
mission GivesUp {
  schedule: every 1 hour
  retryOnFailure: { maxAttempts: 3, initialDelay: 0 }
  source Api { auth: none, base: env("API_URL") }
  action Try { get "/fail/givesup" { params: { times: 1000 }, retry: { maxAttempts: 1 } } }
  run Try
}
mission OptionRetry {
  schedule: every 1 hour { retry: { maxRetries: 1, delaySeconds: 0 } }
  source Api { auth: none, base: env("API_URL") }
  action Try { get "/fail/optionretry" { params: { times: 1000 }, retry: { maxAttempts: 1 } } }
  run Try
}
mission TooSlow {
  schedule: every 1 hour
  timeout: 500ms
  source Api { auth: none, base: env("API_URL") }
  action Hold { get "/hold/tooslow" { params: { ms: 30000 }, timeout: 60s } }
  run Hold
}
"""


def test_retry_on_failure_and_the_schedule_timeout(tmp_path: Path, api: DaemonApi,
                                                   daemons: Callable[..., Daemon]) -> None:
    data = tmp_path / "data"
    daemon = daemons(write(tmp_path, RETRIES), data, api.url, "--daemon", "--json-log")

    def ended(mission: str) -> list[dict[str, object]]:
        events = [json.loads(line) for line in daemon.log.splitlines() if line.startswith("{")]
        return [e for e in events if e["event"] == "schedule.run.end" and e["mission"] == mission]
    wait_until(lambda: [e["status"] for e in ended("Recovers")][-1:] == ["succeeded"], "Recovers to succeed",
               daemon)
    wait_until(lambda: len(ended("GivesUp")) == 3 and "GivesUp" in daemon.log.split('"schedule.gave-up"')[-1],
               "GivesUp to give up", daemon)
    wait_until(lambda: len(ended("TooSlow")) == 1, "TooSlow to time out", daemon)
    wait_until(lambda: len(ended("OptionRetry")) == 2, "OptionRetry's retry", daemon)
    time.sleep(0.5)  # room for a wrong extra retry to show up in the counts below
    daemon.signal(signal.SIGTERM)
    assert [e["status"] for e in ended("Recovers")] == ["failed", "failed", "succeeded"]
    assert api.seen.count("recovers") == 3
    assert [e["status"] for e in ended("GivesUp")] == ["failed"] * 3  # maxAttempts 3, then it stops
    assert api.seen.count("givesup") == 3
    assert api.seen.count("optionretry") == 2  # the option `retry`: 1 run + maxRetries 1
    assert [e["status"] for e in ended("TooSlow")] == ["timed out"]
    assert [r["status"] for r in history(data, "TooSlow")] == ["interrupted"]
    for event in ended("Recovers"):
        assert event["trigger"] == "schedule" and isinstance(event["durationMs"], int)


RESTART = """
mission Every4 {
  schedule: every 4 seconds
  source Api { auth: none, base: env("API_URL") }
  action Tick { get "/tick/every4" }
  run Tick
}
"""


def test_restart_keeps_the_interval_and_missed_due_times_run_once(tmp_path: Path, api: DaemonApi,
                                                                  daemons: Callable[..., Daemon]) -> None:
    data = tmp_path / "data"
    mission = write(tmp_path, RESTART)
    starts = data / "daemon" / "last-starts.json"

    def last_start() -> dt.datetime:
        return dt.datetime.fromisoformat(json.loads(starts.read_text("utf-8"))["Every4"])
    first = daemons(mission, data, api.url, "--daemon")
    wait_until(lambda: api.seen.count("every4") == 1, "the first run", first)
    before_kill = last_start()
    first.signal(signal.SIGKILL)  # killed, not stopped: the OS lock goes with the process
    second = daemons(mission, data, api.url, "--daemon")
    wait_until(lambda: api.seen.count("every4") == 2, "the run after the restart", second)
    # The restarted daemon waited for the interval counted from the remembered start.
    assert last_start() - before_kill >= dt.timedelta(seconds=4), second.log
    second.signal(signal.SIGTERM)
    # Down for an hour with a 4 s interval: one run at start, not 900.
    starts.write_text(json.dumps({"Every4": "2026-01-01T00:00:00+00:00"}), encoding="utf-8")
    before = api.seen.count("every4")
    third = daemons(mission, data, api.url, "--daemon")
    wait_until(lambda: api.seen.count("every4") == before + 1, "one catch-up run", third)
    wait_until(lambda: "next due" in third.log, "the next due time", third)
    time.sleep(1.0)
    assert api.seen.count("every4") == before + 1
    third.signal(signal.SIGTERM)
    assert json.loads(starts.read_text("utf-8"))["Every4"] > "2026-01-01T00:00:00+00:00"


def test_a_second_daemon_on_the_same_data_directory_is_refused(tmp_path: Path, api: DaemonApi,
                                                              daemons: Callable[..., Daemon]) -> None:
    data = tmp_path / "data"
    mission = write(tmp_path, RESTART.replace("4 seconds", "1 hour"))
    first = daemons(mission, data, api.url, "--daemon")
    wait_until(lambda: "scheduling 1 mission" in first.log, "the first daemon to start", first)
    second = daemons(mission, data, api.url, "--daemon")
    second.process.wait(timeout=PATIENCE_S)
    assert second.process.returncode == 3
    assert f"another reqon daemon is running on the data directory {data} (PID {first.pid})" in second.log
    assert first.process.poll() is None
    assert first.signal(signal.SIGINT) < PATIENCE_S and first.process.returncode == 130


ONCE = """
mission First {
  schedule: every 1 hour
  source Api { auth: none, base: env("API_URL") }
  store ticks: file("first")
  action Tick { get "/tick/first" store response -> ticks { key: .id } }
  run Tick
}
mission Second {
  schedule: cron "0 3 * * *"
  source Api { auth: none, base: env("API_URL") }
  action Tick { get "/fail/second" { params: { times: %d }, retry: { maxAttempts: 1 } } }
  run Tick
}
"""


@pytest.mark.parametrize("failures, code", [(0, 0), (1000, 1)])
def test_once_runs_each_scheduled_mission_once_in_order(tmp_path: Path, api: DaemonApi, failures: int,
                                                        code: int) -> None:
    data = tmp_path / "data"
    env = dict(os.environ, API_URL=api.url)
    done = subprocess.run([sys.executable, "-m", "reqon.cli", "run", str(write(tmp_path, ONCE % failures)),
                           "--once", "--data-dir", str(data)], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=PATIENCE_S)
    assert done.returncode == code, done.stderr
    assert (api.seen.count("first"), api.seen.count("second")) == (1, 1)
    assert done.stderr.index("First: run started") < done.stderr.index("Second: run started")
    assert [r["trigger"] for r in history(data, "First") + history(data, "Second")] == ["once", "once"]
    assert [r["status"] for r in history(data, "Second")] == ["failed" if failures else "succeeded"]


def test_scheduled_runs_remove_what_a_killed_flush_left_like_manual_runs(tmp_path: Path, api: DaemonApi) -> None:
    """Issue 12's clean start holds for the daemon's runs too (`--once` takes the same path)."""
    data = tmp_path / "data"
    data.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    stale = data / f".first.json.{int(dead.stdout)}.0123abcd.tmp"
    stale.write_text('{"half": ', encoding="utf-8")
    env = dict(os.environ, API_URL=api.url)
    done = subprocess.run([sys.executable, "-m", "reqon.cli", "run", str(write(tmp_path, ONCE % 0)),
                           "--once", "--verbose", "--data-dir", str(data)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=PATIENCE_S)
    assert done.returncode == 0, done.stderr
    assert not stale.exists()
    assert f"removed {stale}: a temporary file left by an interrupted write" in done.stderr
    assert len(store(data, "first")) == 1
