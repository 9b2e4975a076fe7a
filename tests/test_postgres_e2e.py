"""`reqon run --database postgresql://…` end to end, against the session's real PostgreSQL server.

Concurrency is checked by what the database holds afterwards (every key once, every field
of every branch present), crashes by real SIGKILLs of `reqon run` processes, and secrets by
grepping every output for the password.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp import web

from reqon.cli import main
from reqon.demo.server import ThreadedServer
from tests.conftest import run_mission_text, start_reqon_run
from tests.pg_server import PostgresServer, ServerUnavailable

ROOT = Path(__file__).resolve().parents[1]
BRANCHES = 8
RECORDS = 5000


def upserting_mission(name: str, prefix: str, records: int = RECORDS, page: int = 500) -> str:
    """BRANCHES parallel branches, each upserting its own field into every record of `shelf`."""
    actions = "\n".join(f"""
  action {prefix}{b} {{
    get "/pages" {{ params: {{ size: {page}, total: {records} }}, paginate: page(page, {page}), items: "items" }}
    map response -> Row {{ id: .id, {prefix}{b}: .value }}
    store response -> shelf {{ upsert: true }}
  }}""" for b in range(BRANCHES))
    names = ", ".join(f"{prefix}{b}" for b in range(BRANCHES))
    return f"""
mission {name} {{
  source Demo {{ auth: none, base: env("DEMO_URL") }}
  store shelf: sql("shelf")
{actions}
  run [{names}]
}}
"""


def table(url: str, name: str = "shelf") -> dict[str, dict[str, Any]]:
    with psycopg.connect(url) as connection:
        return {key: record for key, record in
                connection.execute(f'SELECT key, record FROM "{name}" ORDER BY key').fetchall()}


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_eight_branches_upserting_one_store_lose_and_duplicate_nothing(
        pg_url: str, demo_server: Any, tmp_path: Path) -> None:
    result = run_mission_text(upserting_mission("Shelve", "a"), tmp_path, "--database", pg_url,
                              url=demo_server.url)
    assert result.code == 0, result.stderr
    rows = table(pg_url)
    assert sorted(rows) == sorted(str(i) for i in range(RECORDS))
    fields = {"id"} | {f"a{b}" for b in range(BRANCHES)}
    assert all(set(record) == fields and record["a3"] == f"item-{key}" for key, record in rows.items())
    assert len(result.stores["shelf"]) == RECORDS
    assert not (result.data_dir / "reqon.db").exists(), "sql stores must not fall back to SQLite"


def test_two_processes_upserting_one_store_at_once_lose_nothing(
        pg_url: str, demo_server: Any, tmp_path: Path) -> None:
    processes = []
    for name, prefix in (("ShelveA", "a"), ("ShelveB", "b")):
        mission = tmp_path / f"{name}.vague"
        mission.write_text(upserting_mission(name, prefix))
        processes.append(start_reqon_run(mission, tmp_path / f"data-{name}", tmp_path / f"{name}.json",
                                         demo_server.url, "--database", pg_url))
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    rows = table(pg_url)
    assert len(rows) == RECORDS
    fields = {"id"} | {f"{p}{b}" for p in "ab" for b in range(BRANCHES)}
    assert all(set(record) == fields for record in rows.values())
    with psycopg.connect(pg_url) as connection:  # run states of different missions do not collide
        states = dict(connection.execute("SELECT mission, state->>'status' FROM reqon_runs").fetchall())
    assert states == {"ShelveA": "succeeded", "ShelveB": "succeeded"}


def test_the_database_url_comes_from_the_environment_and_the_flag_wins(
        pg_url: str, pg_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mission = tmp_path / "m.vague"
    mission.write_text("""
