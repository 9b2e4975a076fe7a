"""The `run` pipeline (LANGUAGE.md §3.6, §7): stages in order, branches through the scheduler.

Each stage's mode, branch limit and timeout are resolved here (CLI override,
stage option, mission setting, default); the scheduler applies them. Between
stages the tolerated failures of §7.4 are appended to `errors`.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reqon import ast
from reqon import values as V
from reqon.errors import RunError
from reqon.engine.evaluator import Evaluator
from reqon.engine.model import Invocation, PipelineResult, StageReport
from reqon.engine.runstate import ProgressLog
from reqon.engine.scheduler import CANCELLED, COMPLETED, FAILED, LOCAL, Mode, Outcome, StageOutcome, run_stage

SUCCEEDED, STAGE_FAILED, SKIPPED, TOLERATED = "succeeded", "failed", "skipped", "succeeded with tolerated failures"
INTERRUPTED = "interrupted"


@dataclass
class Overrides:
    max_concurrency: int | None = None
    mode: str | None = None


class StageListener:
    """Progress and logs subscribe to the pipeline through this small interface."""

    def stage_started(self, report: StageReport) -> None:
        pass

    def branch_started(self, report: StageReport, i: int) -> None:
        pass

    def branch_settled(self, report: StageReport, i: int, outcome: Outcome) -> None:
        pass

    def stage_ended(self, report: StageReport) -> None:
        pass


class Pipeline:
    def __init__(self, mission: ast.Mission, evaluator: Evaluator, *, overrides: Overrides | None = None,
                 listener: StageListener | None = None, redact: Callable[[str], str] = str) -> None:
        self.mission = mission
        self.evaluator = evaluator
        self.overrides = overrides or Overrides()
        self.listener = listener or StageListener()
        self.redact = redact
        settings = {s.key: s.value for s in mission.settings}
        self._mission_mode = _literal(settings.get("parallelMode")) or Mode.WAIT_ALL.value
        self._mission_limit = _literal(settings.get("maxConcurrency"))
        self.result = PipelineResult()

    @property
    def progress(self) -> ProgressLog:
        """The run state (§8.5) lives on the evaluator, which records loop iterations."""
        return self.evaluator.progress

    @property
    def stages(self) -> tuple[ast.Stage, ...]:
        return self.mission.runs[0].stages if self.mission.runs else ()

    def plan(self) -> list[StageReport]:
        return [self._report(i, stage) for i, stage in enumerate(self.stages, start=1)]

    def _report(self, index: int, stage: ast.Stage) -> StageReport:
        options = {e.key: e.value for e in stage.options.entries} if stage.options else {}
        names = tuple(a.name for a in stage.actions)
        if stage.parallel:
            mode = self.overrides.mode or _literal(options.get("mode")) or self._mission_mode
            limit = self.overrides.max_concurrency or _literal(options.get("maxConcurrency")) \
                or self._mission_limit or len(names)
        else:
            mode = _literal(options.get("mode")) or Mode.WAIT_ALL.value
            limit = 1
        return StageReport(index, names, stage.parallel, Mode(mode), int(limit))

    def timeout_s(self, stage: ast.Stage) -> float | None:
        for entry in stage.options.entries if stage.options else ():
            if entry.key == "timeout":
                value = self.evaluator.x.eval(entry.value, self.evaluator.mission_scope)
                return float(value) / 1000 if isinstance(value, (int, float)) else None
        return None

    async def run(self) -> PipelineResult:
        for stage, report in zip(self.stages, self.plan()):
            self.result.stages.append(report)
            if self.progress.stage_done_earlier(report.index):
                report.status = "done earlier"
                continue
            if stage.condition is not None and not V.truthy(
                    self.evaluator.x.eval(stage.condition, self.evaluator.mission_scope)):
                report.status = SKIPPED
                self.listener.stage_ended(report)
                await self.progress.stage_settled(report, self.result.errors)
                continue
            await self._run_stage(stage, report)
            if report.status == STAGE_FAILED:  # before the run state is written, which may fail too
                self.result.failed_stage = report
            await self.progress.stage_settled(report, self.result.errors)
            if report.status == STAGE_FAILED:
                break
        return self.result

    async def _run_stage(self, stage: ast.Stage, report: StageReport) -> None:
        started = time.monotonic()
        report.status = "running"
        self.listener.stage_started(report)
        timeout = self.timeout_s(stage)
        actions = [self.evaluator.actions[name] for name in report.actions]
        invocations: dict[int, Invocation] = {}
        # Branches of a parallel stage are the executor's units; a single action runs here,
        # and its parallel loops hand their chunks to the executor (issue 15).
        executor = self.evaluator.executor if report.parallel else LOCAL

        async def branch(i: int) -> None:
            if self.progress.branch_done_earlier(report.index, i):
                return  # completed in the run that --resume continues (§8.5)
            invocations[i] = Invocation(actions[i], report.actions[i], report.index, i)
            await executor.submit(self.evaluator.branch_unit(invocations[i]))
            await self.progress.branch_completed(report.index, i)

        try:
            outcome = await run_stage(
                len(actions), branch, limit=report.limit, mode=report.mode, timeout_s=timeout,
                timeout_message=f"stage {report.index} timed out after {_duration(timeout)}",
                on_start=lambda i: self.listener.branch_started(report, i),
                on_settle=lambda i, o: self.listener.branch_settled(report, i, o))
        except BaseException:
            report.status = INTERRUPTED
            report.duration_s = time.monotonic() - started
            self.listener.stage_ended(report)
            raise
        if outcome.timed_out:
            _place_timeouts(outcome, invocations)
        report.outcome = outcome
        report.duration_s = time.monotonic() - started
        tolerated = outcome.tolerated()
        if not outcome.succeeded:
            report.status = STAGE_FAILED
        else:
            report.status = TOLERATED if tolerated else SUCCEEDED
        self._record_errors(report, tolerated)
        self.listener.stage_ended(report)

    def _record_errors(self, report: StageReport, tolerated: list[int]) -> None:
        assert report.outcome is not None
        for i in tolerated:
            error = report.outcome.outcomes[i].error
            assert error is not None
            self.result.errors.append(error_entry(report.index, report.actions[i], error, self.redact))
        if tolerated:
            self.evaluator.mission_scope.bind("errors", list(self.result.errors))


def _place_timeouts(outcome: StageOutcome, invocations: dict[int, Invocation]) -> None:
    """A timed-out branch failed at the step it was running; a queued one nowhere (§7.4)."""
    for i, branch in enumerate(outcome.outcomes):
        error = branch.error
        if error is not None and error.kind == "timeout" and error.span is None and i in invocations:
            error.span = invocations[i].cancelled_at


def error_entry(stage: int, action: str, error: RunError, redact: Callable[[str], str]) -> dict[str, Any]:
    span = error.span
    at = f"{span.file}:{span.line}:{span.column}" if isinstance(span, ast.Span) else None
    return {"stage": stage, "action": action, "kind": error.kind, "message": redact(error.message),
            "status": error.status, "at": at}


def _literal(expr: Any) -> Any:
    return expr.value if isinstance(expr, ast.Literal) else None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds >= 1 and float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{seconds * 1000:.0f}ms"


def describe_outcome(outcome: Outcome, redact: Callable[[str], str]) -> str:
    """One line of the error report of §6.9 for one branch."""
    if outcome.status == FAILED and outcome.error is not None:
        error = outcome.error
        span = error.span
        where = f"{span.file}:{span.line}:{span.column}: " if isinstance(span, ast.Span) else ""
        return f"{where}{error.kind}: {redact(error.message)}"
    return {COMPLETED: "completed", CANCELLED: "cancelled"}.get(outcome.status, outcome.status)
