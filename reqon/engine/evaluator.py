"""Execution of actions and steps (LANGUAGE.md §4, §6.2–§6.7).

An action invocation runs its steps in a fresh action scope. Flow directives
travel as small signal exceptions to the construct that owns them: `skip` to the
enclosing loop iteration (or the invocation), `continue` to the enclosing match,
`retry` to the block holding its anchor fetch. Everything parallel is delegated
to `scheduler`; everything HTTP to `http`.
"""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reqon import ast
from reqon import values as V
from reqon.errors import RunError
from reqon.engine.expressions import NO_SUBJECT, Expressions, Scope
from reqon.engine.fetching import FetchPlanner
from reqon.engine.model import Invocation
from reqon.engine.runstate import ProgressLog
from reqon.engine.scheduler import LOCAL, Executor, run_iterations
from reqon.engine.units import (BranchSpec, IterationsSpec, LoopShipment, UnitResult, loop_id, names_used,
                               reachable_actions)
from reqon.engine.waiting import CURRENT_OWNER, Webhooks
from reqon.stores.base import Store

Value = Any
_MATCH_SUBJECT = "\0match-subject"  # bound in arm scopes; no source name can collide with it


class SkipSignal(Exception):
    """`skip` (and `queue`): ends the loop iteration, or the invocation outside loops."""


class ContinueSignal(Exception):
    """`continue`: ends the match-arm body."""


@dataclass
class RetrySignal(Exception):
    """`retry` / `jump … then retry`: replay from the anchor fetch of an enclosing block."""

    max_attempts: int = 3
    delay_ms: Callable[[int], float] | None = None
    span: ast.Span | None = None


class Hooks:
    """What the evaluator tells the outside world; the reporter overrides what it needs."""

    def records_written(self, store: str, count: int) -> None:
        pass

    def validation_warning(self, message: str, span: ast.Span) -> None:
        pass

    def iterations(self, loop: tuple[str, int], total: int, done: int) -> None:
        pass


