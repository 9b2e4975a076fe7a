"""The scheduler's `Executor` interface (issue 15): which units a run hands to it, and what they say.

A recording executor runs every unit here, like the local one, and keeps each unit's
description, the very data a remote executor would ship: branches of parallel stages
and chunks of parallel loops go through it, single-action stages do not.
"""
from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from reqon.engine import runner
from reqon.engine.scheduler import LocalExecutor, Unit
from reqon.engine.units import BranchSpec, IterationsSpec
from tests.conftest import MakeServer, run_mission_text


class Recording(LocalExecutor):
    name = "recording"

    def __init__(self) -> None:
        self.specs: list[Any] = []

    def submit(self, unit: Unit) -> Awaitable[None]:
        self.specs.append(unit.describe())
        return unit.run_here()

    def chunk_size(self, iterations: int, limit: int) -> int:
        return 3


def test_branches_and_loop_chunks_go_through_the_executor(tmp_path: Path, make_server: MakeServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    recording = Recording()

    async def use_recording(mission: Any, prepared: Any, options: Any) -> None:
        prepared.evaluator.executor = recording
    monkeypatch.setattr(runner, "_start_executor", use_recording)
    server = make_server()
    text = """mission Units {
  source Api { auth: none, base: env("DEMO_URL") }
  store done: memory("done")
  action A { get "/slow" { params: { ms: 1 } } store { id: "a" } -> done }
  action B { store { id: "b", seen: length(done) } -> done }
  action Loop {
    concurrency: 2
    for n in [0, 1, 2, 3, 4, 5, 6] parallel { store { id: "n" + n } -> done }
  }
  run [A, B] then Loop
}
"""
    result = run_mission_text(text, tmp_path, url=server.url)
    assert result.code == 0, result.stderr
    assert len(result.stores["done"]) == 9
    branches = [s for s in recording.specs if isinstance(s, BranchSpec)]
    chunks = [s for s in recording.specs if isinstance(s, IterationsSpec)]
    assert [(b.action, b.stage, b.branch_index) for b in branches] == [("A", 1, 0), ("B", 1, 1)]
    assert branches[1].stores == {"done": 0} and branches[0].stores == {}  # B reads `done`; A only writes it
    assert [[n for n, _ in c.iterations] for c in chunks] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [c.iterations[0][1]["n"] for c in chunks] == [0, 3, 6]
    assert all((c.action, c.branch, c.stage) == ("Loop", "Loop", 2) for c in chunks)
    assert len(recording.specs) == 5  # the single-action stage itself ran here, not as a unit
