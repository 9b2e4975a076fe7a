"""`reqon run` as the user sees it (LANGUAGE.md §8): exit codes, options and output streams.

Most tests run the CLI in-process (`run_mission_text`); the signal tests start a real
process, since exit codes 130/143 only mean something there. No test may ever see a
Python traceback on stderr.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reqon.demo.server import ThreadedServer
from tests.conftest import RunResult, run_mission_text, start_reqon_run

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[1]
SOURCE = 'source Api { auth: none, base: env("DEMO_URL") }'
GOOD = f"""
mission Good {{
  {SOURCE}
  store zeta: memory("zeta")
  store alpha: file("alpha")
  action Load {{
    get "/items/2"
    store [{{ id: "b", n: 2 }}, {{ id: "a", n: 1 }}, {{ id: "10", n: 10 }}] -> alpha
    store response -> zeta
  }}
  run Load
}}
"""
FAILING = f"""
mission Failing {{
  {SOURCE}
  store kept: memory("kept")
  action Write {{ store {{ id: "w" }} -> kept }}
  action Break {{
    get "/fail" {{ params: {{ status: 503 }}, retry: {{ maxAttempts: 1 }} }}
  }}
  run Write then Break
}}
"""


def run(text: str, tmp_path: Path, server: ThreadedServer, *args: str) -> RunResult:
    server.stats.reset()
    result = run_mission_text(text, tmp_path, *args, url=server.url)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    assert "internal error" not in result.stderr, result.stderr
    return result


# --------------------------------------------------------------------------- exit codes


def test_success_exits_0_and_prints_the_summary(tmp_path: Path, demo_server: ThreadedServer) -> None:
    result = run(GOOD, tmp_path, demo_server)
    assert result.code == 0
    assert "mission Good succeeded" in result.stderr
    assert "stage 1 Load: succeeded" in result.stderr
    assert "records written: alpha 3, zeta 1" in result.stderr
    assert result.stdout == ""  # stdout carries only data the user asked for


def test_a_failing_mission_exits_1_naming_action_stage_and_position(tmp_path: Path,
                                                                    demo_server: ThreadedServer) -> None:
    result = run(FAILING, tmp_path, demo_server)
    assert result.code == 1
    assert "error: stage 2 Break failed" in result.stderr
    assert re.search(r"  Break: \S+mission\.vague:7:5: http: GET http://127\.0\.0\.1:\d+/fail\?status=503 "
                     r"returned 503 Service Unavailable after 1 attempt", result.stderr), result.stderr
    assert "mission Failing failed" in result.stderr


def test_static_errors_exit_2_and_run_nothing(tmp_path: Path, demo_server: ThreadedServer) -> None:
    text = GOOD.replace("-> zeta", "-> zetaa")
    result = run(text, tmp_path, demo_server)
    assert result.code == 2
    assert "error[E206]" in result.stderr and "zetaa" in result.stderr
    assert demo_server.stats.total == 0
    assert result.stores == {}  # the Run step was never reached, so no --output


def test_syntax_errors_exit_2(tmp_path: Path, demo_server: ThreadedServer) -> None:
    result = run("mission Broken { run }", tmp_path, demo_server)
    assert result.code == 2
    assert "error[" in result.stderr


@pytest.mark.parametrize("args", [
    ["--verbose", "--quiet"],
    ["--max-concurrency", "0"],
    ["--max-concurrency", "many"],
    ["--mode", "sometimes"],
    ["--no-such-option"],
])
def test_usage_errors_exit_2(tmp_path: Path, demo_server: ThreadedServer, args: list[str]) -> None:
    result = run(GOOD, tmp_path, demo_server, *args)
    assert result.code == 2
    assert result.stderr.startswith("reqon: usage error:"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert demo_server.stats.total == 0


def test_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = call_main(["run", str(tmp_path / "nope.vague")])
    assert code == 2 and err.startswith("reqon: usage error:") and "nope.vague" in err


def call_main(argv: list[str]) -> tuple[int, str, str]:
    import contextlib
    import io

    from reqon.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    assert "Traceback" not in err.getvalue()
    return code, out.getvalue(), err.getvalue()


def test_several_missions_need_mission_exit_3(tmp_path: Path, demo_server: ThreadedServer) -> None:
    two = GOOD + GOOD.replace("mission Good", "mission Other")
    result = run(two, tmp_path, demo_server)
    assert result.code == 3
    assert result.stderr.startswith("reqon: configuration error:")
    assert "Good" in result.stderr and "Other" in result.stderr
    chosen = run(two, tmp_path, demo_server, "--mission", "Other")
    assert chosen.code == 0, chosen.stderr
    assert "mission Other succeeded" in chosen.stderr
    unknown = run(two, tmp_path, demo_server, "--mission", "Nobody")
    assert unknown.code == 3 and "Good" in unknown.stderr and "Other" in unknown.stderr


def test_a_missing_credential_exits_3_naming_source_and_field(tmp_path: Path, demo_server: ThreadedServer) -> None:
    os.environ.pop("REQON_VAULT_TOKEN", None)
    text = GOOD.replace("auth: none", "auth: bearer").replace("source Api", "source Vault")
    result = run(text, tmp_path, demo_server)
    assert result.code == 3
    assert result.stderr.startswith("reqon: configuration error:")
    assert "Vault" in result.stderr and "token" in result.stderr
    assert demo_server.stats.total == 0
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_a_bad_base_url_exits_3(tmp_path: Path, demo_server: ThreadedServer) -> None:
    text = GOOD.replace('env("DEMO_URL")', '"ftp://example.org"')
    result = run(text, tmp_path, demo_server)
    assert result.code == 3
    assert "base" in result.stderr and result.stderr.startswith("reqon: configuration error:")


def test_a_missing_env_file_exits_3(tmp_path: Path, demo_server: ThreadedServer) -> None:
    result = run(GOOD, tmp_path, demo_server, "--env", str(tmp_path / "missing.env"))
    assert result.code == 3
    assert result.stderr.startswith("reqon: configuration error:")


def test_env_file_supplies_credentials_that_never_show(tmp_path: Path, demo_server: ThreadedServer) -> None:
    os.environ.pop("REQON_ECHOER_TOKEN", None)
    env_file = tmp_path / "creds.env"
    env_file.write_text("REQON_ECHOER_TOKEN=tok-3141592653\n", encoding="utf-8")
    text = """
