"""`reqon run`: the mission lifecycle of LANGUAGE.md §6.1 — load, check, prepare, run, finish.

Load and check reuse the front end; Prepare turns declarations into live
objects (evaluated source settings, credentials, open stores, one HTTP
runtime); Run hands the pipeline to the scheduler; Finish flushes and closes
stores, writes `--output` and prints the summary — also after a failure or an
interruption, so nothing already stored is lost.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reqon import ast
from reqon import values as V
from reqon.engine.checkpoints import CheckpointFile, Checkpoints, PostgresCheckpoints
from reqon.engine.database import open_database
from reqon.errors import ConfigError, RunError
from reqon.engine.evaluator import Evaluator, schemas_of
from reqon.engine.expressions import Expressions, Scope
from reqon.engine.fetching import FetchPlanner
from reqon.engine.openapi_sources import OpenApiSource
from reqon.engine.waiting import Webhooks
from reqon.http.model import SourceSettings

if TYPE_CHECKING:
    from reqon.http.client import HttpRuntime
    from reqon.stores.postgres import PostgresDatabase
    from reqon.stores.postgrest import PostgrestEndpoint
    from reqon.http.credentials import Credentials
    from reqon.http.webhooks import WebhookServer  # aiohttp's web server loads only with --webhook…
from reqon.engine.pipeline import Overrides, Pipeline, PipelineResult
from reqon.engine.reporting import Reporter
from reqon.engine.lanes import LanesBusy, mission_lock_path, take_lane
from reqon.heap import long_lived
from reqon.engine.runstate import FileRunRecords, RunRecords, RunState, console_notice
from reqon.http.secrets import Secrets
from reqon.stores import open_store
from reqon.stores.base import Store
from reqon.stores.file import remove_stale_temporaries, write_atomically
from reqon.stores.locks import LockHeld, ProcessLock

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONFIG = 0, 1, 2, 3
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


@dataclass
class RunOptions:
    data_dir: Path = Path(".reqon-data")
    env_files: list[str] | None = None
    auth_file: str | None = None
    output: str | None = None
    verbose: bool = False
    quiet: bool = False
    json_log: bool = False
    progress: bool | None = None
    overrides: Overrides = field(default_factory=Overrides)
    resume: bool = False
    proxy: bool = True  # honour HTTP(S)_PROXY / NO_PROXY (--no-proxy turns it off)
    executor: str = "local"
    ray_address: str | None = None
    database: str | None = None  # --database; REQON_DATABASE_URL when None
    webhook: WebhookSettings | None = None  # --webhook…: start the server for this run (§8.1)
    trigger: str = "manual"  # what started the run: manual, schedule or once (`reqon runs`)


@dataclass(frozen=True)
class WebhookSettings:
    host: str = "127.0.0.1"
    port: int = 3000
    url: str | None = None


@dataclass(frozen=True)
class RunOutcome:
    """How one run ended, for the daemon's log and exit code."""

    status: str  # succeeded, failed, interrupted, timed out or configuration error
    code: int
    duration_s: float
    records: int = 0
    message: str = ""


@dataclass
class Prepared:
    mission: ast.Mission
    stores: dict[str, Store]
    http: HttpRuntime | None
    evaluator: Evaluator
    secrets: Secrets
    files: dict[str, str] = field(default_factory=dict)
    sources: list[SourceSettings] = field(default_factory=list)
    credentials: Credentials | None = None
    database: PostgresDatabase | None = None


class ConfigFailure(Exception):
    """A problem of the Prepare step: exit 3 with `reqon: configuration error: …`."""


# ---------------------------------------------------------------- command


def run_command(args: Any) -> int:
    """`reqon run`: the command line's options become `RunOptions`."""
    options = RunOptions(data_dir=Path(args.data_dir), env_files=args.env, auth_file=args.auth, output=args.output,
                         verbose=args.verbose, quiet=args.quiet, json_log=args.json_log, progress=args.progress,
                         overrides=Overrides(args.max_concurrency, args.mode), resume=args.resume,
                         proxy=getattr(args, "proxy", True), executor=args.executor,
                         ray_address=args.ray_address, webhook=webhook_settings(args), database=args.database)
    return run_path(args.path, options, mission_name=args.mission, dry=args.dry_run)


