"""The REPL session: declarations, a persistent action scope, live stores, and the commands.

A `Session` owns one growing *session mission*. Declarations typed or loaded
replace earlier ones with the same name; after each change the mission is
checked (§9) and prepared again with the runner's own `prepare`, which gives a
fresh HTTP runtime and evaluator, while the stores already open (and what they
hold) are carried over. Steps run in one action scope that outlives every
input, so `get "/books"` followed by `response.items` shows the answer.

`execute(text)` never raises for a problem in the input: syntax, check and
run-time errors are printed as diagnostics against the text that was typed,
and the session goes on. `run_repl` is the `reqon repl` entry point.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import traceback
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from reqon import ast
from reqon.diagnostics import error
from reqon.repl.commands import COMMANDS, Names
from reqon.repl.display import Printer
from reqon.repl.inputs import Kind, Parsed, is_open, parse_input
from reqon.engine.evaluator import Hooks

SESSION_FILE = "<session>"  # spans of synthetic nodes: never shown
INPUT_ACTION = "__Input"
_NOWHERE = ast.Span(SESSION_FILE, 1, 1, 1, 1)
_PREDEFINED = frozenset({"response", "http"})


HELP = """\
Type an expression, a step, a declaration or a whole mission; an input continues
on the next line while a bracket or a string is open.

  1 + 2                              an expression: its value is printed as JSON
  let books = [{title: "Dune"}]      a step, run in the session's action scope
  source Shop { auth: none, base: "http://127.0.0.1:8765" }
  store seen: memory("seen")         declarations join the session mission
  get "/books"                       then: response.items

Commands:
""" + "\n".join(f"  {name:<9} {text}" for name, text in COMMANDS.items()) + """

