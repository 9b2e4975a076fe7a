"""Run state, `--resume` and `reqon runs` (LANGUAGE.md §8.5).

Every run (except `--dry-run`) keeps a snapshot, `<data-dir>/runs/<Mission>.json`, replaced
atomically at the start, whenever a branch or a stage settles (shared writes in a worker
thread, versioned so that a late write never replaces a newer file), and at the end, and
between snapshots a journal, `<Mission>.journal` (storage: `reqon/engine/journal.py`).
Together they record what a later `--resume` may skip, at three granularities:

* stages that succeeded or were skipped,
* branches that completed, in the stage that was running,
* loop iterations that completed, per loop execution, by index and a hash of the element.

The rules that make this exact (docs/reliability.md states the guarantee):

* A stage or branch is recorded in a snapshot only after every store was flushed.
* A loop iteration is recorded the moment it completes, by one journal entry that also
  holds every store write the iteration made. The entry survives a crash of the process
  once appended (the journal is fsynced about once a second, for power loss), so the
  iteration is never run again, and its writes, which a file store keeps in memory until
  its next flush, are replayed into the stores when the data directory is used next.
* Replay happens at every start after a run that did not end cleanly, with or without
  `--resume`: records a completed iteration stored are never lost. Only `--resume` also
  skips the iterations.

Overlapping runs of one mission (the daemon's `maxConcurrency`) each hold a run lane
(`reqon/engine/lanes.py`) and keep their state under the lane's key (`<Mission>.2.json`,
`.journal`, …) instead of the mission's name, so the rules above hold per run.

Finished runs are appended to `<data-dir>/runs/<Mission>.history.jsonl`, one JSON line
per run, whatever their lane. Appending a line needs no lock and no database; a line torn by a crash is
detected (not valid JSON) and skipped by the reader, and the state file, which is what
`--resume` reads, never depends on it. SQLite would have given the same guarantees at
the price of a schema and of sharing `reqon.db` with the mission's own `sql` stores.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from reqon import ast
from reqon import values as V
from reqon.engine.journal import FileBackend, RunStateBackend
from reqon.engine.lanes import lane_key, lane_of, mission_lock_path
from reqon.errors import RunError
from reqon.stores.file import write_atomically
from reqon.stores.locks import LockHeld, ProcessLock

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
SYNC_INTERVAL_S = 1.0  # a power loss costs at most ~1 s of journal entries; see docs/reliability.md
# The store writes of the loop iteration running in this task (None outside recorded loops).
_UNIT: ContextVar[list[list[Any]] | None] = ContextVar("reqon_unit_writes", default=None)

Notice = Callable[[str, str], None]  # (level, message)


# ---------------------------------------------------------------- the no-op interface


class LoopProgress:
    """What a `for` step asks about one execution of itself; this base records nothing."""

    def done_earlier(self, index: int) -> bool:
        return False

    def bindings(self, index: int) -> dict[str, Any]:
        return {}

    def unit(self, index: int) -> contextlib.AbstractContextManager[None]:
        """Around one iteration: collects the store writes it makes (for the journal)."""
        return contextlib.nullcontext()

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

    def wrote(self, store: Store, records: list[tuple[str, Any]], *, upsert: bool, partial: bool | None) -> None:
        """A store step was applied (called after the store accepted it)."""


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

    def extra_lanes(self, mission: str) -> list[str]:
        """The state keys of `mission`'s lanes after the first (`M.2`, `M.3`, …) that have a recorded state."""
        ...

    def hold(self, key: str) -> bool:
        """Try to keep other runs out of the state `key` for a moment (never waits); False when one holds it."""
        ...

    def let_go(self, key: str) -> None:
        """Undo `hold`."""
        ...

    def remove(self, key: str) -> None:
        """Forget the state `key` (a lane's state whose run is over and whose journal was replayed)."""
        ...