class Evaluator:
    """Runs steps against the mission's prepared state (stores, sources, declarations)."""

    def __init__(self, *, mission: ast.Mission, stores: Mapping[str, Store], expressions: Expressions,
                 fetcher: FetchPlanner, mission_scope: Scope, hooks: Hooks | None = None,
                 webhooks: Webhooks | None = None) -> None:
        self.mission = mission
        self.stores = stores
        self.x = expressions
        self.fetcher = fetcher
        self.mission_scope = mission_scope
        self.hooks = hooks or Hooks()
        self.webhooks = webhooks or Webhooks(None)
        self.progress = ProgressLog()  # the run state (§8.5) when the runner keeps one
        self.executor: Executor = LOCAL  # where branches of parallel stages and loop chunks run
        self.store_versions: dict[str, int] = {}  # steps applied per store: remote snapshots are cached by it
        self.remote_requests = 0  # requests sent by remote units, for the summary
        self._reads: dict[int, list[str]] = {}
        self.actions = {a.name.name: a for a in mission.actions}
        self.transforms = {t.name.name: t for t in mission.transforms}
        self.schemas = schemas_of(mission)
        self._steps: dict[type, Callable[[Any, Scope, Invocation], Any]] = {
            ast.Fetch: self._fetch, ast.CallStep: self._call, ast.For: self._for, ast.MapStep: self._map,
            ast.Apply: self._apply, ast.Validate: self._validate, ast.StoreStep: self._store,
            ast.Let: self._let, ast.MatchStep: self._match, ast.Wait: self._wait, ast.Skip: self._skip,
            ast.Continue: self._continue, ast.Abort: self._abort, ast.Retry: self._retry,
            ast.Queue: self._queue, ast.Jump: self._jump,
        }

    # ------------------------------------------------------------ invocations and blocks
    async def invoke(self, inv: Invocation) -> None:
        """Run an action to its end; `skip` outside any loop ends it successfully."""
        scope = Scope(self.mission_scope, {"response": None, "http": None})
        owner = CURRENT_OWNER.set(inv)  # webhook paths registered from here belong to `inv` (§8.1)
        try:
            await self.run_block(inv.action.steps, scope, inv)
        except SkipSignal:
            pass
        finally:
            CURRENT_OWNER.reset(owner)
            self.webhooks.release_all(inv)

    async def run_block(self, steps: tuple[Any, ...], scope: Scope, inv: Invocation) -> None:
        i, anchor = 0, -1
        attempts: dict[int, int] = {}
        while i < len(steps):
            step = steps[i]
            try:
                result = self._steps[type(step)](step, scope, inv)
                if asyncio.iscoroutine(result):
                    await result
            except RetrySignal as signal:
                if anchor < 0:
                    raise
                await self._before_replay(signal, attempts, anchor)
                i = anchor
                continue
            except RunError as exc:
                if exc.span is None:
                    exc.span = step.span
                raise
            except RecursionError:
                raise RunError("runtime", "an expression is nested too deeply to evaluate", span=step.span) from None
            except asyncio.CancelledError:
                if inv.cancelled_at is None:
                    inv.cancelled_at = step.span
                raise
            if type(step) in (ast.Fetch, ast.CallStep):
                anchor = i
            i += 1

    async def _before_replay(self, signal: RetrySignal, attempts: dict[int, int], anchor: int) -> None:
        done = attempts.get(anchor, 1)
        if done >= signal.max_attempts:
            raise RunError(kind="retry-exhausted",
                           message=f"retry: gave up after {done} attempt{'s' if done != 1 else ''}",
                           span=signal.span)
        attempts[anchor] = done + 1
        if signal.delay_ms is not None:
            await asyncio.sleep(max(0.0, signal.delay_ms(done)) / 1000)

    # ------------------------------------------------------------ simple steps
    def _let(self, step: ast.Let, scope: Scope, inv: Invocation) -> None:
        scope.bind(step.name.name, self.x.eval(step.value, scope))

    def _map(self, step: ast.MapStep, scope: Scope, inv: Invocation) -> None:
        source = self.x.eval(step.source, scope)
        entries = step.fields.entries
        if isinstance(source, list):
            result: Value = [self.x.build_object(entries, scope, item) for item in source]
        else:
            result = self.x.build_object(entries, scope, source)
        scope.bind(step.as_name.name if step.as_name else "response", result)

    def _apply(self, step: ast.Apply, scope: Scope, inv: Invocation) -> None:
        transform = self.transforms[step.transform.name]
        source = self.x.eval(step.source, scope)
        if isinstance(source, list):
            result: Value = [self._transform_one(transform, item, scope) for item in source]
        else:
            result = self._transform_one(transform, source, scope)
        scope.bind(step.as_name.name if step.as_name else "response", result)

    def _transform_one(self, transform: ast.Transform, value: Value, scope: Scope) -> Value:
        for variant in transform.variants:
            if variant.source is not None and not V.matches_type(value, V.TypeRef(variant.source.name),
                                                                 self.schemas):
                continue
            if variant.where is not None and not V.truthy(self.x.eval(variant.where, scope, value)):
                continue
            return self.x.build_object(variant.fields.entries, scope, value)
        raise RunError(kind="no-match", message=f"apply {transform.name.name}: no variant accepts "
                                                f"a value of type {V.type_of(value)}: {_short(value)}")

    def _validate(self, step: ast.Validate, scope: Scope, inv: Invocation) -> None:
        """Without a target the conditions run in the enclosing scope, with no implicit subject."""
        target = self.x.eval(step.target, scope) if step.target is not None else NO_SUBJECT
        for assume in step.constraints:
            if V.truthy(self.x.eval(assume.condition, scope, target)):
                continue
            message = assume.message or f"assumption failed: {self.x.text(assume.condition)}"
            if assume.warn:
                self.hooks.validation_warning(message, assume.span)
                continue
            shown = f" (value: {_short(target)})" if step.target is not None else ""
            raise RunError(kind="validation", message=f"{message}{shown}", span=assume.span)

    def _skip(self, step: ast.Skip, scope: Scope, inv: Invocation) -> None:
        raise SkipSignal()

    def _continue(self, step: ast.Continue, scope: Scope, inv: Invocation) -> None:
        raise ContinueSignal()

    def _abort(self, step: ast.Abort, scope: Scope, inv: Invocation) -> None:
        message = "aborted"
        if step.message is not None:
            message = V.to_string(self.x.eval(step.message, scope))
        raise RunError(kind="abort", message=message, span=step.span)

    async def _wait(self, step: ast.Wait, scope: Scope, inv: Invocation) -> None:
        async def write(name: str, records: list[tuple[str, dict[str, Value]]]) -> None:
            await self._write(name, records, upsert=False, partial=None, inv=inv)

        def warn(message: str) -> None:
            self.hooks.validation_warning(message, step.span)
        scope.bind("response", await self.webhooks.wait(step, scope, self.x, write, warn))

    # ------------------------------------------------------------ stores
    async def _store(self, step: ast.StoreStep, scope: Scope, inv: Invocation) -> None:
        value = self.x.eval(step.value, scope)
        if step.each and not isinstance(value, list):
            raise RunError(kind="store", message=f"store each: expected a list, got {V.type_of(value)}")
        options = _options(step.options)
        records = self._records(value, options.get("key"), scope)
        upsert = bool(self._static(options.get("upsert"), scope, False))
        partial = self._static(options.get("partial"), scope, None)
        await self._write(step.store.name, records, upsert=upsert, partial=partial, inv=inv)

    async def _write(self, name: str, records: list[tuple[str, dict[str, Value]]], *, upsert: bool,
                     partial: Any, inv: Invocation) -> None:
        await self.stores[name].write(records, upsert=upsert, partial=None if partial is None else bool(partial))
        self.store_versions[name] = self.store_versions.get(name, 0) + 1
        inv.wrote.add(name)
        self.hooks.records_written(name, len(records))

    def _records(self, value: Value, key_expr: Any, scope: Scope) -> list[tuple[str, dict[str, Value]]]:
        if isinstance(value, dict):
            items = [value]
        elif isinstance(value, list):
            items = value
        else:
            raise RunError(kind="store", message=f"store: expected an object or a list, got {V.type_of(value)}")
        records = []
        for n, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                raise RunError(kind="store", message=f"store: element {n} is {V.a_type(item)}, expected an object")
            records.append((self._key(item, key_expr, scope), item))
        return records

    def _key(self, record: dict[str, Value], key_expr: Any, scope: Scope) -> str:
        key = self.x.eval(key_expr, scope, record) if key_expr is not None else record.get("id", _FRESH)
        if key is _FRESH:
            return str(uuid.uuid4())
        if isinstance(key, str):
            return key
        if isinstance(key, (int, float)) and not isinstance(key, bool):
            return V.to_string(key)
        raise RunError(kind="store", message=f"store: a key must be a string or a number, got {V.type_of(key)}")

    def _static(self, expr: Any, scope: Scope, default: Any) -> Any:
        return default if expr is None else self.x.eval(expr, scope)

    async def _queue(self, step: ast.Queue, scope: Scope, inv: Invocation) -> None:
        options = _options(step.options)
        if "item" in options:
            item = self.x.eval(options["item"], scope)
        else:
            item = scope.lookup(_MATCH_SUBJECT)
        record = item if isinstance(item, dict) else {"value": item}
        key_expr = options.get("key")
        key = self._key(record, key_expr, scope) if key_expr is not None else str(uuid.uuid4())
        await self._write(step.store.name, [(key, record)], upsert=False, partial=None, inv=inv)
        raise SkipSignal()

    # ------------------------------------------------------------ control flow
    async def _match(self, step: ast.MatchStep, scope: Scope, inv: Invocation) -> None:
        """§4.9: the first applying arm's body runs in its own block scope, which holds the
        pattern's bindings; each invocation, iteration and branch has its own."""
        arm_scope: Scope | None = None
        chosen: ast.Arm | None = None
        if step.subject is None:
            for arm in step.arms:
                if arm.condition is None or V.truthy(self.x.eval(arm.condition, scope)):
                    chosen, arm_scope = arm, Scope(scope)
                    break
            else:
                raise RunError(kind="no-match", message="no arm of match applied: every condition was false")
        else:
            subject = self.x.eval(step.subject, scope)
            for arm in step.arms:
                arm_scope = self.x.arm_scope(arm.pattern, arm.guard, subject, scope)
                if arm_scope is not None:
                    chosen = arm
                    arm_scope.bind(_MATCH_SUBJECT, subject)
                    break
            else:
                raise RunError(kind="no-match", message=f"no arm of match matched a value of type "
                                                        f"{V.type_of(subject)}: {_short(subject)}")
        assert chosen is not None and arm_scope is not None
        try:
            await self.run_block(chosen.body, arm_scope, inv)
        except ContinueSignal:
            pass

    async def _for(self, step: ast.For, scope: Scope, inv: Invocation) -> None:
        items = self._loop_items(step, scope)
        name = step.var.name
        loop = self.progress.loop(inv, step, scope, items)
        todo = [n for n in range(len(items)) if not loop.done_earlier(n)]  # --resume skips the rest (§8.5)
        done = len(items) - len(todo)

        async def one(n: int) -> None:
            await self.iteration(step.body, scope, {name: items[n], **loop.bindings(n)}, inv)
            await completed(n)

        async def completed(n: int) -> None:
            nonlocal done
            await loop.completed(n)
            done += 1
            self.hooks.iterations((inv.branch, id(step)), len(items), done)

        if not step.parallel:
            for n in todo:
                await one(n)
            return
        executor = self.executor
        size = executor.chunk_size(len(todo), inv.concurrency)
        chunks = [todo[k:k + size] for k in range(0, len(todo), size)]
        shipment = LoopShipment(step, scope, items, loop.bindings)

        def submit(c: int) -> Awaitable[None]:
            return executor.submit(_IterationsUnit(self, inv, shipment, chunks[c], one, completed))
        await run_iterations(len(chunks), submit, limit=inv.concurrency)

    def _loop_items(self, step: ast.For, scope: Scope) -> list[Value]:
        collection = self.x.eval(step.collection, scope)
        if not isinstance(collection, list):
            raise RunError.runtime(f"for: collection is {V.a_type(collection)}, expected a list")
        if step.where is None:
            return collection
        probe = Scope(scope)
        kept = []
        for item in collection:
            probe.vars[step.var.name] = item
            if V.truthy(self.x.eval(step.where, probe, item)):
                kept.append(item)
        return kept

    async def iteration(self, body: tuple[Any, ...], scope: Scope, bindings: dict[str, Value],
                         inv: Invocation) -> None:
        try:
            await self.run_block(body, Scope(scope, bindings), inv)
        except SkipSignal:
            pass

    async def _jump(self, step: ast.Jump, scope: Scope, inv: Invocation) -> None:
        nested = Invocation(self.actions[step.action.name], inv.branch, inv.stage)
        await self.invoke(nested)
        self.commit_checkpoints(nested)
        if step.then == "retry":
            raise RetrySignal(max_attempts=3, delay_ms=None, span=step.span)

    def _retry(self, step: ast.Retry, scope: Scope, inv: Invocation) -> None:
        options = _options(step.options)
        policy = self.fetcher.retry_policy(options, scope)
        delay_expr = options.get("delay")
        if delay_expr is not None:
            delay = V.to_number(self.x.eval(delay_expr, scope)) or 0

            def fixed(_: int) -> float:
                return float(delay)
            raise RetrySignal(max_attempts=policy.max_attempts, delay_ms=fixed, span=step.span)
        raise RetrySignal(max_attempts=policy.max_attempts, delay_ms=policy.delay_ms, span=step.span)

    # ------------------------------------------------------------ HTTP
    async def _fetch(self, step: ast.Fetch, scope: Scope, inv: Invocation) -> None:
        body, binding = await self.fetcher.fetch(step, scope, inv.checkpoints)
        scope.bind("response", body)
        scope.bind("http", binding)

    async def _call(self, step: ast.CallStep, scope: Scope, inv: Invocation) -> None:
        body, binding = await self.fetcher.fetch(step, scope, inv.checkpoints)
        scope.bind("response", body)
        scope.bind("http", binding)

    def commit_checkpoints(self, inv: Invocation) -> None:
        self.fetcher.commit(inv.checkpoints)

    # ------------------------------------------------------------ units (scheduler.Executor)
    def branch_unit(self, inv: Invocation) -> BranchUnit:
        return BranchUnit(self, inv)

    async def flush_written(self, inv: Invocation) -> None:
        """File stores are flushed when the invocation that wrote them settles (§6.6.6)."""
        for name in sorted(inv.wrote):
            await self.stores[name].flush()

    def mission_vars(self) -> dict[str, Value]:
        return dict(self.mission_scope.vars)

    def reads(self, root: ast.Action | ast.For) -> dict[str, int]:
        """The stores that code under `root` may read, with their versions: a remote unit
        gets a snapshot of each, taken when it starts."""
        names = self._reads.get(id(root))  # AST nodes live as long as the run
        if names is None:
            reached = reachable_actions([root], self.actions)
            used = names_used([root, *reached, *self.transforms.values()])
            names = self._reads[id(root)] = sorted(used & set(self.stores))
        return {name: self.store_versions.get(name, 0) for name in names}

    async def absorb(self, result: UnitResult, inv: Invocation) -> None:
        """Apply on the driver what a remote unit did: its store steps in order (each
        reaching the store exactly once), its warnings and its request count."""
        for name, records, upsert, partial in result.writes:
            await self._write(name, records, upsert=upsert, partial=partial, inv=inv)
        for message, span in result.warnings:
            self.hooks.validation_warning(message, span)
        self.remote_requests += result.requests


