"""The `RunStateBackend` contract (reqon/engine/journal.py), run against every backend there is:
`FileBackend`, reqon's, and `bench.journal.SqliteBackend`, the SQLite alternative issue 12
measured it against (so the figures in bench/README.md compare two correct implementations).
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bench.journal import SqliteBackend, backend_for
from reqon.engine.journal import FileBackend

KINDS = ["file", "sqlite"]
REPO = Path(__file__).resolve().parents[2]


def entry(i: int) -> dict[str, object]:
    return {"k": "1.0/m.vague:3:5", "i": i, "h": f"{i:016x}", "n": 100,
            "w": [["results", False, None, [[str(i), {"id": i, "name": "é\u2028\"quoted\""}]]]]}


@pytest.mark.parametrize("kind", KINDS)
def test_entries_come_back_in_order_from_a_position(kind: str, tmp_path: Path) -> None:
    backend = backend_for(kind, tmp_path)
    backend.start_journal("j1")
    assert backend.position() == 0
    for i in range(3):
        backend.append(entry(i))
    middle = backend.position()
    assert middle > 0
    for i in range(3, 5):
        backend.append(entry(i))
    assert backend.position() > middle
    assert backend.entries("j1", 0) == [entry(i) for i in range(5)]
    assert backend.entries("j1", middle) == [entry(3), entry(4)]
    assert backend.entries("another", 0) == []  # a journal the snapshot does not name is void
    backend.close()
    assert backend.entries("j1", middle) == [entry(3), entry(4)]  # closing keeps them


@pytest.mark.parametrize("kind", KINDS)
def test_a_new_journal_voids_the_old_one_and_starts_at_zero(kind: str, tmp_path: Path) -> None:
    backend = backend_for(kind, tmp_path)
    backend.start_journal("old")
    backend.append(entry(1))
    backend.start_journal("new")
    assert backend.position() == 0
    backend.append(entry(2))
    assert backend.entries("old", 0) == []
    assert backend.entries("new", 0) == [entry(2)]
    backend.close()


@pytest.mark.parametrize("kind", KINDS)
def test_appending_to_a_closed_journal_is_an_os_error(kind: str, tmp_path: Path) -> None:
    backend = backend_for(kind, tmp_path)
    with pytest.raises(OSError):
        backend.append(entry(0))
    assert backend.entries("j", 0) == []  # and reading a journal that was never started finds nothing


@pytest.mark.parametrize("kind", KINDS)
def test_the_snapshot_is_replaced_whole(kind: str, tmp_path: Path) -> None:
    backend = backend_for(kind, tmp_path)
    assert backend.read_snapshot() is None
    backend.write_snapshot({"journal": {"id": "a", "position": 0}})
    backend.write_snapshot({"journal": {"id": "b", "position": 7}})
    assert backend.read_snapshot() == {"journal": {"id": "b", "position": 7}}


@pytest.mark.parametrize("kind", KINDS)
def test_sync_in_another_thread_while_appending_loses_nothing(kind: str, tmp_path: Path) -> None:
    backend = backend_for(kind, tmp_path)
    backend.start_journal("j")
    stop = threading.Event()
    syncs = 0

    def syncing() -> None:
        nonlocal syncs
        while not stop.is_set():
            backend.sync()
            syncs += 1

    thread = threading.Thread(target=syncing)
    thread.start()
    try:
        for i in range(2000):
            backend.append(entry(i))
    finally:
        stop.set()
        thread.join()
    assert syncs > 0
    assert [e["i"] for e in backend.entries("j", 0)] == list(range(2000))
    backend.close()


@pytest.mark.parametrize("kind", KINDS)
def test_an_appended_entry_survives_a_killed_process(kind: str, tmp_path: Path) -> None:
    """`append` returned: the entry is the operating system's, though the process dies
    without closing or syncing (SIGKILL)."""
    script = f"""
import json, os, signal, sys
from pathlib import Path
from bench.journal import backend_for
backend = backend_for({kind!r}, Path({str(tmp_path)!r}))
backend.start_journal("j")
for i in range(50):
    backend.append({{"i": i}})
print("appended", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert done.stdout == "appended\n"
    assert backend_for(kind, tmp_path).entries("j", 0) == [{"i": i} for i in range(50)]


def test_a_torn_last_line_of_the_file_journal_is_dropped(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path / "M.json", tmp_path / "M.journal")
    backend.start_journal("j")
    backend.append(entry(1))
    backend.close()
    with (tmp_path / "M.journal").open("a") as journal:
        journal.write(json.dumps(entry(2))[:20])  # a crash in the middle of the next write
    assert backend.entries("j", 0) == [entry(1)]


def test_the_sqlite_journal_is_in_wal_mode_with_synchronous_normal(tmp_path: Path) -> None:
    """What issue 12 named, and what bench/README.md's figures are of."""
    backend = SqliteBackend(tmp_path / "M.json", tmp_path / "M.journal.db")
    backend.start_journal("j")
    assert backend._db is not None
    assert backend._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert backend._db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    backend.close()