class FileRunRecords:
    """`<data-dir>/runs/<Mission>.json`, replaced atomically, and `<Mission>.history.jsonl`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.where = str(data_dir / "runs")

    def lock(self, mission: str) -> None:
        """Nothing here: the runner holds the lane's `ProcessLock` on the data directory
        (`mission_lock_path`) from before the stores open, which already keeps other runs out."""

    def hold(self, key: str) -> bool:
        return True  # the caller holds the lane's OS lock, which is what keeps runs out of a file state

    def let_go(self, key: str) -> None:
        pass

    def extra_lanes(self, mission: str) -> list[str]:
        runs_dir = self.data_dir / "runs"
        found = [p.name[:-len(".json")] for p in runs_dir.glob(f"{mission}.*.json")] if runs_dir.is_dir() else []
        return sorted((k for k in found if lane_of(k)[0] == mission and lane_of(k)[1] > 0), key=lambda k: lane_of(k)[1])

    def remove(self, key: str) -> None:
        try:
            state_path(self.data_dir, key).unlink(missing_ok=True)
        except OSError as exc:
            raise RunError(kind="store", message=f"cannot remove the run state {state_path(self.data_dir, key)}: "
                                                 f"{exc.strerror or exc}") from None

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


class RecordsBackend(FileBackend):
    """The snapshot where the run records keep run states (a file of the data directory, or
    PostgreSQL with `--database`), the journal a file of the data directory beside it.

    With `--database` a journal left on another machine is not found, and the next run
    there replays nothing: it re-runs the iterations of the loop that was under way.
    """

    def __init__(self, records: RunRecords, mission: str, journal: Path) -> None:
        super().__init__(Path(records.where) / f"{mission}.json", journal)
        self.records = records
        self.mission = mission

    def read_snapshot(self) -> dict[str, Any] | None:
        return self.records.read(self.mission)

    def write_snapshot(self, document: dict[str, Any]) -> None:
        self.records.write(self.mission, document)


# ---------------------------------------------------------------- the state file


def state_path(data_dir: Path, mission: str) -> Path:
    return data_dir / "runs" / f"{mission}.json"


def history_path(data_dir: Path, mission: str) -> Path:
    return data_dir / "runs" / f"{mission}.history.jsonl"


def journal_path(data_dir: Path, mission: str) -> Path:
    return data_dir / "runs" / f"{mission}.journal"


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
        return {"length": self.length, "done": dict(self.done)}  # a copy, written in a worker thread


class RunState(ProgressLog):
    """The run state of one run of one mission, kept in step with what is durable.

    Create it with `RunState.begin`, hand it to the pipeline and the evaluator as their
    progress log, and end it with `finish` once the stores are closed.
    """

    def __init__(self, *, records: RunRecords, backend: RunStateBackend, mission: str, pipeline: list[list[str]],
                 stores: Mapping[str, Store], previous: dict[str, Any] | None, notice: Notice,
                 trigger: str = "manual", lane: int = 0) -> None:
        self.records = records
        self.lane = lane  # 0-based here, 1-based in documents and messages; its key is `lane_key(mission, lane)`
        self.backend = backend
        self.trigger = trigger  # manual, schedule or once: what started the run (`reqon runs`)
        self.mission = mission
        self.pipeline = pipeline
        self.stores = stores
        self.notice = notice
        self.run_id = uuid.uuid4().hex[:12]
        self.journal_id = uuid.uuid4().hex[:12]
        self.started_at = _now_iso()
        self._started = time.monotonic()
        self.resumes: str | None = previous.get("run") if previous else None
        self.errors: list[dict[str, Any]] = list(previous.get("errors") or []) if previous else []
        self._stages = [self._previous_stage(previous, i) for i in range(len(pipeline))]
        self._earlier_loops = _loops_of(previous)
        self._loops: dict[str, _LoopRecord] = dict(self._earlier_loops)
        self._committed_position = 0
        self._last_sync = time.monotonic()
        self._syncing: asyncio.Future[None] | None = None
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
    async def begin(cls, *, records: RunRecords, data_dir: Path, mission: ast.Mission, stores: Mapping[str, Store],
                    resume: bool, notice: Notice, backend: RunStateBackend | None = None,
                    trigger: str = "manual", lane: int = 0) -> RunState:
        """Take the lane's lock, replay what the lane's last run journaled (and what runs killed
        in the mission's other free lanes did), decide about --resume, and record the new run
        as running.

        `lane` is the run lane the caller holds (0 for `reqon run`; the daemon's overlapping
        runs use 1, 2, …): each lane has its own state and journal, so overlapping runs never
        replace each other's. --resume reads lane 0 only.
        Raises ConfigError when another run holds the lane's lock.
        """
        name = mission.name.name
        key = lane_key(name, lane)
        records.lock(key)
        backend = backend or RecordsBackend(records, key, journal_path(data_dir, key))
        pipeline = pipeline_names(mission)
        try:
            previous = backend.read_snapshot()
        except ValueError as exc:
            if resume:
                notice("warning", f"--resume: ignoring the run state: {exc}")
            previous = None
        if previous is not None:
            await _replay_journal(backend, previous, stores, notice, lane)
        await _recover_lanes(records, data_dir, name, key, stores, notice)
        previous_unfinished = previous is not None and previous.get("status") == RUNNING
        decision = decide_resume(previous, pipeline, records.where) if resume else ResumeDecision(None, "")
        if resume and decision.previous is None:
            notice("info", f"nothing to resume: {decision.reason}; running {name} from the first stage")
        state = cls(records=records, backend=backend, mission=name, pipeline=pipeline, stores=stores,
                    previous=decision.previous, notice=notice, trigger=trigger, lane=lane)
        if previous_unfinished and previous is not None:
            state._append_history(_history_entry(previous))  # killed before it could record its end
        if decision.previous is not None:
            state._announce(mission)
        state._write()  # names the new journal: from here on the old one is void
        try:
            backend.start_journal(state.journal_id)
        except OSError as exc:
            raise RunError(kind="store", message=f"cannot start the run journal: {exc.strerror or exc}") from None
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
        """Record the end; `durable` says whether closing the stores made every write durable.

        When it did not, the snapshot keeps pointing at the journal entries written since
        the last flush, so that the next start replays them.
        """
        for report in result.stages:
            if report.status != "done earlier":
                self._stages[report.index - 1]["status"] = report.status
        self.errors = list(result.errors)
        if durable:
            self._committed_position = self.backend.position()
        self.status = INTERRUPTED if interrupted else FAILED if failed else SUCCEEDED
        self._ended = time.monotonic()
        if self.status == SUCCEEDED:
            self._loops.clear()
        try:
            self.backend.close()
        except OSError as exc:
            raise RunError(kind="store", message=f"cannot close the run journal: {exc.strerror or exc}") from None
        self._write()
        self._append_history(self._entry())

    # ------------------------------------------------------------ stages and branches

    def stage_done_earlier(self, stage: int) -> bool:
        return stage in self._done_earlier

    def branch_done_earlier(self, stage: int, branch: int) -> bool:
        return stage not in self._done_earlier and branch in self._stages[stage - 1]["completedBranches"]

    async def branch_completed(self, stage: int, branch: int) -> None:
        """A branch completed: flush, then record it (and drop its loop records, now useless)."""
        await self._flush_stores()
        record = self._stages[stage - 1]
        if branch not in record["completedBranches"]:
            record["completedBranches"].append(branch)
        prefix = f"{stage}.{branch}/"
        for key in [k for k in self._loops if k.startswith(prefix)]:
            del self._loops[key]
        await self._write_after_flush()

    async def stage_settled(self, report: StageReport, errors: list[dict[str, Any]]) -> None:
        await self._flush_stores()
        record = self._stages[report.index - 1]
        record["status"] = report.status
        self.errors = list(errors)
        if report.status in DONE_STAGE_STATUSES:
            prefix = f"{report.index}."
            for key in [k for k in self._loops if k.startswith(prefix)]:
                del self._loops[key]
        await self._write_after_flush()

    async def _flush_stores(self) -> None:
        """Flush every store; journal entries appended before the flush are then redundant.

        Only if the journal is still the one the flush started on: a branch settling
        meanwhile may have replaced it, and a position in the old journal means nothing in
        the new one.
        """
        journal, position = self.journal_id, self.backend.position()
        for name in sorted(self.stores):
            await self.stores[name].flush()
        if self.journal_id == journal:
            self._committed_position = max(self._committed_position, position)

    async def _write_after_flush(self) -> None:
        """Write the snapshot, shared with the branches settling at the same time, in a worker
        thread. When the journal has entries and all of them are redundant, a new, empty one
        replaces it, so that it never grows beyond the iterations between two settled
        branches; that replacement is done on the event loop, with no await between the
        snapshot naming the new journal and its start, so no iteration can append to a
        journal that has just become void."""
        position = self.backend.position()
        if position == 0 or self._committed_position != position:
            await self._write_shared()
            return
        self.journal_id = uuid.uuid4().hex[:12]
        self._committed_position = 0
        self._write()  # names the new journal; the old one is void from here on
        try:
            self.backend.start_journal(self.journal_id)
        except OSError as exc:
            raise RunError(kind="store", message=f"cannot start the run journal: {exc.strerror or exc}") from None

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

    def wrote(self, store: Store, records: list[tuple[str, Any]], *, upsert: bool, partial: bool | None) -> None:
        unit = _UNIT.get()
        if unit is not None and store.kind != "memory":  # memory stores start empty anyway
            unit.append([store.name, upsert, partial, [[key, value] for key, value in records]])

    def iteration_completed(self, key: str, index: int, digest: str, writes: list[list[Any]]) -> None:
        """Journal the iteration with its writes (one append), then record it as done.

        The append is what makes the iteration count as done after a crash; the fsync that
        protects it from a power loss is batched, about once a second, in a worker thread so
        that a slow disk never stalls the event loop.
        """
        record = self._loops.get(key)
        entry = {"k": key, "i": index, "h": digest, "n": record.length if record else 0, "w": writes}
        try:
            self.backend.append(entry)
        except (OSError, TypeError, ValueError) as exc:
            raise RunError(kind="store", message=f"cannot append to the run journal: {exc}") from None
        now = time.monotonic()
        if now - self._last_sync >= SYNC_INTERVAL_S and (self._syncing is None or self._syncing.done()):
            self._last_sync = now
            self._syncing = asyncio.get_running_loop().run_in_executor(None, self._sync)
        if record is not None:
            record.done[str(index)] = digest
        nested = f"{key}[{index}]/"  # the loops nested in it are done too
        for other in [k for k in self._loops if k.startswith(nested)]:
            del self._loops[other]

    def _sync(self) -> None:
        """A failed background fsync is not fatal: `finish` syncs again and reports."""
        try:
            self.backend.sync()
        except OSError:
            pass

    # ------------------------------------------------------------ writing

    def _document(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "mission": self.mission, "lane": self.lane + 1, "run": self.run_id,
            "resumes": self.resumes,
            "status": self.status, "trigger": self.trigger, "startedAt": self.started_at, "updatedAt": _now_iso(),
            "durationS": self._duration(), "pipeline": self.pipeline,
            "stages": [{**s, "completedBranches": list(s["completedBranches"])} for s in self._stages],
            "errors": list(self.errors), "loops": {k: r.to_json() for k, r in self._loops.items()},
            "journal": {"id": self.journal_id, "position": self._committed_position},
        }

    def _duration(self) -> float:
        end = self._ended if self._ended is not None else time.monotonic()
        return round(end - self._started, 3)

    def _write(self) -> None:
        self._version += 1
        self._replace(self._version, self._document())

    async def _write_shared(self) -> None:
        """Write the snapshot with every record made so far, in a worker thread (group commit).

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
            version, document = self._version, self._document()  # a copy: the loop goes on changing it
            await asyncio.to_thread(self._replace, version, document)

    def _replace(self, version: int, document: dict[str, Any]) -> None:
        """Replace the snapshot unless it already holds a later version: a write finishing late
        in a worker thread (its branch was cancelled) never undoes a newer one."""
        with self._file_lock:
            if version <= self._on_disk:
                return
            try:
                self.backend.write_snapshot(document)
            except OSError as exc:
                raise RunError(kind="store", message=f"cannot write the run state: {exc.strerror or exc}") from None
            self._on_disk = version

    def _entry(self) -> dict[str, Any]:
        return {"mission": self.mission, "lane": self.lane + 1, "run": self.run_id, "resumes": self.resumes,
                "status": self.status, "trigger": self.trigger, "startedAt": self.started_at,
                "durationS": self._duration()}

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

    @contextlib.contextmanager
    def unit(self, index: int) -> Iterator[None]:
        token = _UNIT.set([])
        try:
            yield
        finally:
            _UNIT.reset(token)

    async def completed(self, index: int) -> None:
        writes = _UNIT.get()
        self.state.iteration_completed(self.key, index, self.hashes[index], list(writes or ()))
        if writes:
            writes.clear()  # journaled: the next iteration of a remote chunk does not repeat them


async def _replay_journal(backend: RunStateBackend, previous: dict[str, Any], stores: Mapping[str, Store],
                          notice: Notice, lane: int = 0) -> int:
    """Apply the writes of the iterations journaled after the last snapshot, flush, and mark
    the iterations done in `previous` (which --resume then reads); how many were replayed."""
    journal = previous.get("journal")
    if not isinstance(journal, dict) or not isinstance(journal.get("id"), str):
        return 0
    entries = backend.entries(journal["id"], int(journal.get("position") or 0))
    if not entries:
        return 0
    loops = previous.setdefault("loops", {})
    for entry in entries:
        for name, upsert, partial, records in entry.get("w") or ():
            store = stores.get(name)
            if store is not None and store.kind != "memory":
                await store.write([(k, v) for k, v in records], upsert=bool(upsert), partial=partial)
        key, index, digest = entry.get("k"), entry.get("i"), entry.get("h")
        if not isinstance(key, str) or not isinstance(index, int) or not isinstance(digest, str):
            continue
        record = loops.setdefault(key, {"length": entry.get("n") or 0, "done": {}})
        record["done"][str(index)] = digest
        nested = f"{key}[{index}]/"
        for other in [k for k in loops if k.startswith(nested)]:
            del loops[other]
    for name in sorted(stores):
        await stores[name].flush()
    by = "the last run" + (f" in lane {lane + 1}" if lane else "")
    notice("info", f"replayed the store writes of {len(entries)} loop iteration{'s' if len(entries) != 1 else ''} "
                   f"journaled by {by}")
    return len(entries)


async def _recover_lanes(records: RunRecords, data_dir: Path, mission: str, own: str, stores: Mapping[str, Store],
                         notice: Notice) -> None:
    """Replay what runs killed in the mission's other lanes (after the first) journaled, then
    forget their states: otherwise those writes would wait for the next run in the same lane,
    which needs overlapping runs again and may never come. Lanes held by a live run are left
    alone; so is lane 0, whose state `--resume` reads and whose next run replays it.
    """
    for key in records.extra_lanes(mission):
        if key == own:
            continue
        lock = ProcessLock(mission_lock_path(data_dir, key), f"reqon run {mission} (recovering {key})")
        try:
            lock.acquire()
        except LockHeld:
            continue  # a live run holds the lane
        except OSError as exc:
            raise RunError(kind="store", message=f"cannot lock the run lane {key}: {exc.strerror or exc}") from None
        try:
            if records.hold(key):
                try:
                    await _recover_lane(records, data_dir, mission, key, stores, notice)
                finally:
                    records.let_go(key)
        finally:
            lock.release()


async def _recover_lane(records: RunRecords, data_dir: Path, mission: str, key: str, stores: Mapping[str, Store],
                        notice: Notice) -> None:
    backend = RecordsBackend(records, key, journal_path(data_dir, key))
    try:
        previous = backend.read_snapshot()
    except ValueError as exc:
        notice("warning", f"ignoring the run state of lane {key}: {exc}")
        return
    if previous is None:
        return
    replayed = await _replay_journal(backend, previous, stores, notice, lane_of(key)[1])
    killed = previous.get("status") == RUNNING
    if not (killed or replayed):
        return  # a run that ended: its state says how, and nothing waits in its journal
    if killed:
        records.append_history(mission, _history_entry(previous))  # killed before it could record its end
    records.remove(key)  # the stores are flushed: the journal's writes are durable now
    journal_path(data_dir, key).unlink(missing_ok=True)


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
    return {key: state.get(key) for key in ("mission", "lane", "run", "resumes", "status", "trigger", "startedAt",
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
    lane: int = 1  # 1-based, as documents say it; runs from before lanes were lane 1


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
    trigger, lane = data.get("trigger"), data.get("lane")
    return RunEntry(mission, run, status, started, float(duration) if isinstance(duration, (int, float)) else None,
                    resumes if isinstance(resumes, str) else None, unfinished or status == RUNNING,
                    trigger if isinstance(trigger, str) else "manual",
                    lane if isinstance(lane, int) and not isinstance(lane, bool) and lane >= 1 else 1)


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
    if entry.lane > 1:
        notes.append(f"lane {entry.lane} (overlapped another run)")
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
