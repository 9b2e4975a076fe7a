"""Run state, `--resume` and `reqon runs` (LANGUAGE.md §8.5).

Every run (except `--dry-run`) keeps `<data-dir>/runs/<Mission>.json`, one JSON object
replaced atomically (temporary file, fsync, rename) at the start, whenever a branch or a
stage settles (shared writes in a worker thread), in batches while loops run, and at the end. It records what a later
`--resume` may skip, at three granularities:

* stages that succeeded or were skipped,
* branches that completed, in the stage that was running,
* loop iterations that completed, per loop execution, by index and a hash of the element.

The one rule that makes this crash-safe: a record is written only after the store writes
it describes are durable. Before every write of the state file all stores are flushed
(a no-op for stores with nothing new), and only what had completed *before* that flush
started is recorded. A kill between the flush and the rename re-runs completed work on
resume, which converges because writes are keyed; nothing is ever skipped that did not
finish.

Finished runs are appended to `<data-dir>/runs/<Mission>.history.jsonl`, one JSON line
per run. Appending a line needs no lock and no database; a line torn by a crash is
detected (not valid JSON) and skipped by the reader, and the state file, which is what
`--resume` reads, never depends on it. SQLite would have given the same guarantees at
the price of a schema and of sharing `reqon.db` with the mission's own `sql` stores.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from reqon import ast
from reqon import values as V
from reqon.errors import RunError
from reqon.stores.file import write_atomically

if TYPE_CHECKING:
    from reqon.engine.model import Invocation, PipelineResult, StageReport
    from reqon.engine.expressions import Scope
    from reqon.stores.base import Store

FORMAT = 1
RUNNING, SUCCEEDED, FAILED, INTERRUPTED = "running", "succeeded", "failed", "interrupted"
# Stage statuses after which --resume does not run the stage again (pipeline.py spells them).
DONE_STAGE_STATUSES = frozenset({"succeeded", "skipped", "succeeded with tolerated failures"})
RESUMABLE = frozenset({RUNNING, FAILED, INTERRUPTED})
# Bound in every iteration scope of a recorded loop, so that a nested loop knows which
# execution it is; no source name can collide with it.
LOOP_PATH = "\0loop-path"
DEFAULT_BATCH_INTERVAL_S = 1.0  # a crash re-runs at most ~1 s of iterations; see docs/reliability.md

Notice = Callable[[str, str], None]  # (level, message)


# ---------------------------------------------------------------- the no-op interface


class LoopProgress:
    """What a `for` step asks about one execution of itself; this base records nothing."""

    def done_earlier(self, index: int) -> bool:
        return False

    def bindings(self, index: int) -> dict[str, Any]:
        return {}

    async def completed(self, index: int) -> None:
        pass


NO_LOOP = LoopProgress()


class ProgressLog:
    """The hooks the pipeline and the evaluator call; this base keeps no run state.

    It is what tests, the REPL and `--dry-run` get, so the evaluator never checks for None.
    """

    def stage_done_earlier(self, stage: int) -> bool:
        return False

    def branch_done_earlier(self, stage: int, branch: int) -> bool:
        return False

    async def branch_completed(self, stage: int, branch: int) -> None:
        pass

    async def stage_settled(self, report: StageReport, errors: list[dict[str, Any]]) -> None:
        pass

    def loop(self, inv: Invocation, step: ast.For, scope: Scope, items: Sequence[Any]) -> LoopProgress:
        return NO_LOOP


# ---------------------------------------------------------------- where states are kept


class RunRecords(Protocol):
    """Where run states and the run history are kept: files of the data directory
    (`FileRunRecords`), or PostgreSQL with `--database` (`runstate_postgres.PostgresRunStates`)."""

    where: str  # for messages: the directory or the database

    def lock(self, mission: str) -> None:
        """Keep other runs of `mission` from sharing this state while this run lasts (ConfigError if one does)."""
        ...

    def read(self, mission: str) -> dict[str, Any] | None:
        """The recorded state, or None; a damaged one raises ValueError."""
        ...

    def write(self, mission: str, document: dict[str, Any]) -> None:
        """Replace the recorded state, crash-safely; RunError when that fails."""
        ...

    def append_history(self, mission: str, entry: dict[str, Any]) -> None:
        ...

    def history(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every finished run's entry (oldest first), and every mission's recorded state."""
        ...


