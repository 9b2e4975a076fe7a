"""The scheduler's policies on plain coroutines: limits, order, the four modes, timeouts.

These tests count what the coroutines themselves saw (starts, peak in flight,
cancellations); the end-to-end tests in tests/test_parallel.py check the same
rules from a real HTTP server's point of view.
"""
from __future__ import annotations

import asyncio

import pytest

from reqon.errors import RunError
from reqon.engine.scheduler import (
    CANCELLED,
    COMPLETED,
    FAILED,
    NOT_STARTED,
    Mode,
    run_iterations,
    run_stage,
)


class Probe:
    """Branch bodies that record starts, peak concurrency and cancellations."""

    def __init__(self, plan: dict[int, tuple[float, str]]) -> None:
        self.plan = plan  # index -> (seconds, "ok" | "fail" | "abort")
        self.started: list[int] = []
        self.cancelled: list[int] = []
        self.in_flight = 0
        self.peak = 0

    async def __call__(self, i: int) -> None:
        self.started.append(i)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        seconds, result = self.plan.get(i, (0.01, "ok"))
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.cancelled.append(i)
            raise
        finally:
            self.in_flight -= 1
        if result == "fail":
            raise RunError(kind="http", message=f"branch {i} failed")
        if result == "abort":
            raise RunError(kind="abort", message="stop")


def stage(probe: Probe, count: int, mode: Mode, limit: int | None = None, timeout: float | None = None):
    return asyncio.run(run_stage(count, probe, limit=limit or count, mode=mode, timeout_s=timeout,
                                 timeout_message="stage 1 timed out after 50ms"))


def test_limit_is_a_sliding_window_in_source_order() -> None:
    probe = Probe({0: (0.05, "ok"), 1: (0.2, "ok"), 2: (0.2, "ok"), 3: (0.01, "ok"), 4: (0.01, "ok")})
    result = stage(probe, 5, Mode.WAIT_ALL, limit=3)
    assert probe.peak == 3
    assert probe.started == [0, 1, 2, 3, 4]
    assert result.succeeded and all(o.status == COMPLETED for o in result.outcomes)


def test_limit_one_runs_branches_one_after_another() -> None:
    probe = Probe({})
    stage(probe, 4, Mode.WAIT_ALL, limit=1)
    assert probe.peak == 1 and probe.started == [0, 1, 2, 3]


def test_wait_all_runs_every_branch_and_fails_after_all_settled() -> None:
    probe = Probe({0: (0.01, "fail"), 1: (0.05, "ok"), 2: (0.01, "ok")})
    result = stage(probe, 3, Mode.WAIT_ALL, limit=2)
    assert [o.status for o in result.outcomes] == [FAILED, COMPLETED, COMPLETED]
    assert not result.succeeded and probe.cancelled == []


def test_fail_fast_cancels_running_and_never_starts_queued() -> None:
    probe = Probe({0: (0.01, "fail"), 1: (5, "ok"), 2: (5, "ok")})
    result = stage(probe, 3, Mode.FAIL_FAST, limit=2)
    assert [o.status for o in result.outcomes] == [FAILED, CANCELLED, NOT_STARTED]
    assert probe.cancelled == [1] and result.decided_by == 0 and not result.succeeded


def test_best_effort_always_succeeds_and_tolerates_failures() -> None:
    probe = Probe({0: (0.01, "fail"), 1: (0.01, "fail")})
    result = stage(probe, 2, Mode.BEST_EFFORT)
    assert result.succeeded and result.tolerated() == [0, 1]


def test_race_first_completion_wins_and_earlier_failures_are_tolerated() -> None:
    probe = Probe({0: (0.01, "fail"), 1: (0.05, "ok"), 2: (5, "ok")})
    result = stage(probe, 3, Mode.RACE)
    assert result.succeeded and result.decided_by == 1
    assert [o.status for o in result.outcomes] == [FAILED, COMPLETED, CANCELLED]
    assert result.tolerated() == [0]


def test_race_fails_only_when_every_branch_failed() -> None:
    probe = Probe({0: (0.01, "fail"), 1: (0.02, "fail")})
    assert not stage(probe, 2, Mode.RACE).succeeded


def test_race_with_limit_one_is_a_fallback_chain() -> None:
    probe = Probe({0: (0.01, "fail"), 1: (0.01, "ok"), 2: (0.01, "ok")})
    result = stage(probe, 3, Mode.RACE, limit=1)
    assert probe.started == [0, 1] and result.decided_by == 1
    assert result.outcomes[2].status == NOT_STARTED


@pytest.mark.parametrize("mode", list(Mode))
def test_abort_overrides_every_mode(mode: Mode) -> None:
    probe = Probe({0: (0.01, "abort"), 1: (5, "ok"), 2: (5, "ok")})
    result = stage(probe, 3, mode, limit=2)
    assert result.aborted and not result.succeeded
    assert [o.status for o in result.outcomes] == [FAILED, CANCELLED, NOT_STARTED]


def test_stage_timeout_fails_unfinished_branches_with_kind_timeout() -> None:
    probe = Probe({0: (0.01, "ok"), 1: (5, "ok"), 2: (5, "ok"), 3: (5, "ok")})
    result = stage(probe, 4, Mode.BEST_EFFORT, limit=2, timeout=0.05)
    assert result.timed_out and result.succeeded
    assert result.outcomes[0].status == COMPLETED
    assert [o.error.kind for o in result.outcomes[1:]] == ["timeout"] * 3  # type: ignore[union-attr]
    assert result.outcomes[3].error.message == "stage 1 timed out after 50ms"  # type: ignore[union-attr]
    assert sorted(probe.cancelled) == [1, 2] and 3 not in probe.started


def test_parallel_loop_bounds_iterations_and_stops_at_first_failure() -> None:
    probe = Probe({i: (0.01, "ok") for i in range(20)})
    asyncio.run(run_iterations(20, probe, limit=5))
    assert probe.peak == 5 and sorted(probe.started) == list(range(20))

    failing = Probe({0: (5, "ok"), 1: (0.01, "fail"), 2: (5, "ok")} | {i: (5, "ok") for i in range(3, 10)})
    with pytest.raises(RunError) as caught:
        asyncio.run(run_iterations(10, failing, limit=3))
    assert caught.value.message == "branch 1 failed"
    assert sorted(failing.cancelled) == [0, 2] and max(failing.started) == 2


def test_parallel_loop_counts_other_failing_iterations() -> None:
    probe = Probe({0: (0.01, "fail"), 1: (0.01, "fail"), 2: (0.01, "fail")})
    with pytest.raises(RunError) as caught:
        asyncio.run(run_iterations(3, probe, limit=3))
    assert caught.value.message.endswith("(and 2 more failing iterations)")


def test_cancelling_a_stage_cancels_its_branches() -> None:
    probe = Probe({0: (5, "ok"), 1: (5, "ok")})

    async def scenario() -> None:
        task = asyncio.ensure_future(run_stage(2, probe, limit=2, mode=Mode.WAIT_ALL))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert sorted(probe.cancelled) == [0, 1] and probe.in_flight == 0
