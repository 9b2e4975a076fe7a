"""`wait` and `webhookUrl()` end to end (LANGUAGE.md §4.11, §5.11, §8.1).

The demo API's `POST /jobs` calls the mission back twice: once before it answers (so the
event arrives before the `wait` step starts) and once later. The webhook server is the
real one on an ephemeral port; nothing is mocked.
"""
from __future__ import annotations

import json
from pathlib import Path

from reqon.demo.server import ThreadedServer
from tests.conftest import run_mission_text

SUBMIT = """
mission Jobs {
  source Demo { auth: none, base: env("DEMO_URL") }
  store events: memory("events")
  store results: memory("results")

  action Submit {
    post "/jobs" { body: { callback: webhookUrl("/cb/" + "one"), ms: 200 } }
    let job = response.job
    wait { path: "/cb/one", timeout: 60s, expectedEvents: 2, eventFilter: .job == job,
           storage: { target: events, key: .state } }
    store { id: job, states: [response[0].state, response[1].state] } -> results
  }

  run Submit
}
"""


def test_callback_before_wait_and_later_both_reach_wait_in_order(tmp_path: Path,
                                                                  demo_server: ThreadedServer) -> None:
    demo_server.stats.reset()
    result = run_mission_text(SUBMIT, tmp_path, "--webhook-port", "0", url=demo_server.url)
    assert result.code == 0, result.stderr
    assert "webhook server listening on http://127.0.0.1:" in result.stderr
    [record] = result.stores["results"]
    assert record["states"] == ["queued", "done"]
    assert sorted(e["state"] for e in result.stores["events"]) == ["done", "queued"]
    assert demo_server.stats.count("/jobs") == 1


def test_wait_times_out_after_every_attempt(tmp_path: Path) -> None:
    text = """
    mission Quiet {
      action Listen {
        wait { path: "/never", timeout: 300ms, retry: { maxAttempts: 2 } }
      }
      run Listen
    }"""
    result = run_mission_text(text, tmp_path, "--webhook-port", "0")
    assert result.code == 1
    assert "received 0 of 1 webhook events on /never within 300ms (2 attempts)" in result.stderr
    assert result.elapsed_s >= 0.6  # both attempts waited their full timeout


PARALLEL = """
mission Both {
  source Demo { auth: none, base: env("DEMO_URL") }
  store results: memory("results")

  action Left {
    post "/jobs" { body: { callback: webhookUrl("/cb/left"), ms: 100 } }
    wait { path: "/cb/left", timeout: 60s, expectedEvents: 2 }
    store { id: "left", job: response[1].job, states: [response[0].state, response[1].state] } -> results
  }
  action Right {
    post "/jobs" { body: { callback: webhookUrl("/cb/right"), ms: 300 } }
    wait { path: "/cb/right", timeout: 60s, expectedEvents: 2 }
    store { id: "right", job: response[1].job, states: [response[0].state, response[1].state] } -> results
  }

  run [Left, Right]
}
"""


def test_two_parallel_branches_wait_on_different_paths(tmp_path: Path, make_server: object) -> None:
    server = make_server()  # type: ignore[operator]
    result = run_mission_text(PARALLEL, tmp_path, "--webhook-port", "0", url=server.url)
    assert result.code == 0, result.stderr
    records = result.keyed("results", "id")
    assert records["left"]["states"] == records["right"]["states"] == ["queued", "done"]
    assert records["left"]["job"] != records["right"]["job"]  # each branch got its own job's events


def test_wait_without_the_webhook_server_is_a_configuration_error(tmp_path: Path) -> None:
    text = 'mission W { action A { wait { path: "/x" } } run A }'
    result = run_mission_text(text, tmp_path)
    assert result.code == 3
    assert "action A uses 'wait', which needs the webhook server: run with --webhook" in result.stderr


def test_webhook_url_without_the_server_fails_the_run(tmp_path: Path) -> None:
    text = 'mission W { store s: memory("s") action A { store { id: "u", url: webhookUrl("/x") } -> s } run A }'
    result = run_mission_text(text, tmp_path)
    assert result.code == 1
    assert "webhookUrl: the webhook server is not enabled" in result.stderr