def run_path(path: str, options: RunOptions, *, mission_name: str | None = None, dry: bool = False) -> int:
    """Load, check and run a mission file or folder; the exit code of §8. Every face runs missions through here."""
    from reqon.checker import check_loaded
    from reqon.diagnostics import render_all, use_colour
    from reqon.loader import load_path

    if not os.path.exists(path):
        print(f"reqon: usage error: no such file or directory: {path}", file=sys.stderr)
        return EXIT_USAGE
    loaded = load_path(path)
    if not loaded.has_errors:
        try:
            _load_local_documents(loaded.missions)
        except ConfigError as exc:
            return _config_error(str(exc))
    diagnostics = loaded.diagnostics + (check_loaded(loaded) if not loaded.has_errors else [])
    errors = [d for d in diagnostics if d.is_error]
    shown = errors if options.quiet else diagnostics
    if shown and options.json_log:
        _log_diagnostics(shown, loaded.missions[0].name.name if loaded.missions else None)
    elif shown:
        sys.stderr.write(render_all(shown, loaded.files, use_colour(sys.stderr)))
    if errors:
        return EXIT_USAGE
    try:
        mission = _select_mission(loaded.missions, mission_name)
    except ConfigFailure as exc:
        return _config_error(str(exc))
    if dry:
        return dry_run(mission, loaded.files, options)
    return asyncio.run(run_mission(mission, loaded.files, options))


def _load_local_documents(missions: list[ast.Mission]) -> None:
    """A local OpenAPI document that cannot be used is a configuration error of the run
    (exit 3, §3.1.6), found before the checker would call it E213 (exit 2)."""
    from reqon.engine.openapi_sources import load_local
    from reqon.openapi.document import is_url
    for mission in missions:
        for source in mission.sources:
            if source.document is not None and not is_url(source.document):
                load_local(source)


def webhook_settings(args: Any) -> WebhookSettings | None:
    """--webhook, or any of --webhook-port/-host/-url, which imply it (§8)."""
    port, host, url = args.webhook_port, args.webhook_host, args.webhook_url
    if not (args.webhook or port is not None or host is not None or url is not None):
        return None
    return WebhookSettings(host=host or "127.0.0.1", port=3000 if port is None else port, url=url)


async def start_webhooks(settings: WebhookSettings, *, json_log: bool, quiet: bool) -> WebhookServer:
    """Start the webhook server and say where it listens (§8.1); ConfigError when it cannot."""
    from reqon.engine.reporting import json_line
    from reqon.http.webhooks import WebhookServer

    def on_event(path: str, status: int, note: str) -> None:
        if json_log:
            print(json_line("webhook.event", None, "info" if status == 202 else "warning", path=path,
                            status=status, message=note or None), file=sys.stderr, flush=True)

    server = WebhookServer(settings.host, settings.port, settings.url, on_event=on_event)
    await server.start()
    if json_log:
        print(json_line("webhook.listening", None, url=server.listening_on), file=sys.stderr, flush=True)
    else:
        print(f"webhook server listening on {server.listening_on}", file=sys.stderr, flush=True)
    return server


def _log_diagnostics(diagnostics: list[Any], mission: str | None) -> None:
    """With --json-log, stderr carries only JSON lines: diagnostics become `diagnostic` events."""
    from datetime import datetime, timezone

    from reqon.diagnostics import to_json
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    for d in diagnostics:
        record = {"time": now, "level": d.severity, "event": "diagnostic", "mission": mission, **to_json(d)}
        print(json.dumps(record, ensure_ascii=False), file=sys.stderr)


def _select_mission(missions: list[ast.Mission], name: str | None) -> ast.Mission:
    names = [m.name.name for m in missions]
    if name is not None:
        for m in missions:
            if m.name.name == name:
                return m
        raise ConfigFailure(f"no mission named {name!r} here; missions: {', '.join(names)}")
    if len(missions) > 1:
        raise ConfigFailure(f"the file holds several missions ({', '.join(names)}); choose one with --mission")
    return missions[0]


