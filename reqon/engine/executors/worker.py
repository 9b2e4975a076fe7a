"""The engine of a remote worker: runs the units a driver ships, knows nothing of Ray.

A worker holds, per run, the mission, an HTTP runtime built from the run's sealed
secrets, and an evaluator whose stores are *unit stores*: each unit reads the
snapshot it was shipped (plus its own writes) and records every store step it
applies, for the driver to write into the real stores. Which unit is running is a
context variable, so the many units an async worker runs at once never mix.
"""
from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reqon import ast
from reqon.engine.evaluator import Evaluator, Hooks
from reqon.engine.model import Invocation
from reqon.engine.executors.gates import RemoteGate
from reqon.engine.expressions import Expressions, Scope
from reqon.engine.fetching import FetchPlanner
from reqon.engine.units import BranchSpec, ErrorData, IterationsSpec, LoopId, UnitResult, loop_id, walk
from reqon.errors import RunError
from reqon.http.credentials import Credentials
from reqon.http.model import SourceSettings
from reqon.http.secrets import Secrets
from reqon.stores.base import Items, JsonObject, Snapshot, prepare_records
from reqon.stores.memory import RecordTable

Value = Any


@dataclass
class RunContext:
    """What every worker needs to run a mission's units; nothing secret (shipped in the clear)."""

    mission: ast.Mission
    files: dict[str, str]
    default_source: str | None
    checkpoints: dict[str, dict[str, Any]]
    stores: dict[str, tuple[str, str]]  # name -> (kind, target)
    gatekeeper: Any = None  # the run's GateKeeper actor, for sources with rateLimit or maxInFlight
    gated: list[str] = field(default_factory=list)
    proxy: bool = True  # workers honour the proxy variables of their own environment unless --no-proxy


@dataclass
class RunSecrets:
    """Source settings (headers may hold secrets), resolved credentials and the values to
    redact: sealed for one worker, opened only in its memory (see docs/scaling.md)."""

    sources: list[SourceSettings]
    credentials: dict[str, dict[str, Value]]
    redact: list[str] = field(default_factory=list)


class _Book:
    """What one running unit did, and the tables it reads."""

    def __init__(self, bases: dict[str, RecordTable]) -> None:
        self.bases = bases
        self.own: dict[str, RecordTable] = {}
        self.result = UnitResult()

    def table(self, name: str) -> RecordTable:
        table = self.own.get(name)
        if table is not None:
            return table
        return self.bases.get(name) or _EMPTY

    def writable(self, name: str) -> RecordTable:
        """The unit's own copy: written records must not leak into the shared snapshot."""
        table = self.own.get(name)
        if table is None:
            base = self.bases.get(name)
            table = self.own[name] = RecordTable(dict(base.versioned_items()[1]) if base is not None else None)
        return table


_EMPTY = RecordTable()
_CURRENT: contextvars.ContextVar[_Book] = contextvars.ContextVar("reqon_unit")


class UnitStore:
    """A store as a remote unit sees it (the real one lives on the driver)."""

    def __init__(self, name: str, kind: str, target: str) -> None:
        self.name, self.kind, self.target = name, kind, target

    async def write(self, records: Iterable[tuple[str, Any]], *, upsert: bool, partial: bool | None) -> None:
        prepared = prepare_records(self.name, records)
        book = _CURRENT.get()
        book.writable(self.name).apply(prepared, upsert=upsert, partial=partial)
        book.result.writes.append((self.name, prepared, upsert, partial))

    def get(self, key: str) -> JsonObject | None:
        return _CURRENT.get().table(self.name).get(key)

    def list(self) -> Snapshot:
        return _CURRENT.get().table(self.name).snapshot()

    def count(self) -> int:
        return len(_CURRENT.get().table(self.name))

    def items(self) -> Items:
        return _CURRENT.get().table(self.name).versioned_items()[1]

    async def flush(self) -> None:
        """The driver flushes the real store."""

    async def close(self) -> None:
        """Nothing to release."""


class _Checkpoints:
    """The driver's checkpoints as of the run's start; commits go back with the unit."""

    def __init__(self, entries: dict[str, dict[str, Any]]) -> None:
        self._entries = entries

    def synced_at(self, key: str) -> str | None:
        entry = self._entries.get(key)
        value = entry.get("syncedAt") if isinstance(entry, dict) else None
        return value if isinstance(value, str) else None

    def commit(self, staged: dict[str, dict[str, Any]]) -> None:
        _CURRENT.get().result.checkpoints.update(staged)
        staged.clear()


