"""The command line around schedules: `reqon schedule`, bad input, usage errors (LANGUAGE.md §8, §8.2)."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from reqon.cli import main


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


GOOD = """
mission Nightly {
  schedule: cron "30 1 * * *"
  timezone: "America/New_York"
  action A { let x = 1 }
  run A
}
mission Quarterly {
  schedule: every 15 minutes
  action A { let x = 1 }
  run A
}
mission Manual { action A { let x = 1 } run A }
mission Past {
  schedule: at "2020-01-01T00:00:00Z"
  action A { let x = 1 }
  run A
}
"""


def test_reqon_schedule_prints_words_and_next_due_times_in_the_zone(tmp_path: Path) -> None:
    path = tmp_path / "m.vague"
    path.write_text(GOOD, encoding="utf-8")
    code, out, err = cli("schedule", str(path), "--next", "3")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == 'Nightly: cron "30 1 * * *": at 01:30 every day (America/New_York)'
    assert all(line.startswith("  ") and line.endswith(("EST", "EDT")) and " 01:30:00 " in line
               for line in lines[1:4])
    assert lines[4] == "Quarterly: every 15 minutes (UTC)"
    assert len([line for line in lines[5:8] if line.endswith(" UTC")]) == 3
    assert lines[8] == "Manual: no schedule (runs only when started)"
    assert lines[9:] == ["Past: once at 2020-01-01T00:00:00+00:00 (UTC)", "  never again (the instant is in the past)"]


BAD = """mission Bad {
  schedule: cron "61 * * * *"
  timezone: "Mars/Olympus"
  jitter: -5s
  action A { let x = 1 }
  run A
}
mission Loose {
  runImmediately: true
  action A { let x = 1 }
  run A
}
"""


def test_bad_schedules_are_positioned_errors_for_check_and_run(tmp_path: Path) -> None:
    path = tmp_path / "bad.vague"
    path.write_text(BAD, encoding="utf-8")
    code, _, err = cli("check", str(path))
    assert code == 1
    assert f"{path}:2:18: error[E307]: invalid cron expression \"61 * * * *\": the minute field is not valid" in err
    assert f"{path}:3:13: error[E307]: unknown timezone 'Mars/Olympus'" in err
    assert f"{path}:4:11: error[E306]: 'jitter' cannot be negative" in err
    assert f"{path}:9:3: error[E303]: 'runImmediately' is a scheduling setting, but the mission has no schedule" in err
    assert "Traceback" not in err
    for mode in ("--daemon", "--once"):
        code, _, run_err = cli("run", str(path), mode, "--data-dir", str(tmp_path / "data"))
        assert code == 2 and "error[E307]" in run_err and "error[E303]" in run_err
    assert not (tmp_path / "data").exists()  # nothing ran, nothing was created


@pytest.mark.parametrize("args, message", [
    (["--daemon", "--once"], "not allowed with argument --daemon"),
    (["--daemon", "--dry-run"], "--dry-run cannot be combined with --daemon"),
    (["--once", "--resume"], "--resume cannot be combined with --once"),
    (["--daemon", "--output", "x.json"], "--output cannot be combined with --daemon"),
    (["--webhook-port", "70000"], "expected a port number 0-65535, got 70000"),
])
def test_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    path = tmp_path / "m.vague"
    path.write_text(GOOD, encoding="utf-8")
    code, _, err = cli("run", str(path), *args)
    assert code == 2 and message in err, err


def test_scheduling_needs_a_scheduled_mission(tmp_path: Path) -> None:
    path = tmp_path / "m.vague"
    path.write_text(GOOD, encoding="utf-8")
    code, _, err = cli("run", str(path), "--once", "--mission", "Manual", "--data-dir", str(tmp_path / "d"))
    assert code == 3 and "no mission here has a schedule" in err
    code, _, err = cli("run", str(path), "--once", "--mission", "Nope", "--data-dir", str(tmp_path / "d"))
    assert code == 3 and "no mission named 'Nope' here; missions: Nightly, Quarterly, Manual, Past" in err


def test_credentials_are_resolved_before_anything_is_scheduled(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQON_VAULT_TOKEN", raising=False)
    path = tmp_path / "m.vague"
    path.write_text("""
    mission Secret {
      schedule: every 1 minute
      source Vault { auth: bearer, base: "http://127.0.0.1:9" }
      action A { get "/x" }
      run A
    }""", encoding="utf-8")
    for mode in ("--once", "--daemon"):
        code, _, err = cli("run", str(path), mode, "--data-dir", str(tmp_path / "data"))
        assert code == 3 and "reqon: configuration error:" in err and "REQON_VAULT_TOKEN" in err, err
        assert not (tmp_path / "data" / "runs").exists()  # no run was started
