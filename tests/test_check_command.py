"""`reqon check` and `reqon parse` as a user runs them: real processes, hostile inputs, exit codes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC_EXAMPLES = ROOT.parent / "shared" / "spec" / "examples"
REQON = [sys.executable, "-m", "reqon.cli"]


def reqon(*args: str, cwd: Path | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*REQON, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def spec_paths() -> list[Path]:
    if not SPEC_EXAMPLES.is_dir():
        return []
    return sorted(SPEC_EXAMPLES.glob("*.vague")) + [SPEC_EXAMPLES / "10-multi-file"]


@pytest.mark.skipif(not SPEC_EXAMPLES.is_dir(), reason="../shared/spec/examples is not next to the repository")
def test_every_spec_example_checks_clean_in_one_process() -> None:
    done = reqon("check", *map(str, spec_paths()), *map(str, sorted((ROOT / "examples").glob("*.vague"))))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


@pytest.mark.skipif(not SPEC_EXAMPLES.is_dir(), reason="../shared/spec/examples is not next to the repository")
def test_parse_json_of_a_spec_example_has_the_documented_root() -> None:
    done = reqon("parse", "--json", str(SPEC_EXAMPLES / "01-parallel-fanout.vague"))
    assert done.returncode == 0
    data = json.loads(done.stdout)
    assert data["type"] == "Program" and data["declarations"][0]["type"] == "Mission"
    assert {"line", "column", "endLine", "endColumn"} <= set(data["declarations"][0])


def test_check_json_output_shape(tmp_path: Path) -> None:
    path = tmp_path / "shop.vague"
    path.write_text('mission Shop {\n  store prices: memory("p")\n  action A { store {} -> prise }\n  run A\n}\n')
    done = reqon("check", "--json", str(path))
    assert done.returncode == 1 and done.stderr == ""
    data = json.loads(done.stdout)
    assert data["errors"] == 1
    first = next(d for d in data["diagnostics"] if d["severity"] == "error")
    assert (first["code"], first["line"], first["column"], first["message"]) == ("E206", 3, 26, "unknown store 'prise'")
    assert first["notes"] == ["did you mean 'prices'?", 'declare it in the mission: store prise: memory("prise")']


def test_warnings_pass_unless_strict(tmp_path: Path) -> None:
    path = tmp_path / "w.vague"
    path.write_text('mission W {\n  store unused: memory("u")\n  action A { let x = 1 }\n  run A\n}\n')
    assert reqon("check", str(path)).returncode == 0
    assert reqon("check", "--strict", str(path)).returncode == 1


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    inputs = {
        "empty": b"",
        "binary": bytes(range(256)) * 40,
        "nested": b"mission M { action A { let x = " + b"[" * 10_000 + b"]" * 10_000 + b" } run A }",
        "long-line": b"mission M { action A { let x = \"" + b"a" * 1_000_000 + b"\" } run A }",
        "long-garbage-line": b"mission M { " + b"@" * 1_000_000 + b" }",
        "invalid-utf8": b"mission M {\n  action A { let x = \"\xff\xfe\" }\n  run A\n}\n",
        "unterminated": b"mission M { action A { let x = \"open",
    }
    paths = {}
    for name, data in inputs.items():
        paths[name] = tmp / f"{name}.vague"
        paths[name].write_bytes(data)
    (tmp / "no-root").mkdir()
    (tmp / "no-root" / "part.vague").write_text("action A { skip }")
    paths["directory-without-mission"] = tmp / "no-root"
    return paths


def test_a_one_megabyte_string_is_fine(tmp_path: Path) -> None:
    done = reqon("check", str(_bad_inputs(tmp_path)["long-line"]), timeout=20)
    assert done.returncode == 0 and "Traceback" not in done.stderr


@pytest.mark.parametrize("name", ["empty", "binary", "nested", "long-garbage-line", "invalid-utf8",
                                  "unterminated", "directory-without-mission"])
def test_hostile_input_gets_a_positioned_diagnostic_never_a_traceback(tmp_path: Path, name: str) -> None:
    path = _bad_inputs(tmp_path)[name]
    done = reqon("check", str(path), timeout=20)
    assert done.returncode == 1, done.stderr[-500:]
    assert "Traceback" not in done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith(str(path)) and ": error[E" in first
    line, column = first[len(str(path)) + 1:].split(":")[:2]
    assert int(line) >= 1 and int(column) >= 1


def test_invalid_utf8_points_at_the_bad_byte(tmp_path: Path) -> None:
    path = _bad_inputs(tmp_path)["invalid-utf8"]
    first = reqon("check", str(path)).stderr.splitlines()[0]
    assert first == f"{path}:2:23: error[E105]: the file is not valid UTF-8 (byte 0xff)"


def test_missing_file_is_a_usage_error() -> None:
    done = reqon("check", "/nonexistent/mission.vague")
    assert done.returncode == 2
    assert done.stderr.strip() == "reqon: usage error: no such file or directory: /nonexistent/mission.vague"


def test_multi_file_diagnostics_name_the_part_file(tmp_path: Path) -> None:
    (tmp_path / "actions").mkdir()
    (tmp_path / "mission.vague").write_text('mission M {\n  store s: memory("s")\n  run A\n}\n')
    (tmp_path / "actions" / "a.vague").write_text("action A {\n  store {} -> nope\n}\n")
    done = reqon("check", str(tmp_path))
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if ": error[" in line]
    assert errors == [f"{tmp_path / 'actions' / 'a.vague'}:2:15: error[E206]: unknown store 'nope'"]


def test_parse_text_output_and_usage_errors(tmp_path: Path) -> None:
    path = tmp_path / "m.vague"
    path.write_text('mission M { action A { get "/x" } run A }')
    done = reqon("parse", str(path))
    assert done.returncode == 0 and "Fetch @1:24 method='get'" in done.stdout
    assert reqon("parse", str(tmp_path)).returncode == 2
    assert reqon("frobnicate", "--bogus").returncode == 2
    assert reqon("--version").stdout == "reqon 0.1.0\n"


def test_colour_only_on_a_terminal_and_no_color_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "bad.vague"
    path.write_text("mission M { runn A }")
    assert "\x1b[" not in reqon("check", str(path)).stderr
