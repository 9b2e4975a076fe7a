"""`reqon run PATH --daemon | --once` and `reqon schedule PATH` (LANGUAGE.md §8.2).

The order matters: load and check (exit 2), pick the scheduled missions and hold the
data directory (exit 3), start the webhook server when a mission needs it and prepare
every mission once without running it, so credentials and sources fail before anything
is scheduled (exit 3). Only then does scheduling start.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reqon import ast
from reqon.daemon.lock import DaemonLock
from reqon.daemon.policy import policy_of
from reqon.daemon.scheduler import Daemon, DaemonLog, Slot, utc_now
from reqon.daemon.starts import LastStarts
from reqon.engine.pipeline import Overrides
from reqon.engine.runner import (
    install_signal_handlers,
    ConfigFailure,
    RunOptions,
    WebhookSettings,
    execute,
    has_wait,
    prepare,
    start_webhooks,
    webhook_settings,
)
from reqon.errors import ConfigError, RunError

if TYPE_CHECKING:
    from reqon.http.webhooks import WebhookServer

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONFIG = 0, 1, 2, 3
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


def _config_error(message: str) -> int:
    print(f"reqon: configuration error: {message}", file=sys.stderr)
    return EXIT_CONFIG


def _load_checked(path: str, *, quiet: bool, json_log: bool) -> Any:
    """The loaded missions, or None after printing the static errors."""
    from reqon.checker import check_loaded
    from reqon.diagnostics import render_all, use_colour
    from reqon.loader import load_path

    loaded = load_path(path)
    diagnostics = loaded.diagnostics + (check_loaded(loaded) if not loaded.has_errors else [])
    errors = [d for d in diagnostics if d.is_error]
    shown = errors if quiet else diagnostics
    if shown and json_log:
        from reqon.engine.reporting import json_line
        from reqon.diagnostics import to_json
        for d in shown:
            print(json_line("diagnostic", None, d.severity, **to_json(d)), file=sys.stderr)
    elif shown:
        sys.stderr.write(render_all(shown, loaded.files, use_colour(sys.stderr)))
    return None if errors else loaded


def scheduled_missions(missions: list[ast.Mission], name: str | None) -> list[ast.Mission]:
    """The missions to schedule, in declaration order; ConfigFailure when there is none."""
    if name is not None:
        chosen = [m for m in missions if m.name.name == name]
        if not chosen:
            names = ", ".join(m.name.name for m in missions)
            raise ConfigFailure(f"no mission named {name!r} here; missions: {names}")
        missions = chosen
    scheduled = [m for m in missions if m.schedules]
    if not scheduled:
        raise ConfigFailure("no mission here has a schedule (add e.g. schedule: every 15 minutes)")
    return scheduled


def scheduler_command(args: argparse.Namespace) -> int:
    """`reqon run PATH --daemon | --once`: the command line's options become `RunOptions`."""
    options = RunOptions(data_dir=Path(args.data_dir), env_files=args.env, auth_file=args.auth, output=args.output,
                         verbose=args.verbose, quiet=args.quiet, json_log=args.json_log, progress=False,
                         overrides=Overrides(args.max_concurrency, args.mode), webhook=webhook_settings(args),
                         database=args.database)
    return schedule_path(args.path, options, mission_name=args.mission, once=args.once)


def schedule_path(path: str, options: RunOptions, *, mission_name: str | None = None, once: bool) -> int:
    """Load, check and schedule the missions of PATH: as a daemon, or each once; the exit code of §8.2."""
    if not os.path.exists(path):
        print(f"reqon: usage error: no such file or directory: {path}", file=sys.stderr)
        return EXIT_USAGE
    loaded = _load_checked(path, quiet=options.quiet, json_log=options.json_log)
    if loaded is None:
        return EXIT_USAGE
    try:
        missions = scheduled_missions(loaded.missions, mission_name)
    except ConfigFailure as exc:
        return _config_error(str(exc))
    lock = DaemonLock(options.data_dir)
    try:
        lock.acquire()
    except ConfigError as exc:
        return _config_error(exc.message)
    try:
        return asyncio.run(_schedule(missions, loaded.files, options, once=once))
    finally:
        lock.release()


def needs_webhooks(mission: ast.Mission) -> bool:
    """Whether a mission has a `wait` step or calls `webhookUrl` (§8.1: the daemon then starts the server)."""
    return any(has_wait(a.steps) for a in mission.actions) or _calls_webhook_url(mission)


def _calls_webhook_url(node: Any) -> bool:
    if isinstance(node, ast.FuncCall) and node.func.name == "webhookUrl":
        return True
    if isinstance(node, (tuple, list)):
        return any(_calls_webhook_url(n) for n in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, ast.Span):
        return any(_calls_webhook_url(getattr(node, f.name)) for f in dataclasses.fields(node))
    return False