mission Creds {
  source Echoer { auth: bearer, base: env("DEMO_URL") }
  store seen: memory("seen")
  action Call {
    post "/echo" { body: { hello: "world" } }
    store { id: "h", auth: response.headers.Authorization ?? response.headers.authorization } -> seen
  }
  run Call
}
"""
    try:
        result = run(text, tmp_path, demo_server, "--env", str(env_file), "--verbose")
    finally:
        os.environ.pop("REQON_ECHOER_TOKEN", None)
    assert result.code == 0, result.stderr
    assert result.stores["seen"] == [{"id": "h", "auth": "Bearer tok-3141592653"}]  # mission data is not redacted
    assert "tok-3141592653" not in result.stderr


def test_the_typescript_form_without_run_is_accepted(tmp_path: Path, demo_server: ThreadedServer) -> None:
    mission = tmp_path / "m.vague"
    mission.write_text(GOOD, encoding="utf-8")
    os.environ["DEMO_URL"] = demo_server.url
    try:
        code, _, err = call_main([str(mission), "--data-dir", str(tmp_path / "d"), "--quiet"])
    finally:
        os.environ.pop("DEMO_URL", None)
    assert code == 0 and err == ""


# --------------------------------------------------------------------------- --dry-run


def test_dry_run_sends_nothing_writes_nothing_and_prints_the_plan(tmp_path: Path,
                                                                   demo_server: ThreadedServer) -> None:
    text = f"""