def _config_error(message: str) -> int:
    print(f"reqon: configuration error: {message}", file=sys.stderr)
    return EXIT_CONFIG


# ---------------------------------------------------------------- prepare


def _load_environment(options: RunOptions) -> None:
    from reqon.http.credentials import load_env_files
    paths = [Path(p) for p in options.env_files] if options.env_files else None
    merged = load_env_files(paths, Path.cwd())
    for key, value in merged.items():
        os.environ.setdefault(key, value)


async def prepare(mission: ast.Mission, files: dict[str, str], options: RunOptions,
                  *, open_stores: bool = True, webhooks: WebhookServer | None = None,
                  database: PostgresDatabase | None = None,
                  before_stores: Callable[[], None] | None = None) -> Prepared:
    """§6.1 step 3; every failure is a ConfigFailure (exit 3) and nothing has run yet.

    Stores open last, after `before_stores` (the run's lock), so that a configuration
    error leaves the data directory untouched. `database` is a PostgreSQL database opened
    by the caller (the REPL keeps one for its session), which then also closes it;
    otherwise `options.database` is opened here and `Prepared.database` is set for the run
    to close.
    """
    hooks = Webhooks(webhooks)
    owned = database is None
    http: HttpRuntime | None = None
    try:
        _load_environment(options)
        _refuse_unsupported(mission, webhooks is not None or (not open_stores and options.webhook is not None))
        # Connected in --dry-run too: a wrong password is a configuration error either way.
        if owned:
            database = open_database(options.database)
        postgrest = _postgrest_endpoint(mission) if open_stores else None
        stores: dict[str, Store] = {}
        mission_scope = Scope(None, {"errors": []})
        expressions = Expressions(stores, files, functions={"webhookUrl": hooks.url}, schemas=schemas_of(mission))
        secrets = Secrets()
        _register_database_secret(secrets, database)
        openapi = await _openapi_sources(mission, expressions, mission_scope, proxy=options.proxy, secrets=secrets)
        sources = [_source_settings(s, expressions, mission_scope, openapi.get(s.name.name)) for s in mission.sources]
        # Opened in --dry-run too, for its credential checks (exit 3); it connects lazily.
        credentials = _credentials(sources, options) if sources else None
        http = await _open_http(sources, credentials, secrets, options) if credentials is not None else None
        checkpoints: Checkpoints | None = None
        if open_stores:
            if before_stores is not None:
                before_stores()
            stores.update(_open_stores(mission, options.data_dir, database, postgrest))
            checkpoints = PostgresCheckpoints(database, mission.name.name) if database is not None else \
                CheckpointFile(options.data_dir, mission.name.name)
    except BaseException as exc:
        if http is not None:
            await http.aclose()
        if owned and database is not None:
            await database.close()
        if isinstance(exc, (ConfigError, RunError)):
            raise ConfigFailure(getattr(exc, "message", None) or str(exc)) from None
        raise
    fetcher = FetchPlanner(expressions=expressions, http=http,
                           default_source=mission.sources[0].name.name if mission.sources else None,
                           checkpoints=checkpoints, mission_scope=mission_scope, openapi=openapi)
    evaluator = Evaluator(mission=mission, stores=stores, expressions=expressions, fetcher=fetcher,
                          mission_scope=mission_scope, webhooks=hooks)
    return Prepared(mission, stores, http, evaluator, secrets, files, sources, credentials,
                    database=database if owned else None)


def _register_database_secret(secrets: Secrets, database: PostgresDatabase | None) -> None:
    """The database password joins the credentials that every message is redacted of (§8.4)."""
    if database is not None and database.address.password:
        secrets.add(database.address.password)


def _postgrest_endpoint(mission: ast.Mission) -> PostgrestEndpoint | None:
    """REQON_POSTGREST_URL/KEY/SCHEMA, read only when the mission declares a `postgrest` store."""
    if not any(decl.kind.name == "postgrest" for decl in mission.stores):
        return None
    from reqon.stores.postgrest import PostgrestEndpoint
    return PostgrestEndpoint.from_environment(os.environ)