def test_webhook_url_uses_the_public_url(tmp_path: Path) -> None:
    text = 'mission W { store s: memory("s") action A { store { id: "u", url: webhookUrl("/x/1") } -> s } run A }'
    result = run_mission_text(text, tmp_path, "--webhook-port", "0", "--webhook-url", "https://hooks.example/")
    assert result.code == 0, result.stderr
    assert result.stores["s"] == [{"id": "u", "url": "https://hooks.example/x/1"}]


def test_json_log_has_one_event_per_webhook_request_without_bodies(tmp_path: Path,
                                                                   demo_server: ThreadedServer) -> None:
    result = run_mission_text(SUBMIT, tmp_path, "--webhook-port", "0", "--json-log", url=demo_server.url)
    assert result.code == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]
    hooks = [e for e in events if e["event"] == "webhook.event"]
    assert [(e["path"], e["status"]) for e in hooks] == [("/cb/one", 202), ("/cb/one", 202)]
    assert all("queued" not in json.dumps(e) and "done" not in json.dumps(e) for e in hooks)
    assert any(e["event"] == "webhook.listening" for e in events)


def test_port_in_use_is_a_configuration_error(tmp_path: Path, demo_server: ThreadedServer) -> None:
    result = run_mission_text(SUBMIT, tmp_path, "--webhook-port", str(demo_server.port), url=demo_server.url)
    assert result.code == 3
    assert f"webhook server cannot listen on 127.0.0.1:{demo_server.port}" in result.stderr


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_bad_webhook_requests_get_their_status_and_never_disturb_the_waiting_mission(tmp_path: Path) -> None:
    """A `reqon run` process waits on /cb/good; junk arrives first, then the real event."""
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    mission = tmp_path / "wait.vague"
    mission.write_text("""
    mission Waits {
      store got: file("got")
      action Listen {
        wait { path: "/cb/good", timeout: 120s, storage: { target: got, key: .id } }
      }
      run Listen
    }""", encoding="utf-8")
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "reqon.cli", "run", str(mission), "--webhook-port", str(port),
                                "--data-dir", str(tmp_path / "data")], stderr=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[2])

    def send(path: str, body: bytes, method: str = "POST") -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=60) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (urllib.error.URLError, ConnectionError):
            return 0
    try:
        deadline = time.monotonic() + 90
        while send("/cb/good", b"not json") != 400:  # up, and the wait step has registered the path
            assert process.poll() is None and time.monotonic() < deadline, "the wait step never registered"
            time.sleep(0.05)
        assert send("/cb/good", b"x" * (2 * 1024 * 1024)) == 413
        assert send("/cb/other", b"{}") == 404
        assert send("/cb/good", b"", method="GET") == 405
        assert send("/cb/good", b'{"id": "e1", "ok": true}') == 202
        _, stderr = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    stored = json.loads((tmp_path / "data" / "got.json").read_text("utf-8"))
    assert stored == {"e1": {"id": "e1", "ok": True}}


def test_wait_in_a_parallel_loop_each_iteration_its_own_path(tmp_path: Path, make_server: object) -> None:
    server = make_server()  # type: ignore[operator]
    text = """
    mission Loop {
      source Demo { auth: none, base: env("DEMO_URL") }
      store results: memory("results")
      action Each {
        for name in ["a", "b", "c"] parallel {
          post "/jobs" { body: { callback: webhookUrl("/cb/" + name), ms: 50 } }
          wait { path: "/cb/" + name, timeout: 60s, expectedEvents: 2 }
          store { id: name, states: [response[0].state, response[1].state] } -> results
        }
      }
      run Each
    }"""
    result = run_mission_text(text, tmp_path, "--webhook-port", "0", url=server.url)
    assert result.code == 0, result.stderr
    assert {r["id"]: r["states"] for r in result.stores["results"]} == {n: ["queued", "done"] for n in "abc"}
    assert server.stats.count("/jobs") == 3