mission Plan {{
  maxConcurrency: 2
  {SOURCE}
  source Secret {{ auth: bearer {{ token: "s3cr3t-token-value" }}, base: env("DEMO_URL") }}
  store f: file("f")
  store q: sql("q")
  action A {{ get "/items/1" {{ source: Api }}
              store response -> f }}
  action B {{ get "/items/2" {{ source: Secret }}
              store response -> q }}
  action C {{ store {{ id: 1 }} -> f }}
  run A then [B, C] {{ mode: "race", timeout: 5s }} then C if count(f) > 0
}}
"""
    result = run(text, tmp_path, demo_server, "--dry-run")
    assert result.code == 0, result.stderr
    assert demo_server.stats.total == 0
    assert not (tmp_path / "data").exists()
    assert result.stores == {}  # no --output either: the Run step was not reached
    plan = result.stdout
    assert "mission Plan" in plan
    assert "stage 1 A" in plan
    assert re.search(r"stage 2 \[B, C\] \(mode race, limit 2, timeout 5s\)", plan), plan
    assert re.search(r"stage 3 C .*if count\(f\) > 0", plan), plan
    assert "s3cr3t-token-value" not in plan + result.stderr


def test_dry_run_still_reports_configuration_errors(tmp_path: Path, demo_server: ThreadedServer) -> None:
    os.environ.pop("REQON_VAULT_TOKEN", None)
    text = GOOD.replace("auth: none", "auth: bearer").replace("source Api", "source Vault")
    result = run(text, tmp_path, demo_server, "--dry-run")
    assert result.code == 3, result.stdout + result.stderr
    assert "Vault" in result.stderr


# --------------------------------------------------------------------------- --output


def test_output_is_sorted_indented_and_ends_with_a_newline(tmp_path: Path, demo_server: ThreadedServer) -> None:
    run(GOOD, tmp_path, demo_server)
    text = (tmp_path / "output.json").read_text("utf-8")
    expected = {
        "alpha": [{"id": "10", "n": 10}, {"id": "a", "n": 1}, {"id": "b", "n": 2}],
        "zeta": [{"id": 2, "value": "item-2"}],
    }
    assert text == json.dumps(expected, indent=2) + "\n"


def test_output_is_written_after_a_failure_too(tmp_path: Path, demo_server: ThreadedServer) -> None:
    result = run(FAILING, tmp_path, demo_server)
    assert result.code == 1
    assert result.stores == {"kept": [{"id": "w"}]}


def test_output_dash_goes_to_stdout(tmp_path: Path, demo_server: ThreadedServer) -> None:
    mission = tmp_path / "m.vague"
    mission.write_text(GOOD, encoding="utf-8")
    os.environ["DEMO_URL"] = demo_server.url
    try:
        code, out, err = call_main(["run", str(mission), "--output", "-", "--data-dir", str(tmp_path / "d")])
    finally:
        os.environ.pop("DEMO_URL", None)
    assert code == 0, err
    assert json.loads(out)["alpha"][0] == {"id": "10", "n": 10}
    assert "mission Good succeeded" in err and "{" not in err


# --------------------------------------------------------------------------- --quiet, --verbose, --json-log


def test_quiet_prints_nothing_on_success_even_with_warnings(tmp_path: Path, demo_server: ThreadedServer) -> None:
    text = GOOD.replace("  run Load", '  source Unused { auth: none, base: "http://127.0.0.1:9" }\n  run Load')
    assert "warning[W502]" in run(text, tmp_path, demo_server).stderr
    result = run(text, tmp_path, demo_server, "--quiet")
    assert result.code == 0
    assert result.stderr == ""


def test_quiet_prints_only_the_error_report_on_failure(tmp_path: Path, demo_server: ThreadedServer) -> None:
    result = run(FAILING, tmp_path, demo_server, "-q")
    assert result.code == 1
    assert result.stderr.startswith("error: stage 2 Break failed")
    assert "mission Failing failed" not in result.stderr
    assert "records written" not in result.stderr


def test_verbose_logs_branches_requests_and_store_steps(tmp_path: Path, demo_server: ThreadedServer) -> None:
    result = run(GOOD, tmp_path, demo_server, "--verbose")
    assert result.code == 0
    lines = result.stderr.splitlines()
    assert "stage 1 Load started" in lines
    assert "  Load started" in lines
    assert any(re.fullmatch(rf"    GET {re.escape(demo_server.url)}/items/2 200 \(attempt 1, \d+ms\)", line)
               for line in lines), lines
    assert "    store alpha: 3 records" in lines
    assert "    store zeta: 1 record" in lines
    assert any(re.fullmatch(r"  Load: completed \(\d+\.\d\ds\)", line) for line in lines)


def json_events(stderr: str) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in stderr.splitlines()]  # every line is JSON, or this raises
    for event in events:
        assert {"time", "level", "event", "mission"} <= set(event), event
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["time"])
    return events


def test_json_log_writes_only_json_lines_with_the_documented_fields(tmp_path: Path,
                                                                    demo_server: ThreadedServer) -> None:
    text = GOOD.replace("  run Load", '  source Unused { auth: none, base: "http://127.0.0.1:9" }\n  run Load')
    result = run(text, tmp_path, demo_server, "--json-log")
    assert result.code == 0
    events = json_events(result.stderr)
    names = [e["event"] for e in events]
    start = names.index("mission.start")
    assert start > 0 and set(names[:start]) == {"diagnostic"} and names[-1] == "mission.end"
    for expected in ("stage.start", "branch.start", "request", "store.write", "branch.end", "stage.end"):
        assert expected in names
    by_name = {e["event"]: e for e in events}
    unused = [e for e in events[:start] if e["code"] == "W502"]
    assert unused and unused[0]["level"] == "warning" and "Unused" in unused[0]["message"]
    assert by_name["stage.start"]["stage"] == 1 and by_name["stage.start"]["action"] == "Load"
    assert by_name["branch.end"]["outcome"] == "completed" and isinstance(by_name["branch.end"]["durationMs"], int)
    assert by_name["request"]["status"] == 200 and by_name["request"]["method"] == "GET"
    end = by_name["mission.end"]
    assert (end["outcome"], end["records"], end["errors"]) == ("succeeded", {"alpha": 3, "zeta": 1}, [])
    assert all(e["mission"] == "Good" for e in events)


def test_json_log_on_failure_names_kind_and_message(tmp_path: Path, demo_server: ThreadedServer) -> None:
    result = run(FAILING, tmp_path, demo_server, "--json-log")
    assert result.code == 1
    events = json_events(result.stderr)
    [failed] = [e for e in events if e["event"] == "branch.end" and e["action"] == "Break"]
    assert failed["outcome"] == "failed" and failed["kind"] == "http" and "returned 503" in failed["message"]
    assert events[-1]["event"] == "mission.end" and events[-1]["outcome"] == "failed"


# --------------------------------------------------------------------------- signals (real processes)


def start_process(text: str, tmp_path: Path, server: ThreadedServer, *args: str) -> subprocess.Popen[str]:
    mission = tmp_path / "m.vague"
    mission.write_text(text, encoding="utf-8")
    return start_reqon_run(mission, tmp_path / "d", tmp_path / "out.json", server.url, *args)


SLOW = f"""
mission Slow {{
  {SOURCE}
  store done: file("done")
  action First {{ store {{ id: "first" }} -> done }}
  action Wait {{
    get "/slow" {{ params: {{ ms: 10000 }} }}
    store {{ id: "never" }} -> done
  }}
  run First then [Wait]
}}
"""


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_cancels_writes_output_and_exits_with_the_signal_code(
        tmp_path: Path, make_server: Any, signum: int, code: int) -> None:
    server = make_server()
    process = start_process(SLOW, tmp_path, server)
    deadline = time.monotonic() + 20
    while server.stats.count("/slow") == 0 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    assert server.stats.count("/slow") == 1
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == code, stderr
    assert "interrupted — cancelling" in stderr
    assert "Traceback" not in stderr
    assert json.loads((tmp_path / "out.json").read_text("utf-8")) == {"done": [{"id": "first"}]}
    assert json.loads((tmp_path / "d" / "done.json").read_text("utf-8")) == {"first": {"id": "first"}}
    deadline = time.monotonic() + 3
    while server.stats.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.stats.in_flight == 0 and server.stats.aborted == 1


# --------------------------------------------------------------------------- the installed command


def test_the_reqon_command_keeps_exit_codes_and_every_byte_of_output(tmp_path: Path,
                                                                     demo_server: ThreadedServer) -> None:
    """`reqon` (cli.entry) leaves without the interpreter's teardown: what `main` printed
    must still arrive whole through a pipe, and its exit code must be the process's."""
    reqon = Path(sys.executable).with_name("reqon")
    env = {**os.environ, "DEMO_URL": demo_server.url}
    good = tmp_path / "good.vague"
    good.write_text(GOOD, encoding="utf-8")
    done = subprocess.run([str(reqon), "run", str(good), "-q", "--output", "-", "--data-dir", str(tmp_path / "d")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    (tmp_path / "again").mkdir()
    in_process = run(GOOD, tmp_path / "again", demo_server, "-q")
    assert json.loads(done.stdout) == in_process.stores
    failing = tmp_path / "failing.vague"
    failing.write_text(FAILING, encoding="utf-8")
    failed = subprocess.run([str(reqon), "run", str(failing), "--data-dir", str(tmp_path / "f")],
                            capture_output=True, text=True, env=env, timeout=60)
    assert failed.returncode == 1
    assert "503" in failed.stderr and "Traceback" not in failed.stderr
    usage = subprocess.run([str(reqon), "run"], capture_output=True, text=True, env=env, timeout=60)
    assert usage.returncode == 2 and "usage error" in usage.stderr