class FileRunRecords:
    """`<data-dir>/runs/<Mission>.json`, replaced atomically, and `<Mission>.history.jsonl`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.where = str(data_dir / "runs")

    def lock(self, mission: str) -> None:
        """Nothing yet: runs sharing a data directory are not locked out of each other."""

    def read(self, mission: str) -> dict[str, Any] | None:
        return read_state(state_path(self.data_dir, mission))

    def write(self, mission: str, document: dict[str, Any]) -> None:
        path = state_path(self.data_dir, mission)
        text = json.dumps(document, separators=(",", ":")) + "\n"  # ASCII: safe for any message
        try:
            write_atomically(path, text)
        except OSError as exc:
            raise RunError(kind="store", message=f"cannot write the run state {path}: "
                                                 f"{exc.strerror or exc}") from None

    def append_history(self, mission: str, entry: dict[str, Any]) -> None:
        """One line per run, appended with a single write and fsynced.

        A line torn by a crash has no final newline; starting with one keeps the torn
        line from swallowing this one.
        """
        history = history_path(self.data_dir, mission)
        history.parent.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(entry) + "\n").encode("ascii")
        try:
            fd = os.open(history, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise RunError(kind="store", message=f"cannot append to {history}: "
                                                 f"{exc.strerror or exc}") from None

    def history(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        runs_dir = self.data_dir / "runs"
        if not runs_dir.is_dir():
            return [], []
        entries = []
        for path in sorted(runs_dir.glob("*.history.jsonl")):
            for line in path.read_text("utf-8", errors="replace").splitlines():
                entry = _json_or_none(line)
                if isinstance(entry, dict):
                    entries.append(entry)
        states = []
        for path in sorted(runs_dir.glob("*.json")):
            try:
                state = read_state(path)
            except ValueError:
                continue
            if state is not None:
                states.append(state)
        return entries, states


# ---------------------------------------------------------------- the state file


def state_path(data_dir: Path, mission: str) -> Path:
    return data_dir / "runs" / f"{mission}.json"


def history_path(data_dir: Path, mission: str) -> Path:
    return data_dir / "runs" / f"{mission}.history.jsonl"


def read_state(path: Path) -> dict[str, Any] | None:
    """The recorded state, or None when there is none; a damaged file raises ValueError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a run state of this version of reqon")
    return data