mission Note {
  store notes: sql("notes")
  action Put { store { id: 1, text: "kept" } -> notes }
  run Put
}
""")
    monkeypatch.setenv("REQON_DATABASE_URL", pg_url)
    code, _, err = cli("run", str(mission), "--data-dir", str(tmp_path / "data"))
    assert code == 0, err
    assert table(pg_url, "notes") == {"1": {"id": 1, "text": "kept"}}
    wrong = pg_server.url(pg_url.rsplit("/", 1)[1], password="wrong-password-123")
    code, _, err = cli("run", str(mission), "--data-dir", str(tmp_path / "data"), "--database", wrong)
    assert code == 3 and "password authentication failed" in err


@pytest.mark.parametrize("problem", ["password", "refused", "database"])
def test_connection_problems_are_configuration_errors_naming_the_server(
        problem: str, pg_url: str, pg_server: Any, tmp_path: Path) -> None:
    database = pg_url.rsplit("/", 1)[1]
    url, says = {
        "password": (pg_server.url(database, password="not-the-password-42"),
                     'password authentication failed for user "reqon"'),
        "refused": (f"postgresql://reqon:{pg_server.password}@127.0.0.1:{_closed_port()}/{database}",
                    "Connection refused"),
        "database": (pg_server.url("no_such_db"), 'database "no_such_db" does not exist'),
    }[problem]
    mission = tmp_path / "m.vague"
    mission.write_text('mission M { store s: sql("s")\n action A { store { id: 1 } -> s }\n run A }\n')
    process = subprocess.run([sys.executable, "-m", "reqon.cli", "run", str(mission), "--database", url,
                              "--data-dir", str(tmp_path / "data"), "--output", "-"],
                             capture_output=True, text=True, cwd=ROOT, timeout=60)
    port = url.split("@", 1)[1].split("/", 1)[0].split(":")[1]
    assert process.returncode == 3, process.stderr
    assert process.stderr.startswith(f"reqon: configuration error: cannot connect to PostgreSQL at 127.0.0.1:{port}, "
                                     f"database {'no_such_db' if problem == 'database' else database}")
    assert says in process.stderr and process.stdout == ""
    assert process.stderr.count("\n") == 1, "one line, no traceback"
    for secret in (pg_server.password, "not-the-password-42"):
        assert secret not in process.stderr
    assert not (tmp_path / "data" / "runs").exists(), "nothing may run before the database is reachable"


def _closed_port() -> int:
    from tests.pg_server import free_port
    return free_port()


# ---------------------------------------------------------------- crashes


def _stores_after(url: str) -> dict[str, dict[str, Any]]:
    return table(url)


def test_kill_9_mid_run_then_resume_gives_the_tables_of_an_uninterrupted_run(
        pg_server: Any, demo_server: Any, tmp_path: Path) -> None:
    mission = tmp_path / "Kill.vague"
    mission.write_text(upserting_mission("Kill", "k", records=3000, page=100))
    reference = pg_server.create_database()
    done = start_reqon_run(mission, tmp_path / "ref", tmp_path / "ref.json", demo_server.url, "--database", reference)
    assert done.wait(timeout=300) == 0
    expected = table(reference)

    url = pg_server.create_database()
    process = start_reqon_run(mission, tmp_path / "data", tmp_path / "out.json", demo_server.url, "--database", url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:  # kill once some rows are committed
        if _count(url) >= 500:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    interrupted = table(url)
    assert 0 < len(interrupted) and all(record["id"] == int(key) for key, record in interrupted.items())
    resumed = start_reqon_run(mission, tmp_path / "data", tmp_path / "out.json", demo_server.url,
                              "--database", url, "--resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert table(url) == expected


def _count(url: str) -> int:
    try:
        with psycopg.connect(url) as connection:
            row = connection.execute('SELECT count(*) FROM "shelf"').fetchone()
            return int(row[0]) if row else 0
    except psycopg.Error:
        return 0  # the table is not created yet


class Gate:
    """An HTTP endpoint that answers only when the test opens the gate, and says when it was hit."""

    def __init__(self) -> None:
        self.hit = threading.Event()
        self.open = threading.Event()
        app = web.Application()
        app.router.add_get("/late", self._late)
        self.server = ThreadedServer(app)

    async def _late(self, request: web.Request) -> web.Response:
        import asyncio
        self.hit.set()
        while not self.open.is_set():
            await asyncio.sleep(0.02)
        return web.json_response([{"id": n, "late": True} for n in range(100, 110)])


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test alone, since the test stops it."""
    server = PostgresServer()
    try:
        server.start()
    except ServerUnavailable as exc:
        server.destroy()
        if os.environ.get("CI") == "true":
            pytest.fail(f"no PostgreSQL server could be started: {exc}", pytrace=False)
        pytest.skip(f"no PostgreSQL server could be started: {exc}")
    yield server
    server.destroy()