_FRESH = object()


class BranchUnit:
    """A branch of a parallel stage (§7.2) as the scheduler's executor sees it."""

    def __init__(self, ev: Evaluator, inv: Invocation) -> None:
        self.ev, self.inv = ev, inv

    async def run_here(self) -> None:
        ev, inv = self.ev, self.inv
        try:
            await ev.invoke(inv)
            ev.commit_checkpoints(inv)
        finally:
            await ev.flush_written(inv)

    def describe(self) -> BranchSpec:
        ev, inv = self.ev, self.inv
        return BranchSpec(inv.branch, inv.stage, inv.branch_index, ev.mission_vars(), ev.reads(inv.action))

    async def absorb(self, result: UnitResult) -> None:
        ev, inv = self.ev, self.inv
        try:
            await ev.absorb(result, inv)
            if result.error is not None:
                raise result.error.error()
            ev.fetcher.commit(result.checkpoints)
        finally:
            await ev.flush_written(inv)

    def cancelled_at(self, span: ast.Span | None) -> None:
        if self.inv.cancelled_at is None:
            self.inv.cancelled_at = span


class _IterationsUnit:
    """A chunk of a parallel loop's iterations (§7.6), run one after another."""

    def __init__(self, ev: Evaluator, inv: Invocation, shipment: LoopShipment, chunk: list[int],
                 one: Callable[[int], Awaitable[None]], completed: Callable[[int], Awaitable[None]]) -> None:
        self.ev, self.inv, self.shipment, self.chunk = ev, inv, shipment, chunk
        self.one, self.completed = one, completed

    async def run_here(self) -> None:
        for n in self.chunk:
            await self.one(n)

    def describe(self) -> IterationsSpec:
        ev, inv, shipment = self.ev, self.inv, self.shipment
        name = shipment.step.var.name
        iterations = [(n, {name: shipment.items[n], **shipment.bindings(n)}) for n in self.chunk]
        return IterationsSpec(inv.action.name.name, inv.branch, inv.stage, inv.branch_index, loop_id(shipment.step),
                              iterations, shipment, ev.mission_vars(), ev.reads(shipment.step))

    async def absorb(self, result: UnitResult) -> None:
        await self.ev.absorb(result, self.inv)
        self.inv.checkpoints.update(result.checkpoints)
        for n in result.completed:
            await self.completed(n)
        if result.error is not None:
            raise result.error.error()

    def cancelled_at(self, span: ast.Span | None) -> None:
        if self.inv.cancelled_at is None:
            self.inv.cancelled_at = span


def _options(options: ast.Options | None) -> dict[str, Any]:
    if options is None:
        return {}
    return {entry.key: entry.value for entry in options.entries}


def _short(value: Value, limit: int = 200) -> str:
    text = V.to_json_text(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def schemas_of(mission: ast.Mission) -> dict[str, V.Schema]:
    """The mission's schemas in the value model's shape, for `matches_type`."""
    return {s.name.name: V.Schema(s.name.name, tuple(_field(f) for f in s.fields)) for s in mission.schemas}


def _field(f: ast.SchemaField) -> V.Field:
    return V.Field(f.name, _type(f.type_expr), f.optional)


def _type(t: ast.TypeName | ast.InlineType) -> V.TypeRef | V.InlineObject:
    if isinstance(t, ast.InlineType):
        return V.InlineObject(tuple(_field(f) for f in t.fields))
    return V.TypeRef(t.name, _type(t.arg) if t.arg is not None else None)