def element_hash(value: Any) -> str:
    """A stable hash of a loop element: canonical JSON (sorted keys, integral doubles as ints)."""
    text = json.dumps(V.to_json_value(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      default=repr)
    return hashlib.blake2b(text.encode("ascii"), digest_size=8).hexdigest()


def pipeline_names(mission: ast.Mission) -> list[list[str]]:
    """The pipeline as it is compared for --resume: action names per stage."""
    stages = mission.runs[0].stages if mission.runs else ()
    return [[a.name for a in stage.actions] for stage in stages]


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _describe_pipeline(pipeline: list[list[str]]) -> str:
    return " then ".join(names[0] if len(names) == 1 else f"[{', '.join(names)}]" for names in pipeline) \
        or "(empty)"


# ---------------------------------------------------------------- resume decision


@dataclass
class ResumeDecision:
    """What `--resume` found: the state to continue from (None: run from the start) and why."""

    previous: dict[str, Any] | None
    reason: str


def decide_resume(previous: dict[str, Any] | None, pipeline: list[list[str]], where: str) -> ResumeDecision:
    """§8.5 steps 1 and 2: resume only a failed, interrupted or unfinished run of the same pipeline."""
    if previous is None:
        return ResumeDecision(None, f"no recorded run in {where}")
    status = previous.get("status")
    if status not in RESUMABLE:
        return ResumeDecision(None, f"the last run {status}")
    recorded = previous.get("pipeline")
    if recorded != pipeline:
        was = _describe_pipeline(recorded) if isinstance(recorded, list) else "unknown"
        return ResumeDecision(None, f"the pipeline changed since the last run (was {was}, "
                                    f"now {_describe_pipeline(pipeline)})")
    return ResumeDecision(previous, f"resuming the {status} run of {previous.get('startedAt', '?')}")


# ---------------------------------------------------------------- the live run state


@dataclass
class _LoopRecord:
    length: int
    done: dict[str, str] = field(default_factory=dict)  # index -> element hash

    def to_json(self) -> dict[str, Any]:
        return {"length": self.length, "done": self.done}


class RunState(ProgressLog):
    """The run state of one run of one mission, kept in step with what is durable.

    Create it with `RunState.begin`, hand it to the pipeline and the evaluator as their
    progress log, and end it with `finish` once the stores are closed.
    """

    def __init__(self, *, records: RunRecords, mission: str, pipeline: list[list[str]], stores: Mapping[str, Store],
                 previous: dict[str, Any] | None, notice: Notice,
                 batch_interval_s: float = DEFAULT_BATCH_INTERVAL_S, trigger: str = "manual") -> None:
        self.records = records
        self.trigger = trigger  # manual, schedule or once: what started the run (`reqon runs`)
        self.mission = mission
        self.pipeline = pipeline
        self.stores = stores
        self.notice = notice
        self.batch_interval_s = batch_interval_s
        self.run_id = uuid.uuid4().hex[:12]
        self.started_at = _now_iso()
        self._started = time.monotonic()
        self.resumes: str | None = previous.get("run") if previous else None
        self.errors: list[dict[str, Any]] = list(previous.get("errors") or []) if previous else []
        self._stages = [self._previous_stage(previous, i) for i in range(len(pipeline))]
        self._earlier_loops = _loops_of(previous)
        self._loops: dict[str, _LoopRecord] = dict(self._earlier_loops)
        self._pending: list[tuple[str, int, str]] = []
        self._committing = False
        self._last_commit = time.monotonic()
        self._interval = batch_interval_s
        self._done_earlier = {i + 1 for i, s in enumerate(self._stages) if s["status"] in DONE_STAGE_STATUSES}
        self.status = RUNNING
        self._ended: float | None = None
        self._version = 0  # of the in-memory state, counted at each request to write it
        self._on_disk = 0  # the version the file holds
        self._file_lock = threading.Lock()  # writes come from the loop and from worker threads
        self._writer = asyncio.Lock()

    @staticmethod
    def _previous_stage(previous: dict[str, Any] | None, i: int) -> dict[str, Any]:
        stages = previous.get("stages") if previous else None
        if isinstance(stages, list) and i < len(stages) and isinstance(stages[i], dict):
            status = stages[i].get("status")
            branches = [b for b in stages[i].get("completedBranches") or () if isinstance(b, int)]
            return {"status": status if isinstance(status, str) else "pending", "completedBranches": branches}
        return {"status": "pending", "completedBranches": []}

    # ------------------------------------------------------------ start and end

    @classmethod
    def begin(cls, *, records: RunRecords, mission: ast.Mission, stores: Mapping[str, Store], resume: bool,
              notice: Notice, batch_interval_s: float = DEFAULT_BATCH_INTERVAL_S,
              trigger: str = "manual") -> RunState:
        """Take the mission's lock, decide about --resume, log the decision, and record the new run as running.

        Raises ConfigError when another run of the mission holds the lock.
        """
        name = mission.name.name
        records.lock(name)
        pipeline = pipeline_names(mission)
        try:
            previous = records.read(name)
        except ValueError as exc:
            if resume:
                notice("warning", f"--resume: ignoring the run state: {exc}")
            previous = None
        previous_unfinished = previous is not None and previous.get("status") == RUNNING
        decision = decide_resume(previous, pipeline, records.where) if resume else ResumeDecision(None, "")
        if resume and decision.previous is None:
            notice("info", f"nothing to resume: {decision.reason}; running {name} from the first stage")
        state = cls(records=records, mission=name, pipeline=pipeline, stores=stores, previous=decision.previous,
                    notice=notice, batch_interval_s=batch_interval_s, trigger=trigger)
        if previous_unfinished and previous is not None:
            state._append_history(_history_entry(previous))  # killed before it could record its end
        if decision.previous is not None:
            state._announce(mission)
        state._write()
        return state

    def _announce(self, mission: ast.Mission) -> None:
        done = sorted(self._done_earlier)
        branches = sum(len(s["completedBranches"]) for i, s in enumerate(self._stages, 1) if i not in done)
        iterations = sum(len(r.done) for r in self._earlier_loops.values())
        parts = [f"{len(done)} of {len(self._stages)} stages done earlier"]
        if branches:
            parts.append(f"{branches} completed branch{'es' if branches != 1 else ''}")
        if iterations:
            parts.append(f"{iterations} completed loop iteration{'s' if iterations != 1 else ''}")
        self.notice("info", f"resuming run {self.resumes} of {self.mission}: {', '.join(parts)}")
        memory = sorted(d.name.name for d in mission.stores if d.kind.name == "memory")
        if memory:
            self.notice("warning", f"--resume: memory store{'s' if len(memory) > 1 else ''} {', '.join(memory)} "
                                   "start empty; the work that filled them earlier is not run again")

    def prefill(self, result: PipelineResult, bind_errors: Callable[[list[dict[str, Any]]], None]) -> None:
        """Start `errors` with the recorded entries (§7.4: after --resume it starts with them)."""
        if self.errors:
            result.errors.extend(self.errors)
            bind_errors(list(self.errors))

    def finish(self, result: PipelineResult, *, interrupted: bool, failed: bool, durable: bool) -> None:
        """Record the end; `durable` says whether closing the stores made every write durable."""
        for report in result.stages:
            if report.status != "done earlier":
                self._stages[report.index - 1]["status"] = report.status
        self.errors = list(result.errors)
        if durable:
            self._commit_pending(len(self._pending))
        self.status = INTERRUPTED if interrupted else FAILED if failed else SUCCEEDED
        self._ended = time.monotonic()
        if self.status == SUCCEEDED:
            self._loops.clear()
        self._write()
        self._append_history(self._entry())

    # ------------------------------------------------------------ stages and branches

    def stage_done_earlier(self, stage: int) -> bool:
        return stage in self._done_earlier

    def branch_done_earlier(self, stage: int, branch: int) -> bool:
        return stage not in self._done_earlier and branch in self._stages[stage - 1]["completedBranches"]

    async def branch_completed(self, stage: int, branch: int) -> None:
        """A branch completed: flush, then record it (and drop its loop records, now useless)."""
        await self._flush_and_commit()
        record = self._stages[stage - 1]
        if branch not in record["completedBranches"]:
            record["completedBranches"].append(branch)
        prefix = f"{stage}.{branch}/"
        self._pending = [p for p in self._pending if not p[0].startswith(prefix)]
        for key in [k for k in self._loops if k.startswith(prefix)]:
            del self._loops[key]
        await self._write_shared()

    async def stage_settled(self, report: StageReport, errors: list[dict[str, Any]]) -> None:
        await self._flush_and_commit()
        record = self._stages[report.index - 1]
        record["status"] = report.status
        self.errors = list(errors)
        if report.status in DONE_STAGE_STATUSES:
            prefix = f"{report.index}."
            self._pending = [p for p in self._pending if not p[0].startswith(prefix)]
            for key in [k for k in self._loops if k.startswith(prefix)]:
                del self._loops[key]
        await self._write_shared()

    # ------------------------------------------------------------ loops

    def loop(self, inv: Invocation, step: ast.For, scope: Scope, items: Sequence[Any]) -> LoopProgress:
        """The progress of one execution of a loop of a pipeline branch (not of a `jump`ed action)."""
        if inv.stage is None or inv.branch_index is None:
            return NO_LOOP
        parent = scope.lookup(LOOP_PATH)
        where = f"{step.span.file}:{step.span.line}:{step.span.column}"
        key = f"{parent}/{where}" if isinstance(parent, str) else f"{inv.stage}.{inv.branch_index}/{where}"
        hashes = [element_hash(item) for item in items]
        earlier = self._earlier_loops.pop(key, None)
        skip: set[int] = set()
        if earlier is not None and earlier.length == len(items):
            skip = {n for n, h in enumerate(hashes) if earlier.done.get(str(n)) == h}
        elif earlier is not None and earlier.done:
            self.notice("info", f"resume: the list of the loop at {where} ({inv.branch}) has {len(items)} "
                                f"elements, {earlier.length} when it last ran: running it whole")
        self._loops[key] = _LoopRecord(len(items), {str(n): hashes[n] for n in sorted(skip)})
        return _RecordedLoop(self, key, hashes, skip)

    async def iteration_completed(self, key: str, index: int, digest: str) -> None:
        """Queue the record; now and then, flush the stores and commit the queue.

        "Now and then" is every `batch_interval_s`, stretched to four times what the last
        commit cost, so that rewriting large file stores never takes more than a fifth of
        the run's time.
        """
        self._pending.append((key, index, digest))
        if self._committing or time.monotonic() - self._last_commit < self._interval:
            return
        self._committing = True
        began = time.monotonic()
        try:
            await self._flush_and_commit()
            self._write()
        finally:
            self._committing = False
            self._last_commit = time.monotonic()
            self._interval = max(self.batch_interval_s, 4 * (self._last_commit - began))

    async def _flush_and_commit(self) -> None:
        """Commit exactly the iterations that had completed when the flush started."""
        count = len(self._pending)
        for name in sorted(self.stores):
            await self.stores[name].flush()
        self._commit_pending(count)

    def _commit_pending(self, count: int) -> None:
        """Move completed iterations into the records; the loops nested in them are done too."""
        finished = []
        for key, index, digest in self._pending[:count]:
            record = self._loops.get(key)
            if record is not None:
                record.done[str(index)] = digest
                finished.append(f"{key}[{index}]/")
        del self._pending[:count]
        if finished:
            nested = tuple(finished)
            for key in [k for k in self._loops if k.startswith(nested)]:
                del self._loops[key]

    # ------------------------------------------------------------ writing

    def _document(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "mission": self.mission, "run": self.run_id, "resumes": self.resumes,
            "status": self.status, "trigger": self.trigger, "startedAt": self.started_at, "updatedAt": _now_iso(),
            "durationS": self._duration(), "pipeline": self.pipeline, "stages": self._stages,
            "errors": self.errors, "loops": {k: r.to_json() for k, r in self._loops.items()},
        }

    def _duration(self) -> float:
        end = self._ended if self._ended is not None else time.monotonic()
        return round(end - self._started, 3)

    def _write(self) -> None:
        self._version += 1
        self._replace(self._version, self._document())

    async def _write_shared(self) -> None:
        """Write the state with every record made so far, in a worker thread (group commit).

        Branches that settle while a write is under way share the next one: ten branches
        ending together cost two or three writes instead of ten, and the fsyncs no longer
        stall the event loop (they took 0.03 s of `bench.engine`'s wide mission idle, 0.16 s
        under disk load). The caller's records are in memory before it asks, so the write
        that covers its version covers them.
        """
        self._version += 1
        wanted = self._version
        async with self._writer:
            if self._on_disk >= wanted:
                return
            version, document = self._version, self._document()
            await asyncio.to_thread(self._replace, version, document)

    def _replace(self, version: int, document: dict[str, Any]) -> None:
        """Replace the recorded state unless it already holds a later version: a write
        finishing late in a worker thread (its branch was cancelled) never undoes a newer one."""
        with self._file_lock:
            if version <= self._on_disk:
                return
            self.records.write(self.mission, document)
            self._on_disk = version

    def _entry(self) -> dict[str, Any]:
        return {"mission": self.mission, "run": self.run_id, "resumes": self.resumes, "status": self.status,
                "trigger": self.trigger, "startedAt": self.started_at, "durationS": self._duration()}

    def _append_history(self, entry: dict[str, Any]) -> None:
        self.records.append_history(self.mission, entry)


class _RecordedLoop(LoopProgress):
    def __init__(self, state: RunState, key: str, hashes: list[str], skip: set[int]) -> None:
        self.state = state
        self.key = key
        self.hashes = hashes
        self.skip = skip

    def done_earlier(self, index: int) -> bool:
        return index in self.skip

    def bindings(self, index: int) -> dict[str, Any]:
        return {LOOP_PATH: f"{self.key}[{index}]"}

    async def completed(self, index: int) -> None:
        await self.state.iteration_completed(self.key, index, self.hashes[index])


def _loops_of(previous: dict[str, Any] | None) -> dict[str, _LoopRecord]:
    loops = previous.get("loops") if previous else None
    if not isinstance(loops, dict):
        return {}
    result = {}
    for key, record in loops.items():
        if isinstance(record, dict) and isinstance(record.get("length"), int) and isinstance(record.get("done"), dict):
            done = {str(k): v for k, v in record["done"].items() if isinstance(v, str)}
            result[key] = _LoopRecord(record["length"], done)
    return result


def _history_entry(state: dict[str, Any]) -> dict[str, Any]:
    return {key: state.get(key) for key in ("mission", "run", "resumes", "status", "trigger", "startedAt",
                                            "durationS")}


# ---------------------------------------------------------------- messages


def console_notice(mission: str, *, quiet: bool, json_log: bool, stream: Any = None) -> Notice:
    """How resume decisions reach the user: stderr lines, JSON `run.resume` events, or nothing."""

    def notice(level: str, message: str) -> None:
        out = stream or sys.stderr
        if json_log:
            event = {"time": _now_iso(), "level": level, "event": "run.resume", "mission": mission,
                     "message": message}
            print(json.dumps(event, ensure_ascii=False), file=out, flush=True)
        elif not quiet:
            print(f"warning: {message}" if level == "warning" else message, file=out, flush=True)
    return notice


# ---------------------------------------------------------------- reqon runs


@dataclass
class RunEntry:
    mission: str
    run: str
    status: str
    started_at: str
    duration_s: float | None
    resumes: str | None
    unfinished: bool = False
    trigger: str = "manual"


def recorded_runs(records: RunRecords, missions: set[str] | None = None) -> list[RunEntry]:
    """Every run recorded (optionally of some missions), oldest first; an unfinished last run too."""
    history, states = records.history()
    entries: dict[tuple[str, str], RunEntry] = {}
    for data in history:
        entry = _entry_from(data, unfinished=False)
        if entry is not None:
            entries[(entry.mission, entry.run)] = entry
    for state in states:
        entry = _entry_from(state, unfinished=True) if state.get("status") == RUNNING else None
        if entry is not None:
            entries.setdefault((entry.mission, entry.run), entry)
    found = [e for e in entries.values() if missions is None or e.mission in missions]
    return sorted(found, key=lambda e: (e.started_at, e.mission))


def _json_or_none(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None  # a line torn by a crash while it was appended


def _entry_from(data: Any, *, unfinished: bool) -> RunEntry | None:
    if not isinstance(data, dict):
        return None
    mission, run, status, started = (data.get(k) for k in ("mission", "run", "status", "startedAt"))
    if not (isinstance(mission, str) and isinstance(run, str) and isinstance(status, str)
            and isinstance(started, str)):
        return None
    duration = data.get("durationS")
    resumes = data.get("resumes")
    trigger = data.get("trigger")
    return RunEntry(mission, run, status, started, float(duration) if isinstance(duration, (int, float)) else None,
                    resumes if isinstance(resumes, str) else None, unfinished or status == RUNNING,
                    trigger if isinstance(trigger, str) else "manual")


def format_runs(entries: list[RunEntry]) -> str:
    """A table: mission, run id, trigger, status, start (UTC), duration, and what a run resumed."""
    header = ("MISSION", "RUN", "TRIGGER", "STATUS", "STARTED", "DURATION", "")
    rows = [header] + [(e.mission, e.run, e.trigger, e.status, e.started_at, _format_duration(e), _note(e))
                       for e in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows) + "\n"


def _format_duration(entry: RunEntry) -> str:
    if entry.duration_s is None:
        return "?"
    return f"{'≥' if entry.unfinished else ''}{entry.duration_s:.2f}s"


def _note(entry: RunEntry) -> str:
    notes = []
    if entry.resumes:
        notes.append(f"resumes {entry.resumes}")
    if entry.unfinished:
        notes.append("no end recorded (still running, or killed)")
    return "; ".join(notes)


def list_runs_command(args: argparse.Namespace) -> int:
    """`reqon runs [PATH] [--data-dir DIR]`: the recorded runs, of PATH's missions if given."""
    missions: set[str] | None = None
    if args.path is not None:
        if not os.path.exists(args.path):
            print(f"reqon: usage error: no such file or directory: {args.path}", file=sys.stderr)
            return 2
        from reqon.loader import load_path
        missions = {m.name.name for m in load_path(args.path).missions}
    from reqon.errors import ConfigError
    database = None
    try:
        from reqon.engine.database import open_database
        database = open_database(getattr(args, "database", None))
        records: RunRecords = FileRunRecords(Path(args.data_dir)) if database is None else \
            _postgres_records(database)
        entries = recorded_runs(records, missions)
    except (ConfigError, RunError) as exc:
        print(f"reqon: configuration error: {exc.message}", file=sys.stderr)
        return 3
    finally:
        if database is not None:
            database.close_connection()
    if not entries:
        print(f"no recorded runs in {records.where}", file=sys.stderr)
        return 0
    sys.stdout.write(format_runs(entries))
    return 0


def _postgres_records(database: Any) -> RunRecords:
    from reqon.engine.runstate_postgres import PostgresRunStates
    return PostgresRunStates(database)