def test_a_server_stopped_mid_run_fails_the_step_keeps_committed_rows_and_resume_finishes(
        own_server: PostgresServer, tmp_path: Path) -> None:
    gate = Gate()
    url = own_server.create_database()
    mission = tmp_path / "Late.vague"
    mission.write_text("""
mission Late {
  source Api { auth: none, base: env("DEMO_URL"), timeout: 60s }
  store rows: sql("rows")
  action First { store [{ id: 1, early: true }, { id: 2, early: true }] -> rows }
  action Second {
    get "/late"
    store response -> rows
  }
  run First then Second
}
""")
    try:
        process = start_reqon_run(mission, tmp_path / "data", tmp_path / "out.json", gate.server.url,
                                  "--database", url)
        assert gate.hit.wait(120), "the second stage never fetched"
        own_server.stop("fast")
        gate.open.set()
        out, err = process.communicate(timeout=120)
        assert process.returncode == 1, err
        assert "stage 2 Second failed" in err
        assert f"PostgreSQL at 127.0.0.1:{own_server.port}, database {url.rsplit('/', 1)[1]}" in err
        assert "cannot write to table rows" in err
        assert "Traceback" not in err and own_server.password not in err + out
        own_server.resume()
        assert table(url, "rows") == {"1": {"id": 1, "early": True}, "2": {"id": 2, "early": True}}
        gate.open.set()
        resumed = start_reqon_run(mission, tmp_path / "data", tmp_path / "out.json", gate.server.url,
                                  "--database", url, "--resume")
        _, err = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, err
        assert "1 of 2 stages done earlier" in err
        rows = table(url, "rows")
        assert len(rows) == 12 and rows["105"] == {"id": 105, "late": True}
        state = json.dumps(rows) + (tmp_path / "out.json").read_text()
        for path in (tmp_path / "data").rglob("*"):
            if path.is_file():
                state += path.read_text(errors="replace")
        assert own_server.password not in state
    finally:
        gate.open.set()
        gate.server.close()


