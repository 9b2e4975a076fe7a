"""Start-up does only what the command needs: what `reqon run` and `reqon check` import (issue 14).

Timing lives in `bench/`; these tests pin the causes instead: the modules that a one-GET
mission must not import, because they cost start-up time and are needed only by other
features (Lark and the error translation for syntax errors, the timetable for schedules,
PyYAML for OpenAPI documents, jmespath for `jmes()`,
rich and prompt-toolkit for the REPL).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import MakeServer

LAZY = ("lark", "yaml", "jmespath", "rich", "prompt_toolkit", "pygments",
        "reqon.timetable", "reqon.syntax_errors")  # schedules only; syntax errors only

_PROBE = """
import json, sys
from reqon.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "imported": sorted(m for m in %r if m in sys.modules)}))
""" % (LAZY,)


def probe(tmp_path: Path, *argv: str) -> dict[str, object]:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    for _ in range(2):  # the first process writes the parser tables to the cache, the second reads them
        done = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_one_get_mission_imports_none_of_the_optional_heavy_modules(tmp_path: Path,
                                                                     make_server: MakeServer) -> None:
    server = make_server()
    mission = tmp_path / "one.vague"
    mission.write_text(f"""mission One {{
  source Api {{ auth: none, base: "{server.url}" }}
  store items: memory("items")
  action Get {{
    get "/items/1"
    store response -> items {{ key: toString(.id) }}
  }}
  run Get
}}
""")
    server.stats.reset()
    result = probe(tmp_path, "run", str(mission), "-q", "--data-dir", str(tmp_path / "data"))
    assert result == {"code": 0, "imported": []}
    assert server.stats.total == 2  # one GET per process


def test_check_of_a_valid_file_imports_none_of_them_and_a_jmes_query_brings_jmespath(tmp_path: Path) -> None:
    mission = tmp_path / "m.vague"
    mission.write_text('mission M { store s: memory("s") action A { let x = 1 store { id: x } -> s } run A }\n')
    assert probe(tmp_path, "check", str(mission)) == {"code": 0, "imported": []}
    mission.write_text('mission M { store s: memory("s") action A { let x = jmes({ a: 1 }, "a") '
                       'store { id: x } -> s } run A }\n')
    assert probe(tmp_path, "check", str(mission)) == {"code": 0, "imported": ["jmespath"]}