def _credentials(sources: list[SourceSettings], options: RunOptions) -> Credentials:
    from reqon.http.credentials import Credentials, load_auth_file
    env = dict(os.environ)
    names = {s.name for s in sources}
    auth_file = load_auth_file(Path(options.auth_file), env, names) if options.auth_file else None
    return Credentials(auth_file, env)


async def _open_http(sources: list[SourceSettings], credentials: Credentials, secrets: Secrets,
                     options: RunOptions) -> HttpRuntime:
    from reqon.http.client import HttpRuntime  # httpx and aiohttp load only for missions with sources
    return await HttpRuntime.open(sources, credentials, secrets, proxy=options.proxy)


async def _start_executor(mission: ast.Mission, prepared: Prepared, options: RunOptions) -> None:
    """`--executor ray`: ship the run to the cluster's workers (docs/scaling.md); exit 3 if it cannot."""
    if options.executor != "ray":
        return
    from reqon.engine.executors.ray_executor import ExecutorUnavailable, RayExecutor
    from reqon.engine.executors.worker import RunContext, RunSecrets
    for action in mission.actions:
        if has_wait(action.steps):
            raise ConfigFailure(f"action {action.name.name} uses 'wait', which --executor ray does not run yet "
                                "(the webhook server lives on the driver): run it with the local executor")
    ev = prepared.evaluator
    checkpoints = ev.fetcher.checkpoints
    context = RunContext(mission, prepared.files, ev.fetcher.default_source,
                         checkpoints.entries() if checkpoints is not None else {},
                         {d.name.name: (d.kind.name, d.target) for d in mission.stores}, proxy=options.proxy)
    credentials = prepared.credentials
    resolved = {s.name: credentials.settings(s) for s in prepared.sources} if credentials is not None else {}
    secrets = RunSecrets(prepared.sources, resolved, prepared.secrets.values())
    try:
        ev.executor = await RayExecutor.start(address=options.ray_address, context=context, secrets=secrets,
                                              stores=prepared.stores, mission_scope=ev.mission_scope,
                                              http=prepared.http)
    except ExecutorUnavailable as exc:
        raise ConfigFailure(str(exc)) from None


async def _openapi_sources(mission: ast.Mission, x: Expressions, scope: Scope, *, proxy: bool,
                           secrets: Secrets) -> dict[str, OpenApiSource]:
    from reqon.engine import openapi_sources
    found: dict[str, OpenApiSource] = {}
    for source in mission.sources:
        if source.document is None:
            continue
        entries = {e.key: e for e in source.options.entries}

        def flag(key: str) -> bool:
            return key in entries and x.eval(entries[key].value, scope) is True
        timeout = x.eval(entries["timeout"].value, scope) if "timeout" in entries else None
        document = await openapi_sources.load(source, float(timeout or openapi_sources.DOCUMENT_TIMEOUT_MS),
                                              proxy=proxy, secrets=secrets)
        found[source.name.name] = OpenApiSource(document, flag("validateResponses"), flag("validateRequests"))
    openapi_sources.check_calls(mission, {name: s.document for name, s in found.items()})
    return found


def _refuse_unsupported(mission: ast.Mission, webhooks: bool) -> None:
    for action in mission.actions:
        if not webhooks and has_wait(action.steps):
            raise ConfigError(f"action {action.name.name} uses 'wait', which needs the webhook server: "
                              "run with --webhook (the daemon starts it by itself)")


def has_wait(steps: tuple[Any, ...]) -> bool:
    for step in steps:
        if isinstance(step, ast.Wait):
            return True
        if isinstance(step, ast.For) and has_wait(step.body):
            return True
        if isinstance(step, ast.MatchStep) and any(has_wait(arm.body) for arm in step.arms):
            return True
    return False


def _open_stores(mission: ast.Mission, data_dir: Path, database: PostgresDatabase | None,
                 postgrest: PostgrestEndpoint | None) -> dict[str, Store]:
    opened: dict[str, Store] = {}
    for decl in mission.stores:
        opened[decl.name.name] = open_store(decl.kind.name, decl.name.name, decl.target, data_dir,
                                            database=database, postgrest=postgrest)
    return opened