class _UnitHooks(Hooks):
    def validation_warning(self, message: str, span: ast.Span) -> None:
        _CURRENT.get().result.warnings.append((message, span))


class WorkerEngine:
    """One run's engine inside a worker process."""

    def __init__(self, context: RunContext, evaluator: Evaluator, secrets: Secrets, http: Any) -> None:
        self.context = context
        self.ev = evaluator
        self.secrets = secrets
        self.http = http
        self.loops: dict[LoopId, ast.For] = _loops_of(context.mission)
        self.bases: dict[tuple[str, int], RecordTable] = {}
        self._mission_vars: dict[str, Value] | None = None
        self._reported = 0
        self.cancelled: dict[str, ast.Span | None] = {}  # unit id -> the step running when cancelled

    @classmethod
    async def open(cls, context: RunContext, sealed: RunSecrets) -> WorkerEngine:
        secrets = Secrets(sealed.redact)
        http = None
        if sealed.sources:
            from reqon.http.client import HttpRuntime
            http = await HttpRuntime.open(sealed.sources, Credentials(sealed.credentials, {}), secrets,
                                          proxy=context.proxy)
            for name in context.gated:
                http.source(name).share_gates(RemoteGate(context.gatekeeper, name))
        stores = {name: UnitStore(name, kind, target) for name, (kind, target) in context.stores.items()}
        expressions = Expressions(stores, context.files)
        scope = Scope(None, {"errors": []})
        fetcher = FetchPlanner(expressions=expressions, http=http, default_source=context.default_source,
                               checkpoints=_Checkpoints(context.checkpoints),  # type: ignore[arg-type]
                               mission_scope=scope)
        evaluator = Evaluator(mission=context.mission, stores=stores, expressions=expressions, fetcher=fetcher,
                              mission_scope=scope, hooks=_UnitHooks())
        return cls(context, evaluator, secrets, http)

    def needs(self, stores: Mapping[str, int]) -> list[str]:
        """The snapshots (by store name) this worker does not hold yet."""
        return [name for name, version in stores.items() if (name, version) not in self.bases]

    def keep(self, name: str, version: int, items: list[tuple[str, JsonObject]]) -> None:
        for old in [k for k in self.bases if k[0] == name]:
            del self.bases[old]
        self.bases[(name, version)] = RecordTable(dict(items))

    async def run(self, spec: BranchSpec | IterationsSpec, scope_vars: dict[str, Value] | None,
                  unit_id: str) -> UnitResult:
        book = _Book({name: self.bases[(name, version)] for name, version in spec.stores.items()})
        _CURRENT.set(book)  # each unit runs in its own task, hence its own context
        self._use_mission_vars(spec.mission_vars)
        inv = Invocation(self.ev.actions[spec.action], spec.action if isinstance(spec, BranchSpec) else spec.branch,
                         spec.stage, spec.branch_index)
        try:
            if isinstance(spec, BranchSpec):
                await self.ev.invoke(inv)
            else:
                await self._iterations(spec, scope_vars or {}, inv, book.result)
        except RunError as exc:
            book.result.error = ErrorData.of(exc, self.secrets.redact)
        except asyncio.CancelledError:
            self.cancelled[unit_id] = inv.cancelled_at
            raise
        finally:
            book.result.checkpoints.update(inv.checkpoints)
            book.result.requests = self._requests_since_last()
        return book.result

    def _requests_since_last(self) -> int:
        """Requests sent since the last unit reported: every one is counted once, by some unit."""
        sent = self.http.requests_sent if self.http is not None else 0
        count, self._reported = sent - self._reported, sent
        return count

    def _use_mission_vars(self, variables: dict[str, Value]) -> None:
        """Units running together belong to one stage and share its mission scope (`errors`)."""
        if variables != self._mission_vars:
            self.ev.mission_scope.vars.clear()
            self.ev.mission_scope.vars.update(variables)
            self._mission_vars = variables

    async def _iterations(self, spec: IterationsSpec, scope_vars: dict[str, Value], inv: Invocation,
                          result: UnitResult) -> None:
        ev = self.ev
        step = self.loops[spec.loop]
        scope = Scope(ev.mission_scope, dict(scope_vars))
        for n, bindings in spec.iterations:
            await ev.iteration(step.body, scope, bindings, inv)
            result.completed.append(n)

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()


def _loops_of(mission: ast.Mission) -> dict[LoopId, ast.For]:
    return {loop_id(node): node for node in walk(list(mission.actions)) if isinstance(node, ast.For)}