Keys: Enter runs a complete input, Alt-Enter inserts a line break, Tab completes,
Up/Down walk the history, Ctrl-C cancels the input or a running step, Ctrl-D leaves."""


class Outcome(Enum):
    OK = "ok"
    FAILED = "failed"
    QUIT = "quit"


@dataclass
class Declarations:
    """The members of the session mission, one per name, in the order they were first declared."""

    name: str = "Repl"
    sources: dict[str, ast.Source] = field(default_factory=dict)
    stores: dict[str, ast.StoreDecl] = field(default_factory=dict)
    schemas: dict[str, ast.Schema] = field(default_factory=dict)
    transforms: dict[str, ast.Transform] = field(default_factory=dict)
    actions: dict[str, ast.Action] = field(default_factory=dict)
    settings: dict[str, ast.Setting] = field(default_factory=dict)
    runs: tuple[ast.Run, ...] = ()
    schedules: tuple[ast.Schedule, ...] = ()

    def merged(self, mission: ast.Mission, name: str | None = None) -> Declarations:
        """A copy with the members of `mission` added, replacing those with the same name."""
        def add(mine: dict[str, Any], theirs: tuple[Any, ...]) -> dict[str, Any]:
            return {**mine, **{d.name.name: d for d in theirs}}
        return Declarations(
            name=name or self.name, sources=add(self.sources, mission.sources), stores=add(self.stores, mission.stores),
            schemas=add(self.schemas, mission.schemas), transforms=add(self.transforms, mission.transforms),
            actions=add(self.actions, mission.actions),
            settings={**self.settings, **{s.key: s for s in mission.settings}},
            runs=mission.runs[-1:] or self.runs, schedules=mission.schedules or self.schedules)

    def mission(self, extra_actions: tuple[ast.Action, ...] = ()) -> ast.Mission:
        return ast.Mission(
            name=ast.Ident(name=self.name, span=_NOWHERE), sources=tuple(self.sources.values()),
            stores=tuple(self.stores.values()), schemas=tuple(self.schemas.values()),
            transforms=tuple(self.transforms.values()), actions=tuple(self.actions.values()) + extra_actions,
            runs=self.runs, schedules=self.schedules, settings=tuple(self.settings.values()), span=_NOWHERE)


class _Hooks(Hooks):
    """Evaluator hooks for steps typed directly: validation warnings are shown, not counted."""

    def __init__(self, printer: Printer) -> None:
        self.printer = printer

    def validation_warning(self, message: str, span: ast.Span) -> None:
        self.printer.notice(f"warning: {message}")


class Session:
    """One REPL session; call `start` first and `close` at the end (both on the same event loop)."""

    def __init__(self, printer: Printer, *, data_dir: Path = Path(".reqon-data"), database: Any = None) -> None:
        from reqon.engine.model import Invocation
        from reqon.engine.expressions import Scope

        self.printer = printer
        self.data_dir = data_dir
        self.database = database  # an open PostgresDatabase (`--database`) for the sql stores, or None
        self.files: dict[str, str] = {}  # input names and loaded files -> text, for carets and `text()`
        self.decls = Declarations()
        self.prepared: Any = None  # reqon.engine.runner.Prepared once started
        self.scope = Scope(None, {"response": None, "http": None})
        self.invocation = Invocation(ast.Action(name=ast.Ident(name=INPUT_ACTION, span=_NOWHERE), settings=(),
                                                misplaced=(), steps=(), span=_NOWHERE), branch="repl")
        self.last: Parsed | None = None
        self.inputs = 0
        self._fields_seen: dict[str, tuple[int, list[str]]] = {}
        self._commands = {
            ":help": self._help, ":load": self._load, ":run": self._run, ":stores": self._stores,
            ":show": self._show, ":ast": self._ast, ":reset": self._reset, ":quit": self._quit,
            ":q": self._quit, ":exit": self._quit,
        }

    # ------------------------------------------------------------ lifecycle
    async def start(self, path: str | None = None) -> Outcome:
        """Prepare the empty session, then load `path` (`reqon repl PATH`)."""
        await self._adopt(await self._prepare(self.decls))
        if path is not None:
            return await self._load(path)
        return Outcome.OK

    async def close(self) -> None:
        """Flush and close every store, the HTTP runtime and the database."""
        if self.prepared is not None:
            for store in self.prepared.stores.values():
                await store.close()
            if self.prepared.http is not None:
                await self.prepared.http.aclose()
            self.prepared = None
        if self.database is not None:
            await self.database.close()
            self.database = None

    # ------------------------------------------------------------ input
    def parse(self, text: str) -> Parsed:
        return parse_input(text, f"<input {self.inputs + 1}>")

    def is_complete(self, text: str) -> bool:
        """Whether Enter should run `text` rather than start a new line.

        Open brackets and strings always continue; text the parser wants more of
        (`let x =`) continues too, unless its last line is blank, so an empty line
        always shows what is wrong.
        """
        if is_open(text):
            return False
        if not text.strip() or text.lstrip().startswith(":") or text.endswith("\n"):
            return True
        return not self.parse(text).ends_early

    async def execute(self, text: str) -> Outcome:
        """Run one input of any kind; problems are printed, never raised (except cancellation)."""
        parsed = self.parse(text)
        if parsed.kind is Kind.EMPTY:
            return Outcome.OK
        if parsed.kind is Kind.COMMAND:
            return await self._command(text.strip())
        self.inputs += 1
        self.files[parsed.file] = text
        if parsed.diagnostics:
            self.printer.diagnostics(parsed.diagnostics, self.files)
            return Outcome.FAILED
        self.last = parsed
        try:
            return await self._evaluate(parsed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the REPL must survive anything the runtime throws
            self._internal_error(exc)
            return Outcome.FAILED

    async def _evaluate(self, parsed: Parsed) -> Outcome:
        from reqon.errors import RunError

        if parsed.kind in (Kind.MEMBERS, Kind.PROGRAM):
            return await self._declare(parsed)
        steps = parsed.steps or (ast.Let(name=ast.Ident(name="__value", span=_NOWHERE), value=parsed.expression,
                                         span=parsed.expression.span),)
        if not self._check_steps(steps, parsed.file):
            return Outcome.FAILED
        try:
            if parsed.kind is Kind.EXPRESSION:
                self.printer.value(self.prepared.evaluator.x.eval(parsed.expression, self.scope))
            else:
                await self._run_steps(steps)
        except RunError as exc:
            if exc.span is None and parsed.expression is not None:
                exc.span = parsed.expression.span
            self._run_error(exc)
            return Outcome.FAILED
        return Outcome.OK

    # ------------------------------------------------------------ declarations
    async def _declare(self, parsed: Parsed) -> Outcome:
        decls = self.decls
        if parsed.kind is Kind.MEMBERS:
            assert parsed.mission is not None
            decls = decls.merged(parsed.mission)
        else:
            for mission in parsed.missions:
                decls = decls.merged(mission, mission.name.name)
            decls = decls.merged(_loose_parts(parsed.program))
        return await self._replace(decls, {parsed.file}, show_warnings=False)

    async def _replace(self, decls: Declarations, files: set[str], *, show_warnings: bool) -> Outcome:
        """Check `decls` (reporting what lies in `files`), prepare them and make them the session's."""
        from reqon.checker import check_mission
        from reqon.engine.runner import ConfigFailure

        found = [d for d in check_mission(decls.mission()) if d.span.file in files]
        shown = found if show_warnings else [d for d in found if d.is_error]
        self.printer.diagnostics(shown, self.files)
        if any(d.is_error for d in found):
            return Outcome.FAILED
        try:
            prepared = await self._prepare(decls)
        except ConfigFailure as exc:
            self.printer.error(f"configuration error: {exc}")
            return Outcome.FAILED
        await self._adopt(prepared)
        self.decls = decls
        return Outcome.OK

    async def _prepare(self, decls: Declarations) -> Any:
        """The runner's `prepare`, keeping the stores already open when their declaration is unchanged."""
        from reqon.engine.runner import RunOptions, prepare

        prepared = await prepare(decls.mission(), self.files, RunOptions(data_dir=self.data_dir),
                                 database=self.database)
        for name, fresh in list(prepared.stores.items()):
            kept = self._kept_store(name, decls.stores[name])
            if kept is not None:
                await fresh.close()
                prepared.stores[name] = kept
        prepared.evaluator.hooks = _Hooks(self.printer)
        return prepared

    def _kept_store(self, name: str, decl: ast.StoreDecl) -> Any:
        old = self.decls.stores.get(name)
        if self.prepared is None or old is None or name not in self.prepared.stores:
            return None
        same = (old.kind.name, old.target) == (decl.kind.name, decl.target)
        return self.prepared.stores[name] if same else None

    async def _adopt(self, prepared: Any) -> None:
        old = self.prepared
        if old is not None:
            for name, store in old.stores.items():
                if prepared.stores.get(name) is not store:
                    await store.close()
            if old.http is not None:
                await old.http.aclose()
        self.prepared = prepared
        self.scope.parent = prepared.evaluator.mission_scope
        self._fields_seen.clear()

    # ------------------------------------------------------------ steps and expressions
    def _check_steps(self, steps: tuple[Any, ...], file: str) -> bool:
        """Check the steps as the body of an action that has already bound the session's variables."""
        from reqon.checker import check_mission

        bound = tuple(ast.Let(name=ast.Ident(name=name, span=_NOWHERE),
                              value=ast.Literal(value=None, kind="null", span=_NOWHERE), span=_NOWHERE)
                      for name in self.scope.vars if name not in _PREDEFINED)
        action = ast.Action(name=ast.Ident(name=INPUT_ACTION, span=_NOWHERE), settings=(), misplaced=(),
                            steps=bound + steps, span=_NOWHERE)
        found = [d for d in check_mission(self.decls.mission((action,)))
                 if d.span.file == file and d.is_error]
        self.printer.diagnostics(found, self.files)
        return not found

    async def _run_steps(self, steps: tuple[Any, ...]) -> None:
        from reqon.engine.evaluator import SkipSignal

        evaluator = self.prepared.evaluator
        try:
            await evaluator.run_block(steps, self.scope, self.invocation)
        except SkipSignal:
            pass
        finally:
            for name in sorted(self.invocation.wrote):
                await self.prepared.stores[name].flush()
            self.invocation.wrote.clear()
        evaluator.commit_checkpoints(self.invocation)
        self.invocation.checkpoints.clear()

    def _run_error(self, exc: Any) -> None:
        span = exc.span
        if isinstance(span, ast.Span) and span.file in self.files:
            self.printer.diagnostics([error(exc.kind, span, exc.message)], self.files)
        else:
            self.printer.error(f"{exc.kind}: {exc.message}")

    def _internal_error(self, exc: BaseException) -> None:
        if os.environ.get("REQON_DEBUG") == "1":
            traceback.print_exception(exc, file=self.printer.err)
        self.printer.error(f"internal error: {type(exc).__name__}: {exc} (set REQON_DEBUG=1 for a traceback)")

    # ------------------------------------------------------------ commands
    async def _command(self, text: str) -> Outcome:
        name, _, argument = text.partition(" ")
        handler = self._commands.get(name)
        if handler is None:
            close = [c for c in COMMANDS if c.startswith(name[:2])]
            hint = f"; did you mean {close[0]}?" if close else "; :help lists the commands"
            self.printer.error(f"unknown command {name}{hint}")
            return Outcome.FAILED
        try:
            return await handler(argument.strip())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - see execute
            self._internal_error(exc)
            return Outcome.FAILED

    async def _help(self, argument: str) -> Outcome:
        self.printer.text(HELP)
        return Outcome.OK

    async def _quit(self, argument: str) -> Outcome:
        return Outcome.QUIT

    async def _load(self, argument: str) -> Outcome:
        from reqon.loader import load_path

        if not argument:
            self.printer.error("usage: :load PATH")
            return Outcome.FAILED
        path = os.path.expanduser(argument)
        if not os.path.exists(path):
            self.printer.error(f"no such file or directory: {argument}")
            return Outcome.FAILED
        loaded = load_path(path)
        self.files.update(loaded.files)
        if loaded.has_errors:
            self.printer.diagnostics(loaded.diagnostics, self.files)
            return Outcome.FAILED
        decls = self.decls
        for mission in loaded.missions:
            decls = decls.merged(mission, mission.name.name)
        outcome = await self._replace(decls, set(loaded.files), show_warnings=True)
        if outcome is Outcome.OK:
            self.printer.notice(f"loaded {', '.join(m.name.name for m in loaded.missions)}: {self._summary()}")
        return outcome

    def _summary(self) -> str:
        d = self.decls
        parts = [(len(d.sources), "source"), (len(d.stores), "store"), (len(d.actions), "action")]
        text = ", ".join(f"{n} {word}{'s' if n != 1 else ''}" for n, word in parts)
        return text + (", a run pipeline" if d.runs else "")

    async def _run(self, argument: str) -> Outcome:
        from reqon.engine.pipeline import Pipeline

        mission = self._mission_to_run(argument)
        if mission is None:
            return Outcome.FAILED
        prepared = self.prepared
        reporter = self._reporter(mission)
        pipeline = Pipeline(mission, prepared.evaluator, listener=reporter, redact=prepared.secrets.redact)
        prepared.evaluator.hooks = reporter
        started = asyncio.get_running_loop().time()
        interrupted = False
        reporter.start(len(pipeline.stages))
        try:
            await pipeline.run()
        except asyncio.CancelledError:
            interrupted = True
            raise
        finally:
            reporter.stop()
            prepared.evaluator.hooks = _Hooks(self.printer)
            result = pipeline.result
            if result.failed_stage is not None:
                reporter.failure_report(result)
            elapsed = asyncio.get_running_loop().time() - started
            reporter.summary(result, sorted(prepared.stores), elapsed, interrupted)
        return Outcome.OK if result.failed_stage is None else Outcome.FAILED

    def _mission_to_run(self, argument: str) -> ast.Mission | None:
        mission = self.decls.mission()
        if argument:
            if argument not in self.decls.actions:
                self._unknown("action", argument, list(self.decls.actions))
                return None
            stage = ast.Stage(actions=(ast.Ident(name=argument, span=_NOWHERE),), parallel=False, options=None,
                              condition=None, span=_NOWHERE)
            return dataclasses.replace(mission, runs=(ast.Run(stages=(stage,), span=_NOWHERE),))
        if not self.decls.runs:
            self.printer.error("the session has no run pipeline: declare one (run A then B) or name an action (:run A)")
            return None
        return mission

    def _reporter(self, mission: ast.Mission) -> Any:
        from reqon.diagnostics import use_colour
        from reqon.engine.reporting import Reporter

        http = self.prepared.http
        err = self.printer.err
        return Reporter(mission=mission.name.name, stream=err, progress=_isatty(err), colour=use_colour(err),
                        redact=self.prepared.secrets.redact, requests=lambda: http.requests_sent if http else 0)

    async def _stores(self, argument: str) -> Outcome:
        rows = {name: {"kind": store.kind, "target": store.target, "records": store.count()}
                for name, store in sorted(self.prepared.stores.items())}
        if not self.printer.pretty:
            self.printer.json_line(rows)
        elif not rows:
            self.printer.text("no stores yet: declare one, e.g. store seen: memory(\"seen\")")
        else:
            self.printer.table("stores", [{"store": name, **row} for name, row in rows.items()])
        return Outcome.OK

    async def _show(self, argument: str) -> Outcome:
        kind, _, name = argument.partition(" ")
        if kind == "source":
            return self._show_source(name.strip())
        store = self.prepared.stores.get(argument)
        if store is None:
            self._unknown("store", argument, list(self.prepared.stores))
            return Outcome.FAILED
        records = store.list()
        if not self.printer.pretty:
            self.printer.json_line(records)
        elif not records:
            self.printer.text(f"store {argument} is empty")
        else:
            self.printer.table(f"{argument} ({len(records)} record{'s' if len(records) != 1 else ''})", records)
        return Outcome.OK

    def _show_source(self, name: str) -> Outcome:
        """The operations of an OpenAPI source: operationId, method and path, as a table."""
        openapi = self.prepared.evaluator.fetcher.openapi
        if name not in openapi:
            if name in self.decls.sources:
                self.printer.error(f"source {name} has no OpenAPI document (declare it with: source {name} from \"…\")")
            else:
                self._unknown("source", name, list(self.decls.sources))
            return Outcome.FAILED
        document = openapi[name].document
        rows = [{"operationId": op.operation_id, "method": op.method, "path": op.path}
                for op in sorted(document.operations.values(), key=lambda o: (o.path, o.method))]
        if not self.printer.pretty:
            self.printer.json_line(rows)
        else:
            self.printer.table(f"source {name}: {len(rows)} operation{'s' if len(rows) != 1 else ''} of "
                               f"{document.location}", rows)
        return Outcome.OK

    def _unknown(self, what: str, name: str, known: list[str]) -> None:
        import difflib

        if not name:
            self.printer.error(f"name a {what}: {', '.join(sorted(known)) or f'no {what} is declared yet'}")
            return
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else (f"; {what}s: {', '.join(sorted(known))}" if known else "")
        self.printer.error(f"unknown {what} {name}{hint}")

    async def _ast(self, argument: str) -> Outcome:
        from reqon.ast_json import render_tree, to_json

        if self.last is None:
            self.printer.error("no input yet")
            return Outcome.FAILED
        tree = self.last.tree
        if not self.printer.pretty:
            self.printer.json_line(to_json(tree))
            return Outcome.OK
        nodes = tree if isinstance(tree, tuple) else (tree,)
        self.printer.text("\n".join(render_tree(node) for node in nodes))
        return Outcome.OK

    async def _reset(self, argument: str) -> Outcome:
        await self.close()
        self.decls = Declarations()
        self.scope.vars = {"response": None, "http": None}
        self.last = None
        await self._adopt(await self._prepare(self.decls))
        self.printer.notice("session reset")
        return Outcome.OK

    # ------------------------------------------------------------ for completion
    def names(self) -> Names:
        stores = self.prepared.stores if self.prepared is not None else {}
        return Names(sources=list(self.decls.sources), stores=list(stores), actions=list(self.decls.actions),
                     transforms=list(self.decls.transforms), schemas=list(self.decls.schemas),
                     variables={k: v for k, v in self.scope.vars.items() if k not in _PREDEFINED or v is not None},
                     store_fields={name: self._store_fields(name, store) for name, store in stores.items()},
                     operations=self._operations())

    def _operations(self) -> dict[str, list[str]]:
        if self.prepared is None:
            return {}
        return {name: list(source.document.operations) for name, source in self.prepared.evaluator.fetcher.openapi.items()}

    def _store_fields(self, name: str, store: Any) -> list[str]:
        """Field names of the first records, listed again only when the store's size changed."""
        count = store.count()
        cached = self._fields_seen.get(name)
        if cached is None or cached[0] != count:
            cached = (count, _fields(store.list()[:50]))
            self._fields_seen[name] = cached
        return cached[1]


