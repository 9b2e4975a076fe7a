"""Every concurrency rule of a run (LANGUAGE.md §7) lives here and nowhere else.

Two things run in parallel: the branches of a parallel stage and the iterations
of a `for … parallel` loop. Both go through one sliding window (`_Window`):
tasks start in source order, at most `limit` at a time, the next one whenever
one settles. What happens when a task fails is the policy on top: the four
stage modes of §7.3, stage timeouts (§7.5) and the first-failure rule of
parallel loops (§7.6). Cancellation is real asyncio cancellation, so a
cancelled branch aborts its in-flight HTTP requests at once.

Where a unit of work (a branch, or a chunk of a parallel loop's iterations) runs
is the `Executor`'s business: the window, the modes, the run state and the
stores stay here, on the driver, whatever the executor. `LocalExecutor` runs a
unit in the scheduler's own task (today's behaviour, at no cost); a remote
executor (reqon.engine.executors) ships its description and awaits the result.
"""
from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from reqon.errors import RunError

COMPLETED, FAILED, CANCELLED, NOT_STARTED = "completed", "failed", "cancelled", "not started"


class Mode(StrEnum):
    WAIT_ALL = "wait-all"
    FAIL_FAST = "fail-fast"
    BEST_EFFORT = "best-effort"
    RACE = "race"


@dataclass
class Outcome:
    status: str = NOT_STARTED
    error: RunError | None = None
    started: float | None = None
    ended: float | None = None

    @property
    def duration_s(self) -> float:
        if self.started is None or self.ended is None:
            return 0.0
        return self.ended - self.started

    @property
    def aborted(self) -> bool:
        return self.status == FAILED and self.error is not None and self.error.kind == "abort"


@dataclass
class StageOutcome:
    """How every branch of a stage ended, and what decided the stage."""

    outcomes: list[Outcome]
    mode: Mode
    decided_by: int | None = None  # fail-fast: first failure; race: the winner; abort: the aborting branch
    timed_out: bool = False
    aborted: bool = False

    @property
    def succeeded(self) -> bool:
        if self.aborted:
            return False
        if self.mode is Mode.BEST_EFFORT:
            return True
        if self.mode is Mode.RACE:
            return any(o.status == COMPLETED for o in self.outcomes)
        return all(o.status == COMPLETED for o in self.outcomes)

    def tolerated(self) -> list[int]:
        """Branches whose failure goes into `errors` (§7.4)."""
        if not self.succeeded or self.mode not in (Mode.BEST_EFFORT, Mode.RACE):
            return []
        return [i for i, o in enumerate(self.outcomes) if o.status == FAILED]


class Unit(Protocol):
    """One unit of work as the scheduler hands it to an executor.

    `run_here` runs it in this process; `describe` says what a remote executor ships
    (built only when asked, so that the local path pays nothing for it); `absorb`
    applies a remote unit's result (records, checkpoints, completed iterations) on
    the driver, where the stores and the run state live.
    """

    def run_here(self) -> Awaitable[None]: ...

    def describe(self) -> Any: ...

    def absorb(self, result: Any) -> Awaitable[None]: ...

    def cancelled_at(self, span: Any) -> None:
        """A remote unit was cancelled while running the step at `span` (§7.4 `at`)."""


class Executor(ABC):
    """Runs units. `submit` returns an awaitable outcome: awaiting it runs the unit to its
    end (a `RunError` is its failure); cancelling the task that awaits it cancels the unit,
    wherever it runs, and returns only once the unit has stopped (§7.1)."""

    name: str

    @abstractmethod
    def submit(self, unit: Unit) -> Awaitable[None]: ...

    def chunk_size(self, iterations: int, limit: int) -> int:
        """How many iterations of a parallel loop make one unit: one, here, so that the
        sliding window of §7.6 holds per iteration."""
        return 1

    async def close(self) -> None:
        """Release what the executor holds for the run."""


class LocalExecutor(Executor):
    """Runs a unit in the scheduler's own task, on this event loop: no copy, no extra task."""

    name = "local"

    def submit(self, unit: Unit) -> Awaitable[None]:
        return unit.run_here()


LOCAL = LocalExecutor()


Run = Callable[[int], Awaitable[None]]
Settled = Callable[[int, Outcome], None]


