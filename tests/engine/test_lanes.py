"""Run lanes in the run state (reqon/engine/lanes.py, RunState.begin): a run recovers what a run
killed in another lane journaled, and leaves a lane a live run holds alone, with the run
records in files and in PostgreSQL.

In-process: a "killed" run is a RunState that journaled an iteration and never finished (with
PostgreSQL its connection is closed, which is what the server sees when a process dies); the
end-to-end kill is tests/daemon/test_lanes.py.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reqon import ast
from reqon.engine.lanes import lane_key, mission_lock_path
from reqon.engine.runstate import FileRunRecords, RunRecords, RunState, history_path, journal_path
from reqon.parser import parse
from reqon.stores import open_store
from reqon.stores.base import Store
from reqon.stores.locks import ProcessLock


def mission() -> ast.Mission:
    found = parse('mission Lane_x { store items: file("items") action A { skip } run A }').declarations[0]
    assert isinstance(found, ast.Mission)
    return found


def items(data: Path) -> Store:
    return open_store("file", "items", "items", data)


@pytest.fixture(params=["files", "postgres"])
def records(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], RunRecords]]:
    """A maker of run records, one per simulated process (its own connection with PostgreSQL)."""
    opened: list[Any] = []
    if request.param == "files":
        yield lambda: FileRunRecords(tmp_path)
        return
    from reqon.engine.runstate_postgres import PostgresRunStates
    from reqon.stores.postgres import PostgresDatabase
    url = request.getfixturevalue("pg_url")

    def make() -> RunRecords:
        database = PostgresDatabase.connect(url)
        opened.append(database)
        return PostgresRunStates(database)
    yield make
    for database in opened:
        asyncio.run(database.close())


async def killed_in_lane(make: Callable[[], RunRecords], data: Path, lane: int, key: str) -> RunRecords:
    """A run in `lane` that journaled one iteration writing `key`, then died without a flush."""
    records = make()
    state = await RunState.begin(records=records, data_dir=data, mission=mission(), stores={"items": items(data)},
                                 resume=False, notice=lambda level, message: None, trigger="schedule", lane=lane)
    state.iteration_completed("1.0/m:1:1", 0, "h", [["items", False, None, [[key, {"id": key}]]]])
    state.backend.close()  # the process's descriptors go with it
    database = getattr(records, "database", None)
    if database is not None:
        await database.close()  # the server drops the advisory lock with the session
    return records


def test_a_run_replays_and_forgets_a_killed_lane_and_leaves_a_held_one(
        tmp_path: Path, records: Callable[[], RunRecords]) -> None:
    notices: list[str] = []

    async def scenario() -> RunRecords:
        with ProcessLock(mission_lock_path(tmp_path, lane_key("Lane_x", 2)), "a live run in lane 3"):
            await killed_in_lane(records, tmp_path, 2, "from-lane-3")  # still held: a live run
            await killed_in_lane(records, tmp_path, 1, "from-lane-2")  # let go: a killed run
            fresh = records()
            store = items(tmp_path)
            state = await RunState.begin(records=fresh, data_dir=tmp_path, mission=mission(),
                                         stores={"items": store}, resume=False,
                                         notice=lambda level, message: notices.append(message))
            state.backend.close()
            await store.close()
        return fresh

    fresh = asyncio.run(scenario())
    stored = json.loads((tmp_path / "items.json").read_text("utf-8"))
    assert stored == {"from-lane-2": {"id": "from-lane-2"}}  # lane 3 is held: not touched
    assert notices == ["replayed the store writes of 1 loop iteration journaled by the last run in lane 2"]
    lanes = fresh.extra_lanes("Lane_x")
    assert lanes == ["Lane_x.3"]  # lane 2 forgotten, lane 3 kept for its own run
    assert fresh.read("Lane_x.3") is not None and fresh.read("Lane_x.2") is None
    assert not journal_path(tmp_path, "Lane_x.2").exists() and journal_path(tmp_path, "Lane_x.3").exists()
    entries, _ = fresh.history()
    assert [(e["mission"], e["lane"], e["status"]) for e in entries] == [("Lane_x", 2, "running")]
    if isinstance(fresh, FileRunRecords):
        assert history_path(tmp_path, "Lane_x").exists() and not history_path(tmp_path, "Lane_x.2").exists()


def test_another_missions_lanes_are_not_this_ones(tmp_path: Path, records: Callable[[], RunRecords]) -> None:
    """`Lane_x` must not pick up `LaneAx.2` (`_` is a LIKE wildcard) nor `Lane_x2`."""
    made = records()
    for key in ("LaneAx.2", "Lane_x2", "Lane_x.2", "Lane_x.10"):
        made.write(key, {"format": 1, "mission": key.split(".")[0], "status": "succeeded"})
    assert made.extra_lanes("Lane_x") == ["Lane_x.2", "Lane_x.10"]