def _source_settings(source: ast.Source, x: Expressions, scope: Scope,
                     openapi: OpenApiSource | None = None) -> SourceSettings:
    entries = {e.key: e for e in source.options.entries}
    name = source.name.name

    def value(key: str) -> Any:
        return x.eval(entries[key].value, scope) if key in entries else None
    auth = entries.get("auth")
    kind = auth.value.name if auth is not None and isinstance(auth.value, ast.Var) else "none"
    settings = x.eval(auth.settings, scope) if auth is not None and auth.settings is not None else {}
    if "base" not in entries and openapi is not None:
        from reqon.engine.openapi_sources import base_of
        base = base_of(source, openapi.document)
    else:
        base = value("base")
    if not isinstance(base, str) or not base.startswith(("http://", "https://")):
        raise ConfigError(f"source {name}: base must be an absolute http(s) URL, got {V.to_json_text(base)}")
    headers = value("headers") or {}
    optional = {k: value(k) for k in ("timeout", "maxInFlight", "maxResponseBytes") if k in entries}
    return SourceSettings(
        name=name, base_url=base, headers=headers, auth_kind=kind, auth_settings=settings,
        timeout_ms=float(optional.get("timeout", 30000)), max_in_flight=optional.get("maxInFlight"),
        max_response_bytes=int(optional.get("maxResponseBytes", 64 * 1024 * 1024)),
        rate_limit=x.eval_options(entries["rateLimit"].value, scope) if "rateLimit" in entries else None,
        circuit_breaker=value("circuitBreaker"))


# ---------------------------------------------------------------- run and finish


async def run_mission(mission: ast.Mission, files: dict[str, str], options: RunOptions) -> int:
    server = None
    if options.webhook is not None:
        try:
            server = await start_webhooks(options.webhook, json_log=options.json_log, quiet=options.quiet)
        except ConfigError as exc:
            return _config_error(exc.message)
    try:
        return await _run_with(mission, files, options, server)
    finally:
        if server is not None:
            await server.close()