async def _schedule(missions: list[ast.Mission], files: dict[str, str], options: RunOptions, *, once: bool) -> int:
    settings = options.webhook
    if settings is None and any(needs_webhooks(m) for m in missions):
        settings = WebhookSettings()
    server: WebhookServer | None = None
    try:
        if settings is not None:
            server = await start_webhooks(settings, json_log=options.json_log, quiet=options.quiet)
        for mission in missions:
            await _check_prepares(mission, files, options, server)
    except (ConfigError, ConfigFailure) as exc:
        if server is not None:
            await server.close()
        return _config_error(getattr(exc, "message", None) or str(exc))
    stop = asyncio.Event()
    received: list[int] = []
    installed = _install_signals(stop, received, once=once)
    try:
        if once:
            code = await _once(missions, files, options, server, stop)
        else:
            code = await _daemon(missions, files, options, server, stop)
    finally:
        for signum in installed:
            asyncio.get_running_loop().remove_signal_handler(signum)
        if server is not None:
            await server.close()
    if received:
        if once:
            return received[0]
        return EXIT_OK if received[0] == EXIT_SIGTERM else received[0]
    return code


async def _check_prepares(mission: ast.Mission, files: dict[str, str], options: RunOptions,
                          server: WebhookServer | None) -> None:
    """Resolve credentials and sources once before scheduling (§8.2: any problem is exit 3)."""
    prepared = await prepare(mission, files, options, open_stores=False, webhooks=server)
    if prepared.http is not None:
        await prepared.http.aclose()


def _install_signals(stop: asyncio.Event, received: list[int], *, once: bool) -> list[signal.Signals]:
    loop = asyncio.get_running_loop()

    def on_signal(code: int) -> None:
        if received:
            os._exit(EXIT_OK if received[0] == EXIT_SIGTERM and not once else received[0])
        received.append(code)
        print("interrupted — cancelling (press Ctrl-C again to force)", file=sys.stderr, flush=True)
        stop.set()

    return install_signal_handlers(loop, on_signal)


async def _once(missions: list[ast.Mission], files: dict[str, str], options: RunOptions,
                server: WebhookServer | None, stop: asyncio.Event) -> int:
    """`--once`: every scheduled mission once, in declaration order; 1 when any run failed."""
    log = DaemonLog(json_log=options.json_log, quiet=options.quiet)
    once_options = dataclasses.replace(options, trigger="once")
    failed = 0
    for mission in missions:
        if stop.is_set():
            break
        name = mission.name.name
        outcome = await execute(mission, files, once_options, webhooks=server, stop=stop,
                                on_start=lambda _lane: log.event("schedule.run.start", name, "run started (--once)",
                                                                 trigger="once"))
        if outcome.status == "skipped":
            log.event("schedule.skip", name, f"run skipped: {outcome.message}", "warning", trigger="once")
            failed += 1
            continue
        detail = f": {outcome.message}" if outcome.message else ""
        log.event("schedule.run.end", name, f"run {outcome.status} in {outcome.duration_s:.2f}s, "
                  f"{outcome.records} record{'s' if outcome.records != 1 else ''} written{detail}",
                  "info" if outcome.status == "succeeded" else "warning", trigger="once", status=outcome.status,
                  durationMs=round(outcome.duration_s * 1000), records=outcome.records)
        failed += outcome.status != "succeeded"
    return EXIT_FAILED if failed else EXIT_OK


async def _daemon(missions: list[ast.Mission], files: dict[str, str], options: RunOptions,
                  server: WebhookServer | None, stop: asyncio.Event) -> int:
    log = DaemonLog(json_log=options.json_log, quiet=options.quiet)
    try:
        starts = LastStarts(options.data_dir)
    except RunError as exc:
        return _config_error(exc.message)
    slots = [Slot(m, policy_of(m.schedules[0])) for m in missions]
    names = ", ".join(s.name for s in slots)
    print(f"reqon daemon (PID {os.getpid()}) scheduling {len(slots)} mission{'s' if len(slots) != 1 else ''}: "
          f"{names}", file=sys.stderr, flush=True)
    daemon = Daemon(slots, files, options, log=log, starts=starts, webhooks=server, stop=stop)
    await daemon.run()
    return EXIT_OK


# ---------------------------------------------------------------- reqon schedule


def schedule_command(args: argparse.Namespace) -> int:
    """`reqon schedule PATH [--next N]`: each mission's schedule in words and its next due times."""
    loaded = _load_checked(args.path, quiet=True, json_log=False)  # errors only: warnings are check's job
    if loaded is None:
        return EXIT_FAILED
    now = utc_now()
    lines = []
    for mission in loaded.missions:
        if not mission.schedules:
            lines.append(f"{mission.name.name}: no schedule (runs only when started)")
            continue
        policy = policy_of(mission.schedules[0])
        timetable = policy.timetable
        lines.append(f"{mission.name.name}: {timetable.describe()} ({policy.zone_name})")
        times = timetable.upcoming(now, args.next)
        if not times:
            lines.append("  never again (the instant is in the past)")
        for when in times:
            lines.append(f"  {_local(when, timetable.tz)}")
    print("\n".join(lines))
    return EXIT_OK


def _local(when: dt.datetime, tz: dt.tzinfo) -> str:
    local = when.astimezone(tz)
    return f"{local:%a %Y-%m-%d %H:%M:%S} {local.tzname()}"
