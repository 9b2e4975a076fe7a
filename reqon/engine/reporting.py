"""What a run tells the person watching it (LANGUAGE.md §6.9, §8.4): logs, progress, summary.

One `Reporter` listens to the pipeline and the evaluator and writes to stderr:
human-readable lines (`--verbose`), JSON lines (`--json-log`) or a live rich
display when stderr is a terminal. Every message passes through the secrets
redactor on its way out.

The live display starts only once a run has lasted `PROGRESS_DELAY_S`: a mission that
ends sooner has nothing to watch, and neither imports rich (about 50 ms) nor redraws.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any

from reqon import ast
from reqon.engine.evaluator import Hooks
from reqon.http.model import HttpResponse
from reqon.engine.pipeline import (
    PipelineResult,
    StageListener,
    StageReport,
    describe_outcome,
)
from reqon.engine.scheduler import FAILED, Mode, Outcome

PROGRESS_DELAY_S = 0.5


@dataclass
class Counters:
    records: Counter[str] = field(default_factory=Counter)
    warnings: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    queued: int = 0
    loops: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)  # loop -> (done, total)


class Reporter(StageListener, Hooks):
    def __init__(self, *, mission: str, stream: IO[str] | None = None, verbose: bool = False,
                 quiet: bool = False, json_log: bool = False, progress: bool = False, colour: bool = False,
                 redact: Callable[[str], str] = str, requests: Callable[[], int] = lambda: 0,
                 progress_delay_s: float = PROGRESS_DELAY_S) -> None:
        self.mission = mission
        self.stream = stream or sys.stderr
        self.verbose, self.quiet, self.json_log, self.colour = verbose, quiet, json_log, colour
        self.redact = redact
        self.requests = requests
        self.c = Counters()
        self.stage: StageReport | None = None
        self._live: Any = None
        self._live_timer: asyncio.TimerHandle | None = None
        self._progress_delay_s = progress_delay_s
        self._progress = progress and not quiet and not json_log
        self._plain_progress_at = 0.0
        self._stream_is_tty = bool(getattr(self.stream, "isatty", lambda: False)())

    # ------------------------------------------------------------ lifecycle
    def executor(self, executor: Any) -> None:
        """Which executor runs the units; with Ray, its worker processes (a `--json-log` event)."""
        if executor.name == "local":
            return
        pids = list(getattr(executor, "worker_pids", []))
        self._event("executor", name=executor.name, workers=pids)
        self._log(f"  executor {executor.name}: {len(pids)} worker processes")

    def start(self, stages: int) -> None:
        """Called inside the running event loop, which later starts the live display."""
        self._event("mission.start", stages=stages)
        if self._progress and self._stream_is_tty:
            self._live_timer = asyncio.get_running_loop().call_later(self._progress_delay_s, self._start_live)

    def _start_live(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self._live_timer = None
        self._live = Live(self._render(), console=Console(file=self.stream), refresh_per_second=8,
                          transient=True, get_renderable=self._render)
        self._live.start()

    def stop(self) -> None:
        if self._live_timer is not None:
            self._live_timer.cancel()
            self._live_timer = None
        if self._live is not None:
            self._live.stop()
            self._live = None

    # ------------------------------------------------------------ pipeline events
    def stage_started(self, report: StageReport) -> None:
        self.stage = report
        self.c.running = self.c.done = self.c.failed = 0
        self.c.queued = len(report.actions)
        self.c.loops.clear()
        self._event("stage.start", stage=report.index, action=report.label, mode=report.mode.value,
                    limit=report.limit)
        self._log(f"stage {report.index} {report.label} started"
                  + (f" (mode {report.mode.value}, limit {report.limit})" if report.parallel else ""))

    def branch_started(self, report: StageReport, i: int) -> None:
        self.c.queued -= 1
        self.c.running += 1
        self._event("branch.start", stage=report.index, action=report.actions[i])
        self._log(f"  {report.actions[i]} started")
        self._tick()

    def branch_settled(self, report: StageReport, i: int, outcome: Outcome) -> None:
        self.c.running -= 1
        self.c.done += 1
        self.c.failed += outcome.status == FAILED
        message = describe_outcome(outcome, self.redact)
        self._event("branch.end", stage=report.index, action=report.actions[i], outcome=outcome.status,
                    durationMs=round(outcome.duration_s * 1000), kind=outcome.error.kind if outcome.error else None,
                    message=self.redact(outcome.error.message) if outcome.error else None)
        self._log(f"  {report.actions[i]}: {message} ({outcome.duration_s:.2f}s)")
        self._tick()

    def stage_ended(self, report: StageReport) -> None:
        self._event("stage.end", stage=report.index, action=report.label, outcome=report.status,
                    durationMs=round(report.duration_s * 1000))
        self._log(f"stage {report.index} {report.label} {report.status} in {report.duration_s:.2f}s")

    # ------------------------------------------------------------ evaluator hooks
    def records_written(self, store: str, count: int) -> None:
        self.c.records[store] += count
        if self.verbose or self.json_log:
            self._event("store.write", store=store, records=count)
            self._log(f"    store {store}: {count} record{'s' if count != 1 else ''}")
        self._tick()

    def validation_warning(self, message: str, span: ast.Span) -> None:
        self.c.warnings += 1
        text = f"{span.file}:{span.line}:{span.column}: warning: {self.redact(message)}"
        self._event("validation.warning", message=self.redact(message))
        if not self.quiet and not self.json_log:
            self._write(text)

    def request(self, response: HttpResponse) -> None:
        """One response of a fetch (each page counts): logged with `--verbose` and `--json-log`."""
        if not (self.verbose or self.json_log):
            return
        self._event("request", method=response.method, url=self.redact(response.url), status=response.status,
                    attempts=response.attempts, durationMs=round(response.elapsed_ms))
        self._log(f"    {response.method} {response.url} {response.status} "
                  f"(attempt {response.attempts}, {response.elapsed_ms:.0f}ms)")

    def iterations(self, loop: tuple[str, int], total: int, done: int) -> None:
        self.c.loops[loop] = (done, total)
        self._tick()

    # ------------------------------------------------------------ output
    def _log(self, line: str) -> None:
        if self.verbose and not self.json_log and not self.quiet:
            self._write(line)

    def _write(self, line: str) -> None:
        text = self.redact(line)
        if self._live is not None:
            self._live.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def _event(self, event: str, level: str = "info", **fields: Any) -> None:
        if not self.json_log:
            return
        print(self.redact(json_line(event, self.mission, level, **fields)), file=self.stream, flush=True)

    def _tick(self) -> None:
        if not self._progress or self._live is not None:
            return
        now = time.monotonic()
        if now - self._plain_progress_at >= 1.0:
            self._plain_progress_at = now
            print(self._status_line(), file=self.stream, flush=True)

    def _status_line(self) -> str:
        return " · ".join(self._status_parts())

    def _status_parts(self) -> list[str]:
        c = self.c
        stage = "starting"
        if self.stage is not None:
            stage = f"stage {self.stage.index} {self.stage.label}"
            if self.stage.parallel:
                stage += f" ({self.stage.mode.value}, limit {self.stage.limit})"
        parts = [stage, f"branches {c.running} running, {max(c.queued, 0)} queued, {c.done} done, {c.failed} failed"]
        if c.loops:
            done = sum(d for d, _ in c.loops.values())
            total = sum(t for _, t in c.loops.values())
            parts.append(f"iterations {done}/{total}")
        parts.append(f"{self.requests()} requests, {sum(c.records.values())} records")
        return parts

    def _render(self) -> Any:
        from rich.text import Text
        head, *rest = self._status_parts()
        text = Text(self.redact(head), style="bold cyan")
        for part in rest:
            text.append("\n  " + self.redact(part))
        return text

    # ------------------------------------------------------------ the end
    def summary(self, result: PipelineResult, stores: list[str], elapsed_s: float, interrupted: bool) -> None:
        status = "interrupted" if interrupted else ("failed" if result.failed_stage else "succeeded")
        self._event("mission.end", outcome=status, durationMs=round(elapsed_s * 1000),
                    records=dict(self.c.records), errors=result.errors)
        if self.quiet or self.json_log:
            return
        lines = [f"mission {self.mission} {status} in {elapsed_s:.2f}s"]
        for report in result.stages:
            winner = f", winner {report.winner}" if report.winner else ""
            lines.append(f"  stage {report.index} {report.label}: {report.status} ({report.duration_s:.2f}s{winner})")
        if stores:
            written = ", ".join(f"{name} {self.c.records.get(name, 0)}" for name in stores)
            lines.append(f"  records written: {written}")
        lines.append(f"  requests: {self.requests()}")
        if self.c.warnings:
            lines.append(f"  validation warnings: {self.c.warnings}")
        for entry in result.errors:
            lines.append(f"  tolerated failure: stage {entry['stage']} {entry['action']}: "
                         f"{entry['kind']}: {entry['message']}")
        for line in lines:
            self._write(line)

    def failure_report(self, result: PipelineResult) -> None:
        report = result.failed_stage
        if report is None or report.outcome is None:
            return
        outcome = report.outcome
        header = f"error: stage {report.index} {report.label} failed"
        if report.parallel or report.mode is not Mode.WAIT_ALL:
            detail = f"mode {report.mode.value}"
            if report.mode is Mode.FAIL_FAST and outcome.decided_by is not None:
                detail += f", first failure in {report.actions[outcome.decided_by]}"
            if outcome.timed_out:
                detail += ", timed out"
            header += f" ({detail})"
        lines = [header] + [f"  {name}: {describe_outcome(o, self.redact)}"
                            for name, o in zip(report.actions, outcome.outcomes)]
        if self.json_log:
            self._event("stage.failed", "error", stage=report.index, message="\n".join(lines))
            return
        for line in lines:
            self._write(line)



def json_line(event: str, mission: str | None, level: str = "info", **fields: Any) -> str:
    """One `--json-log` line (§8.4): time, level, event and mission first, then the
    fields that apply (None values are left out)."""
    record = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
              "level": level, "event": event, "mission": mission}
    record.update({k: v for k, v in fields.items() if v is not None})
    return json.dumps(record, ensure_ascii=False)