async def _run_with(mission: ast.Mission, files: dict[str, str], options: RunOptions,
                    server: WebhookServer | None) -> int:
    """One run, holding the mission's lock on the data directory from before the stores open
    until after they are closed (the operating system drops it if the process dies)."""
    lock = _mission_lock(mission, options)
    try:
        return await _run_locked(mission, files, options, server, lock)
    except LockHeld as held:
        print(f"reqon: {_held_message(mission, options, held)}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        lock.release()


def _mission_lock(mission: ast.Mission, options: RunOptions) -> ProcessLock:
    return ProcessLock(mission_lock_path(options.data_dir, mission.name.name), f"reqon run {mission.name.name}")


def _held_message(mission: ast.Mission, options: RunOptions, held: LockHeld) -> str:
    who = f"pid {held.holder.pid}, started {held.holder.started}" if held.holder else "pid unknown"
    return f"mission {mission.name.name} is already running on data directory {options.data_dir.resolve()} ({who})"


def _taking(lock: ProcessLock, options: RunOptions) -> Callable[[], None]:
    """What `prepare` calls just before the stores open: lock, then clear what a killed run left."""
    def take_lock() -> None:
        try:
            lock.acquire()
        except OSError as exc:
            raise ConfigError(f"cannot lock the data directory {options.data_dir}: {exc.strerror or exc}") from None
        _remove_leftovers(options)
    return take_lock


def _remove_leftovers(options: RunOptions) -> None:
    """Temporary files of a flush that a killed process left go before any store opens
    (docs/reliability.md); those of live processes (another run flushing now) stay."""
    try:
        removed = remove_stale_temporaries(options.data_dir)
    except OSError as exc:
        raise ConfigError(f"cannot clean the data directory {options.data_dir}: {exc.strerror or exc}") from None
    if options.verbose and not options.quiet:
        for path in removed:
            print(f"removed {path}: a temporary file left by an interrupted write", file=sys.stderr)


async def _run_locked(mission: ast.Mission, files: dict[str, str], options: RunOptions,
                      server: WebhookServer | None, lock: ProcessLock) -> int:
    try:
        prepared = await prepare(mission, files, options, webhooks=server, before_stores=_taking(lock, options))
    except ConfigFailure as exc:
        return _config_error(str(exc))
    try:
        await _start_executor(mission, prepared, options)
    except ConfigFailure as exc:
        await _close_all(prepared)
        return _config_error(str(exc))
    reporter = _reporter(mission, options, prepared)
    reporter.executor(prepared.evaluator.executor)
    prepared.evaluator.hooks = reporter
    prepared.evaluator.fetcher.on_response = reporter.request
    prepared.evaluator.fetcher.on_warning = reporter.validation_warning
    pipeline = Pipeline(mission, prepared.evaluator, overrides=options.overrides, listener=reporter,
                        redact=prepared.secrets.redact)
    try:
        state = await _begin_run_state(mission, prepared, pipeline, options)
    except (RunError, ConfigError) as exc:
        await _close_all(prepared)
        await _close_database(prepared)
        return _config_error(prepared.secrets.redact(exc.message))
    started = time.monotonic()

    async def finish(interrupted: int | None, problem: str | None) -> int:
        return await _finish(prepared, pipeline.result, reporter, options, started, interrupted, state, problem)
    with long_lived():
        return await _run_interruptibly(pipeline, reporter, len(pipeline.stages), finish)


async def execute(mission: ast.Mission, files: dict[str, str], options: RunOptions, *,
                  webhooks: WebhookServer | None, stop: asyncio.Event, timeout_s: float | None = None,
                  lanes: int = 1, on_start: Callable[[int], None] | None = None) -> RunOutcome:
    """One complete run for the daemon (§8.2): no signal handling of its own.

    The run takes the lowest free run lane of the first `lanes` (the schedule's overlap
    limit) and holds it until its stores are closed; `on_start` hears which. When every
    lane is held (a `reqon run` of the mission holds lane 1, or the daemon's own runs do)
    nothing runs: the outcome is `skipped`, naming the holders.

    Setting `stop` (the daemon is stopping) or reaching `timeout_s` (the schedule's
    `timeout`) cancels the run gracefully as an interruption (§7.7): stores are flushed
    and closed and the run state says `interrupted`.
    """
    try:
        what = "reqon run --once" if options.trigger == "once" else "reqon daemon"
        lane, lock = take_lane(options.data_dir, mission.name.name, lanes, what)
    except LanesBusy as busy:
        return RunOutcome("skipped", EXIT_CONFIG, 0.0, message=str(busy))
    except ConfigError as exc:
        return RunOutcome("configuration error", EXIT_CONFIG, 0.0, message=exc.message)
    try:
        if on_start is not None:
            on_start(lane)
        return await _execute_in(lane, mission, files, options, webhooks=webhooks, stop=stop, timeout_s=timeout_s)
    finally:
        lock.release()


async def _execute_in(lane: int, mission: ast.Mission, files: dict[str, str], options: RunOptions, *,
                      webhooks: WebhookServer | None, stop: asyncio.Event, timeout_s: float | None) -> RunOutcome:
    began = time.monotonic()
    try:
        _remove_leftovers(options)
        prepared = await prepare(mission, files, options, webhooks=webhooks)
    except (ConfigError, ConfigFailure) as exc:
        return RunOutcome("configuration error", EXIT_CONFIG, time.monotonic() - began, message=str(exc))
    reporter = _reporter(mission, options, prepared)
    prepared.evaluator.hooks = reporter
    prepared.evaluator.fetcher.on_response = reporter.request
    pipeline = Pipeline(mission, prepared.evaluator, overrides=options.overrides, listener=reporter,
                        redact=prepared.secrets.redact)
    try:
        state = await _begin_run_state(mission, prepared, pipeline, options, lane=lane)
    except (RunError, ConfigError) as exc:
        await _close_all(prepared)
        await _close_database(prepared)
        return RunOutcome("configuration error", EXIT_CONFIG, time.monotonic() - began,
                          message=prepared.secrets.redact(exc.message))
    task = asyncio.get_running_loop().create_task(pipeline.run())
    stopping = asyncio.get_running_loop().create_task(stop.wait())
    reporter.start(len(pipeline.stages))
    try:
        await asyncio.wait({task, stopping}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        interrupted = not task.done()
        if interrupted:
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        reporter.stop()
    code = await _finish(prepared, pipeline.result, reporter, options, began, EXIT_SIGTERM if interrupted else None,
                         state)
    timed_out = interrupted and not stop.is_set()
    status = "timed out" if timed_out else "interrupted" if interrupted else \
        "succeeded" if code == EXIT_OK else "failed"
    return RunOutcome(status, EXIT_FAILED if timed_out else code, time.monotonic() - began,
                      records=sum(reporter.c.records.values()))


async def _begin_run_state(mission: ast.Mission, prepared: Prepared, pipeline: Pipeline,
                           options: RunOptions, *, lane: int = 0) -> RunState:
    """Record the run (§8.5) in its lane and, with --resume, hand what is done already to the pipeline."""
    notice = console_notice(mission.name.name, quiet=options.quiet, json_log=options.json_log)
    state = await RunState.begin(records=_run_records(prepared, options), data_dir=options.data_dir, mission=mission,
                                 stores=prepared.stores, resume=options.resume, notice=notice,
                                 trigger=options.trigger, lane=lane)
    prepared.evaluator.progress = state
    state.prefill(pipeline.result, lambda errors: prepared.evaluator.mission_scope.bind("errors", errors))
    return state


def _run_records(prepared: Prepared, options: RunOptions) -> RunRecords:
    """With --database the run state lives there, next to the data it describes."""
    if prepared.database is None:
        return FileRunRecords(options.data_dir)
    from reqon.engine.runstate_postgres import PostgresRunStates
    return PostgresRunStates(prepared.database)


async def _run_interruptibly(pipeline: Pipeline, reporter: Reporter, stages: int,
                             finish: Callable[[int | None, str | None], Awaitable[int]]) -> int:
    """Run the pipeline, then `finish`; the first SIGINT/SIGTERM cancels gracefully, a second exits at once.

    A failure outside the stages (the run state could not be written: the database went
    away) stops the pipeline and is handed to `finish`, which reports it (exit 1).

    The handlers stay installed while `finish` closes the stores and writes --output, so
    that a second signal during that clean-up exits at once (§7.7) instead of raising
    KeyboardInterrupt in the middle of it.
    """
    loop = asyncio.get_running_loop()
    task = loop.create_task(pipeline.run())
    received: list[int] = []

    def on_signal(code: int) -> None:
        if received:
            os._exit(received[0])
        received.append(code)
        print("interrupted — cancelling (press Ctrl-C again to force)", file=sys.stderr, flush=True)
        task.cancel()

    installed = install_signal_handlers(loop, on_signal)
    reporter.start(stages)
    problem = None
    try:
        try:
            await task
        except asyncio.CancelledError:
            if not received:
                raise
        except RunError as exc:
            problem = exc.message
        finally:
            reporter.stop()
        code = await finish(received[0] if received else None, problem)
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    return received[0] if received else code


async def _finish(prepared: Prepared, result: PipelineResult, reporter: Reporter, options: RunOptions,
                  started: float, interrupted: int | None, state: RunState, problem: str | None = None) -> int:
    # The snapshot is taken before closing: persistent stores cannot be listed once closed.
    output_problem = _write_output(options.output, prepared.stores) if options.output else None
    store_problem = await _close_all(prepared)
    close_problem = problem or store_problem or output_problem
    try:
        state.finish(result, interrupted=interrupted is not None,
                     failed=result.failed_stage is not None or close_problem is not None,
                     durable=store_problem is None)
    except RunError as exc:
        close_problem = close_problem or exc.message
    await _close_database(prepared)
    if result.failed_stage is not None:
        reporter.failure_report(result)
    reporter.summary(result, sorted(prepared.stores), time.monotonic() - started, interrupted is not None)
    if close_problem:
        print(f"error: {prepared.secrets.redact(close_problem)}", file=sys.stderr)
    if interrupted is not None:
        return interrupted
    return EXIT_FAILED if result.failed_stage is not None or close_problem else EXIT_OK


async def _close_all(prepared: Prepared) -> str | None:
    await prepared.evaluator.executor.close()
    problem = None
    for store in prepared.stores.values():
        try:
            await store.close()
        except RunError as exc:
            problem = problem or exc.message
    if prepared.http is not None:
        await prepared.http.aclose()
    return problem


async def _close_database(prepared: Prepared) -> None:
    """Last: the run state and the checkpoints live there too, and they are written after the stores."""
    if prepared.database is not None:
        await prepared.database.close()


def _write_output(target: str, stores: dict[str, Store]) -> str | None:
    """Write `--output`; returns a problem to report instead of raising (no traceback)."""
    try:
        records: dict[str, Any] = {name: stores[name].list() for name in sorted(stores)}
    except RunError as exc:  # a database store whose server went away
        return f"cannot write --output {target}: {exc.message}"
    data = V.to_json_value(records)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if not text.isascii() and not _encodable(text):
        # A lone surrogate (from a "\\ud800" escape in a response) has no UTF-8 form;
        # ASCII escapes round-trip it exactly.
        text = json.dumps(data, indent=2, ensure_ascii=True) + "\n"
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return None
    path = Path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text)
    except OSError as exc:
        return f"cannot write --output {target}: {exc.strerror or exc}"
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _reporter(mission: ast.Mission, options: RunOptions, prepared: Prepared) -> Reporter:
    from reqon.diagnostics import use_colour
    tty = sys.stderr.isatty()
    progress = options.progress if options.progress is not None else tty
    http = prepared.http
    ev = prepared.evaluator

    def requests() -> int:
        return (http.requests_sent if http else 0) + ev.remote_requests
    return Reporter(mission=mission.name.name, verbose=options.verbose, quiet=options.quiet,
                    json_log=options.json_log, progress=progress, colour=use_colour(sys.stderr),
                    redact=prepared.secrets.redact, requests=requests)


# ---------------------------------------------------------------- dry run


async def _prepare_plan(mission: ast.Mission, files: dict[str, str], options: RunOptions) -> Prepared:
    prepared = await prepare(mission, files, options, open_stores=False)
    if prepared.http is not None:
        await prepared.http.aclose()
    await _close_database(prepared)
    return prepared


def dry_run(mission: ast.Mission, files: dict[str, str], options: RunOptions) -> int:
    """Prepare without side effects and print the plan (§8 `--dry-run`)."""
    try:
        prepared = asyncio.run(_prepare_plan(mission, files, options))
    except ConfigFailure as exc:
        return _config_error(str(exc))
    pipeline = Pipeline(mission, prepared.evaluator, overrides=options.overrides)
    out = [f"mission {mission.name.name}"]
    for source in mission.sources:
        entries = {e.key: e for e in source.options.entries}
        auth = entries.get("auth")
        kind = auth.value.name if auth is not None and isinstance(auth.value, ast.Var) else "none"
        out.append(f"  source {source.name.name} (auth {kind})")
    database = prepared.database.address.describe() if prepared.database is not None else None
    for decl in mission.stores:
        where = f" in {database}" if database and decl.kind.name == "sql" else ""
        out.append(f"  store {decl.name.name}: {decl.kind.name}(\"{decl.target}\"){where}")
    for stage, report in zip(pipeline.stages, pipeline.plan()):
        timeout = pipeline.timeout_s(stage)
        extra = f", timeout {timeout:g}s" if timeout else ""
        condition = " if " + prepared.evaluator.x.text(stage.condition) if stage.condition is not None else ""
        shape = f"mode {report.mode.value}, limit {report.limit}{extra}" if report.parallel else \
            f"mode {report.mode.value}{extra}"
        out.append(f"  stage {report.index} {report.label} ({shape}){condition}")
    print(prepared.secrets.redact("\n".join(out)))
    return EXIT_OK


def install_signal_handlers(loop: asyncio.AbstractEventLoop, on_signal: Callable[[int], None]) -> list[signal.Signals]:
    """SIGINT and SIGTERM call `on_signal` with their exit code (§7.7); the signals that could
    be installed are returned so that the caller removes exactly those."""
    installed: list[signal.Signals] = []
    for signum, code in ((signal.SIGINT, EXIT_SIGINT), (signal.SIGTERM, EXIT_SIGTERM)):
        try:
            loop.add_signal_handler(signum, on_signal, code)
            installed.append(signum)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signals here
            pass
    return installed