def _fields(records: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for record in records:
        seen.update(dict.fromkeys(record))
    return list(seen)


def _loose_parts(program: ast.Program | None) -> ast.Mission:
    """Top-level actions, schemas and transforms typed beside a mission belong to the session too."""
    decls = program.declarations if program is not None else ()
    return ast.Mission(name=ast.Ident(name="", span=_NOWHERE),
                       actions=tuple(d for d in decls if isinstance(d, ast.Action)),
                       schemas=tuple(d for d in decls if isinstance(d, ast.Schema)),
                       transforms=tuple(d for d in decls if isinstance(d, ast.Transform)), span=_NOWHERE)


def _isatty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


# ---------------------------------------------------------------- entry points


async def run_script(stream: Any, printer: Printer, data_dir: Path, path: str | None = None, *,
                     database: Any = None) -> int:
    """Read inputs from a non-terminal stream: an input ends at a line where it is complete.

    Exit status is 0 at the end of input even when inputs failed, as the spec asks of
    the REPL (§8, "end of input exits 0"); errors are on stderr for whoever reads them.
    """
    session = Session(printer, data_dir=data_dir, database=database)
    try:
        if await session.start(path) is Outcome.QUIT:
            return 0
        pending = ""
        for line in stream:
            pending += line
            if not session.is_complete(pending.removesuffix("\n")):
                continue
            text, pending = pending.strip("\n"), ""
            if await session.execute(text) is Outcome.QUIT:
                return 0
        if pending.strip():
            await session.execute(pending.strip("\n"))
        return 0
    finally:
        await session.close()
