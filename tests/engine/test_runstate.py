"""Run-state writes when many branches settle at once: shared writes, never an older file over a newer one."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from reqon import ast
from reqon.engine.runstate import FileRunRecords, RunState, state_path
from reqon.parser import parse

BRANCHES = 10


def mission() -> ast.Mission:
    names = ", ".join(f"A{i}" for i in range(BRANCHES))
    actions = " ".join(f"action A{i} {{ skip }}" for i in range(BRANCHES))
    program = parse(f"mission Wide {{ {actions} run [{names}] }}")
    found = program.declarations[0]
    assert isinstance(found, ast.Mission)
    return found


async def begin(data_dir: Path) -> RunState:
    return await RunState.begin(records=FileRunRecords(data_dir), data_dir=data_dir, mission=mission(), stores={},
                                resume=False, notice=lambda level, message: None)


def test_branches_settling_together_are_all_recorded_with_fewer_writes(tmp_path: Path) -> None:
    writes: list[int] = []

    async def run() -> None:
        state = await begin(tmp_path)
        replace = state._replace

        def counted(version: int, document: dict[str, Any]) -> None:  # the real write, counted
            writes.append(version)
            replace(version, document)

        state._replace = counted  # type: ignore[method-assign]
        await asyncio.gather(*(state.branch_completed(1, i) for i in range(BRANCHES)))

    asyncio.run(run())
    recorded = json.loads(state_path(tmp_path, "Wide").read_text())
    assert sorted(recorded["stages"][0]["completedBranches"]) == list(range(BRANCHES))
    assert recorded["status"] == "running"
    assert 1 <= len(writes) < BRANCHES
    assert writes == sorted(writes)  # each shared write covers a later version than the one before


def test_a_late_write_of_an_older_version_never_replaces_a_newer_file(tmp_path: Path) -> None:
    state = asyncio.run(begin(tmp_path))
    path = state_path(tmp_path, "Wide")
    newer = state._on_disk + 2
    state._replace(newer, {"version": "newer"})
    state._replace(newer - 1, {"version": "older"})  # e.g. a cancelled branch's write finishing late
    assert json.loads(path.read_text()) == {"version": "newer"}