def test_the_repl_shows_and_queries_sql_stores_in_postgresql(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute('CREATE TABLE "books" (key TEXT COLLATE "C" PRIMARY KEY, record JSONB NOT NULL, '
                           "updated_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        connection.execute("""INSERT INTO books (key, record) VALUES ('b', '{"id": "b", "pages": 9}')""")
    script = "\n".join([
        'store books: sql("books")',
        'store { id: "a", pages: 412 } -> books',
        "count(books)",
        'books["b"].pages',
        ":stores",
    ]) + "\n"
    process = subprocess.run([sys.executable, "-m", "reqon.cli", "repl", "--database", pg_url,
                              "--data-dir", str(tmp_path / "data")],
                             input=script, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert process.returncode == 0, process.stderr
    lines = process.stdout.splitlines()
    assert lines[:2] == ["2", "9"], process.stdout
    assert "books" in process.stdout and "sql" in process.stdout
    assert table(pg_url, "books")["a"] == {"id": "a", "pages": 412}
    assert not (tmp_path / "data" / "reqon.db").exists()
    bad = subprocess.run([sys.executable, "-m", "reqon.cli", "repl", "--database",
                          pg_url.replace(":pw-", ":wrong-pw-")], input="", capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert bad.returncode == 3 and "password authentication failed" in bad.stderr


def test_the_password_appears_nowhere(pg_url: str, pg_server: Any, demo_server: Any, tmp_path: Path) -> None:
    """Every output of verbose, JSON-log, dry and failing runs, the data directory and every
    table reqon wrote: the password is in none of them."""
    mission = tmp_path / "m.vague"
    mission.write_text("""
mission Sync {
  source Demo { auth: none, base: env("DEMO_URL") }
  store items: sql("items")
  action Load {
    get "/pages" { params: { size: 50, total: 120 }, paginate: page(page, 50), items: "items",
                   since: lastSync("pages") }
    store response -> items { upsert: true }
  }
  action Break { store [{ id: 1 }, 7] -> items }
  run Load then Break
}
""")
    seen = []
    for extra in (["-v"], ["--json-log"], ["--dry-run"]):
        process = subprocess.run([sys.executable, "-m", "reqon.cli", "run", str(mission), "--database", pg_url,
                                  "--data-dir", str(tmp_path / "data"), "--output", str(tmp_path / "out.json"),
                                  *extra], capture_output=True, text=True, cwd=ROOT, timeout=120,
                                 env=dict(os.environ, DEMO_URL=demo_server.url))
        assert process.returncode == (0 if extra == ["--dry-run"] else 1), process.stderr
        seen.append(process.stdout + process.stderr)
    assert "store: element 2 is a number, expected an object" in seen[0], seen[0]
    database = pg_url.rsplit("/", 1)[1]
    assert f'store items: sql("items") in PostgreSQL at 127.0.0.1:{pg_server.port}, database {database}' in seen[2]
    with psycopg.connect(pg_url) as connection:
        for (name,) in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall():
            seen.append(json.dumps(connection.execute(f'SELECT * FROM "{name}"').fetchall(), default=str))
        assert connection.execute("SELECT count(*) FROM reqon_checkpoints").fetchone() == (1,)
    seen += [path.read_text(errors="replace") for path in tmp_path.rglob("*") if path.is_file()
             and path.name != "m.vague"]
    assert len(seen) > 5
    for text in seen:
        assert pg_server.password not in text


def test_run_state_lives_in_postgresql_one_run_per_mission_holds_the_lock(
        pg_url: str, tmp_path: Path) -> None:
    """The run state and history are rows of reqon_runs / reqon_run_history; a second run of the
    mission is refused (exit 3) while the first holds the advisory lock, which a kill -9 releases;
    another mission is not held up; `reqon runs --database` lists what the database recorded."""
    gate = Gate()
    mission = tmp_path / "Late.vague"
    mission.write_text("""
mission Late {
  source Api { auth: none, base: env("DEMO_URL"), timeout: 60s }
  store rows: sql("rows")
  action Second {
    get "/late"
    store response -> rows
  }
  run Second
}
""")
    other = tmp_path / "Other.vague"
    other.write_text('mission Other { store rows: sql("rows")\n action A { store { id: 1, other: true } -> rows }\n'
                     " run A }\n")
    data = str(tmp_path / "data")
    try:
        first = start_reqon_run(mission, tmp_path / "data", tmp_path / "out.json", gate.server.url, "--database", pg_url)
        assert gate.hit.wait(120), "the first run never fetched"
        os.environ["DEMO_URL"] = gate.server.url
        # Another data directory (another machine, say): on the same one the mission's lock on the
        # data directory refuses it first (tests/test_locks.py); here the database's lock must.
        code, _, err = cli("run", str(mission), "--database", pg_url, "--data-dir", str(tmp_path / "elsewhere"))
        assert code == 3, err
        assert err.startswith("reqon: configuration error: mission Late is already running against PostgreSQL at "
                              "127.0.0.1:") and "advisory lock reqon:run:Late" in err
        code, _, err = cli("run", str(other), "--database", pg_url, "--data-dir", data)
        assert code == 0, err
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
        gate.open.set()
        deadline = time.monotonic() + 60
        while True:  # the server ends the killed run's session when it notices the closed socket
            code, _, err = cli("run", str(mission), "--database", pg_url, "--data-dir", data)
            if code != 3 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert code == 0, err
    finally:
        os.environ.pop("DEMO_URL", None)
        gate.open.set()
        gate.server.close()
    # With --database the snapshot and the history are rows; only the journal between two
    # snapshots and the mission's lock file are files of the data directory (docs/reliability.md).
    kept = sorted(p.name for p in (tmp_path / "data" / "runs").iterdir())
    assert kept == ["Late.journal", "Late.lock", "Other.journal", "Other.lock"], kept
    with psycopg.connect(pg_url) as connection:
        states = dict(connection.execute("SELECT mission, state->>'status' FROM reqon_runs").fetchall())
        history = connection.execute("SELECT mission, entry->>'status' FROM reqon_run_history "
                                     "ORDER BY recorded_at").fetchall()
    assert states == {"Late": "succeeded", "Other": "succeeded"}
    assert history == [("Other", "succeeded"), ("Late", "running"), ("Late", "succeeded")]
    code, out, err = cli("runs", "--database", pg_url)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["MISSION", "RUN", "TRIGGER", "STATUS", "STARTED", "DURATION"]
    assert [line.split()[0] + " " + line.split()[2] + " " + line.split()[3] for line in lines[1:]] == [
        "Late manual running", "Other manual succeeded", "Late manual succeeded"]
    assert "no end recorded" in lines[1]
    code, out, _ = cli("runs", str(other), "--database", pg_url)
    assert code == 0 and len(out.splitlines()) == 2


def test_a_password_from_pgpassword_works_and_is_never_shown(pg_url: str, pg_server: Any, tmp_path: Path) -> None:
    mission = tmp_path / "m.vague"
    mission.write_text('mission M { store s: sql("s")\n action A { store { id: 1 } -> s }\n run A }\n')
    without_password = pg_url.replace(f":{pg_server.password}@", "@")
    assert pg_server.password not in without_password
    outputs = []
    for password, expected in ((pg_server.password, 0), ("wrong-pgpassword-9", 3)):
        process = subprocess.run([sys.executable, "-m", "reqon.cli", "run", str(mission), "-v", "--database",
                                  without_password, "--data-dir", str(tmp_path / "data"), "--output", "-"],
                                 capture_output=True, text=True, cwd=ROOT, timeout=60,
                                 env=dict(os.environ, PGPASSWORD=password))
        assert process.returncode == expected, process.stderr
        outputs.append(process.stdout + process.stderr)
    assert '"id": 1' in outputs[0] and "password authentication failed" in outputs[1]
    assert all(pg_server.password not in text and "wrong-pgpassword-9" not in text for text in outputs)