@dataclass
class _Window:
    """Starts `run(i)` for i in order, never more than `limit` at once."""

    count: int
    limit: int
    run: Run
    on_start: Callable[[int], None] | None = None
    outcomes: list[Outcome] = field(init=False)
    _next: int = 0
    _running: dict[asyncio.Task[Outcome], int] = field(default_factory=dict)
    _stopped: bool = False

    def __post_init__(self) -> None:
        self.outcomes = [Outcome() for _ in range(self.count)]

    @property
    def busy(self) -> bool:
        return bool(self._running) or (not self._stopped and self._next < self.count)

    def stop_starting(self) -> None:
        self._stopped = True

    def fill(self) -> None:
        while not self._stopped and self._next < self.count and len(self._running) < self.limit:
            i = self._next
            self._next += 1
            self.outcomes[i].started = time.monotonic()
            if self.on_start is not None:
                self.on_start(i)
            task = asyncio.get_running_loop().create_task(self._attempt(i))
            self._running[task] = i

    async def _attempt(self, i: int) -> Outcome:
        outcome = self.outcomes[i]
        try:
            await self.run(i)
            outcome.status = COMPLETED
        except RunError as exc:
            outcome.status, outcome.error = FAILED, exc
        except asyncio.CancelledError:
            outcome.status = CANCELLED
        outcome.ended = time.monotonic()
        return outcome

    async def next_settled(self, timeout: float | None = None) -> list[int] | None:
        """Indexes that settled since the last call; None when `timeout` passed first."""
        self.fill()
        if not self._running:
            return []
        done, _ = await asyncio.wait(self._running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            return None
        settled = []
        for task in done:
            settled.append(self._running.pop(task))
            task.result()  # re-raises a bug in a branch instead of hiding it
        return sorted(settled)

    async def cancel_running(self) -> list[int]:
        """Cancel everything in flight and wait until it has settled (§7.1 barrier)."""
        self.stop_starting()
        tasks = list(self._running)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        settled = [self._running.pop(t) for t in tasks]
        for task in tasks:
            if not task.cancelled():
                task.result()
        return settled


async def run_stage(count: int, run: Run, *, limit: int, mode: Mode, timeout_s: float | None = None,
                    timeout_message: str = "stage timed out", on_start: Callable[[int], None] | None = None,
                    on_settle: Settled | None = None) -> StageOutcome:
    """Run the branches of one stage under its mode, limit and timeout (§7.2–§7.5)."""
    window = _Window(count, max(1, limit), run, on_start)
    result = StageOutcome(window.outcomes, mode)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    decided = False
    try:
        while window.busy:
            remaining = None if deadline is None or decided else max(0.0, deadline - time.monotonic())
            settled = await window.next_settled(remaining)
            if settled is None:
                await _time_out(window, result, timeout_message, on_settle)
                break
            for i in settled:
                _notify(on_settle, i, window.outcomes[i])
                if not decided and _decides(result, i):
                    decided = True
                    window.stop_starting()
                    for j in await window.cancel_running():
                        _notify(on_settle, j, window.outcomes[j])
    except asyncio.CancelledError:
        await window.cancel_running()
        raise
    return result


def _decides(result: StageOutcome, i: int) -> bool:
    """Whether branch i's outcome ends the stage early under its mode."""
    outcome = result.outcomes[i]
    if outcome.aborted:
        result.aborted, result.decided_by = True, i
        return True
    if result.mode is Mode.FAIL_FAST and outcome.status == FAILED:
        result.decided_by = i
        return True
    if result.mode is Mode.RACE and outcome.status == COMPLETED:
        result.decided_by = i
        return True
    return False


async def _time_out(window: _Window, result: StageOutcome, message: str, on_settle: Settled | None) -> None:
    result.timed_out = True
    window.stop_starting()
    cancelled = await window.cancel_running()
    for outcome in window.outcomes:
        if outcome.status != COMPLETED:
            outcome.status, outcome.error = FAILED, RunError(kind="timeout", message=message)
    for j in cancelled:  # reported as what they are now: failed with kind timeout
        _notify(on_settle, j, window.outcomes[j])


def _notify(on_settle: Settled | None, i: int, outcome: Outcome) -> None:
    if on_settle is not None:
        on_settle(i, outcome)


async def run_iterations(count: int, run: Run, *, limit: int) -> None:
    """A `for … parallel` loop (§7.6): the first failure stops new starts and cancels the rest."""
    window = _Window(count, max(1, limit), run)
    first: int | None = None
    try:
        while window.busy:
            settled = await window.next_settled()
            failed = [i for i in settled or () if window.outcomes[i].status == FAILED]
            if failed and first is None:
                first = failed[0]
                await window.cancel_running()
    except asyncio.CancelledError:
        await window.cancel_running()
        raise
    if first is not None:
        raise _first_failure(window.outcomes, first)


def _first_failure(outcomes: list[Outcome], first: int) -> RunError:
    errors = [o.error for o in outcomes if o.status == FAILED and o.error is not None]
    aborts = [e for e in errors if e.kind == "abort"]
    error = aborts[0] if aborts else outcomes[first].error
    assert error is not None
    others = len(errors) - 1
    if others > 0 and error.kind != "abort":
        plural = "iteration" if others == 1 else "iterations"
        error = RunError(kind=error.kind, message=f"{error.message} (and {others} more failing {plural})",
                         status=error.status, span=error.span)
    return error
