"""The `reqon` command line (LANGUAGE.md §8).

A thin layer over the library: it parses arguments, loads and checks the
mission, and hands over to the runner, the REPL or the demo. Heavy modules are
imported inside the subcommands so that `reqon --version` and `reqon check`
start fast.
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from reqon import __version__
from reqon.heap import no_collection

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONFIG, EXIT_INTERNAL = 0, 1, 2, 3, 70
EXIT_SIGINT, EXIT_SIGTERM = 130, 143
SUBCOMMANDS = ("run", "check", "parse", "repl", "runs", "schedule", "demo", "mock", "help")


_DATABASE_HELP = ("PostgreSQL URL for sql stores, sync checkpoints and run state "
                  "(default: $REQON_DATABASE_URL, else SQLite in the data directory)")


class UsageError(Exception):
    """A bad command line: exit 2 with `reqon: usage error: …`."""


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="reqon", description="Run Reqon missions: declarative, parallel API pipelines.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_ArgumentParser)

    run = sub.add_parser("run", help="run a mission (file or multi-file directory)")
    run.add_argument("path")
    run.add_argument("--mission", help="which mission to run when the file holds several")
    run.add_argument("--dry-run", action="store_true", help="load, check and prepare, print the plan; no side effect")
    verbosity = run.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="log branches, requests and store steps")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="print only the error report on failure")
    run.add_argument("--auth", metavar="FILE", help="credentials file (JSON)")
    run.add_argument("--env", metavar="FILE", action="append", help=".env file to load (repeatable)")
    run.add_argument("--output", metavar="PATH", help="write every store as one JSON object ('-' = stdout)")
    run.add_argument("--data-dir", metavar="DIR", default=".reqon-data", help="where persistent stores live")
    run.add_argument("--resume", action="store_true", help="continue the last failed or interrupted run")
    run.add_argument("--no-proxy", dest="proxy", action="store_false",
                     help="ignore HTTP_PROXY/HTTPS_PROXY/ALL_PROXY (and NO_PROXY): connect directly")
    run.add_argument("--database", metavar="URL", help=_DATABASE_HELP)
    run.add_argument("--max-concurrency", type=_positive_int, metavar="N", help="branch limit of every parallel stage")
    run.add_argument("--mode", choices=("wait-all", "fail-fast", "best-effort", "race"),
                     help="failure mode of every parallel stage")
    progress = run.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show live progress even when stderr is not a terminal")
    progress.add_argument("--no-progress", dest="progress", action="store_false",
                          help="no live progress display")
    run.add_argument("--json-log", action="store_true", help="log events as JSON lines on stderr")
    run.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="where branches of parallel stages and parallel loop iterations run "
                          "(ray: needs pip install 'reqon[ray]'; see docs/scaling.md)")
    run.add_argument("--ray-address", metavar="ADDRESS",
                     help="with --executor ray: auto, HOST:PORT or ray://HOST:PORT (default: a local Ray instance)")
    run.add_argument("--webhook", action="store_true", help="start the webhook server (for wait and webhookUrl)")
    run.add_argument("--webhook-port", type=_port, metavar="N", help="webhook server port (default 3000, 0 = any)")
    run.add_argument("--webhook-host", metavar="HOST", help="webhook server interface (default 127.0.0.1)")
    run.add_argument("--webhook-url", metavar="URL", help="public base URL that webhookUrl() hands out")
    scheduler = run.add_mutually_exclusive_group()
    scheduler.add_argument("--daemon", action="store_true", help="run every scheduled mission whenever it is due")
    scheduler.add_argument("--once", action="store_true", help="run every scheduled mission once, in order")

    check = sub.add_parser("check", help="check missions without running them")
    check.add_argument("paths", nargs="+")
    check.add_argument("--json", action="store_true", help="print diagnostics as one JSON object")
    check.add_argument("--strict", action="store_true", help="count warnings as errors")

    parse = sub.add_parser("parse", help="print the syntax tree of a file")
    parse.add_argument("path")
    parse.add_argument("--json", action="store_true", help="print the AST as JSON")

    repl = sub.add_parser("repl", help="interactive session")
    repl.add_argument("path", nargs="?")
    repl.add_argument("--data-dir", metavar="DIR", default=".reqon-data")
    repl.add_argument("--database", metavar="URL", help=_DATABASE_HELP)

    runs = sub.add_parser("runs", help="list recorded runs")
    runs.add_argument("path", nargs="?")
    runs.add_argument("--data-dir", metavar="DIR", default=".reqon-data")
    runs.add_argument("--database", metavar="URL", help="list the runs recorded in this PostgreSQL database "
                                                        "(default: $REQON_DATABASE_URL, else the data directory)")

    schedule = sub.add_parser("schedule", help="show each mission's schedule and its next due times")
    schedule.add_argument("path")
    schedule.add_argument("--next", type=_positive_int, default=5, metavar="N", help="how many due times (default 5)")

    demo = sub.add_parser("demo", help="start the bundled demo API and run an example mission against it")
    demo.add_argument("mission", nargs="?", help="example mission to run (default: the parallel catalogue)")
    demo.add_argument("--serve", action="store_true", help="only serve the demo API until Ctrl-C")
    demo.add_argument("--latency-ms", type=float, default=20.0)

    mock = sub.add_parser("mock", help="serve every operation of an OpenAPI document on 127.0.0.1")
    mock.add_argument("spec", help="the OpenAPI document (YAML or JSON; 3.0, 3.1 or Swagger 2.0)")
    mock.add_argument("--port", type=_port, default=0, help="port to listen on (default: any free port)")
    mock.add_argument("--seed", type=int, default=0, help="seed of the generated data (default 0)")

    helpp = sub.add_parser("help", help="show help for a command")
    helpp.add_argument("topic", nargs="?")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {value}")
    return value


def _normalise(argv: list[str]) -> list[str]:
    """`reqon PATH [options]` (the TypeScript CLI's form) means `reqon run PATH [options]`."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is not None and first not in SUBCOMMANDS and argv and not argv[0].startswith("-"):
        return ["run", *argv]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Passes over the AST recurse; allow realistic depths (long `a + b + …` chains) and turn
    # the rest into diagnostics where they happen.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))
    try:
        return _dispatch(args_list)
    except UsageError as exc:
        print(f"reqon: usage error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if os.environ.get("REQON_DEBUG") == "1":
            raise
        print(f"reqon: internal error: {type(exc).__name__}: {exc} (set REQON_DEBUG=1 for a traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


def _dispatch(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(_normalise(argv))
    if args.version:
        print(f"reqon {__version__}")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    if args.command == "help":
        return _help(parser, args.topic)
    handler = {"check": _check, "parse": _parse, "run": _run, "repl": _repl, "runs": _runs, "demo": _demo,
               "schedule": _schedule, "mock": _mock}
    return handler[args.command](args)


def _help(parser: argparse.ArgumentParser, topic: str | None) -> int:
    if topic is None:
        parser.print_help()
        return EXIT_OK
    if topic not in SUBCOMMANDS:
        raise UsageError(f"unknown command {topic!r}")
    parser.parse_args([topic, "--help"])
    return EXIT_OK


def _require_paths(paths: list[str]) -> None:
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise UsageError(f"no such file or directory: {missing[0]}")


def _check(args: argparse.Namespace) -> int:
    from reqon.checker import check_loaded
    from reqon.diagnostics import render_all, to_json, use_colour
    from reqon.loader import load_path

    _require_paths(args.paths)
    all_diags = []
    files: dict[str, str] = {}
    for path in args.paths:
        loaded = load_path(path)
        files.update(loaded.files)
        diags = loaded.diagnostics + (check_loaded(loaded) if not loaded.has_errors else [])
        order = loaded.file_order()
        all_diags.extend(sorted(diags, key=lambda d: (order.get(d.span.file, 0), d.span.line, d.span.column)))
    errors = sum(d.is_error for d in all_diags)
    warnings = len(all_diags) - errors
    if args.json:
        print(json.dumps({"diagnostics": [to_json(d) for d in all_diags], "errors": errors,
                          "warnings": warnings}, indent=2))
    elif all_diags:
        sys.stderr.write(render_all(all_diags, files, use_colour(sys.stderr)))
    failed = errors > 0 or (args.strict and warnings > 0)
    return EXIT_FAILED if failed else EXIT_OK


def _parse(args: argparse.Namespace) -> int:
    from reqon.ast_json import to_json
    from reqon.diagnostics import render_all, use_colour
    from reqon.loader import load_path

    _require_paths([args.path])
    if os.path.isdir(args.path):
        raise UsageError(f"parse takes one file, {args.path} is a directory")
    loaded = load_path(args.path)
    syntax = [d for d in loaded.diagnostics if d.code != "E216"]
    if syntax or not loaded.programs:
        sys.stderr.write(render_all(syntax or loaded.diagnostics, loaded.files, use_colour(sys.stderr)))
        return EXIT_FAILED
    program = loaded.programs[0]
    from reqon.ast_json import render_tree
    try:
        text = json.dumps(to_json(program), indent=2, ensure_ascii=False) if args.json else render_tree(program)
    except RecursionError:
        print(f"{args.path}:1:1: error[E101]: the file is nested too deeply to print", file=sys.stderr)
        return EXIT_FAILED
    print(text)
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    scheduling = "--daemon" if args.daemon else "--once" if args.once else None
    if scheduling is not None:
        for flag, given in (("--dry-run", args.dry_run), ("--resume", args.resume),
                            ("--output", args.output is not None and args.daemon)):
            if given:
                raise UsageError(f"{flag} cannot be combined with {scheduling}")
        from reqon.daemon.command import scheduler_command

        return scheduler_command(args)
    # Start-up builds the run's long-lived heap without collections; the runner turns them
    # on, with that heap frozen, when the first stage starts (reqon/heap.py).
    with no_collection():
        from reqon.engine.runner import run_command

        return run_command(args)


def _schedule(args: argparse.Namespace) -> int:
    from reqon.daemon.command import schedule_command

    _require_paths([args.path])
    return schedule_command(args)


def _repl(args: argparse.Namespace) -> int:
    from reqon.repl import run_repl

    return run_repl(args)


def _runs(args: argparse.Namespace) -> int:
    from reqon.engine.runstate import list_runs_command

    return list_runs_command(args)


def _demo(args: argparse.Namespace) -> int:
    from reqon.demo.command import demo_command

    return demo_command(args)


def _mock(args: argparse.Namespace) -> int:
    from reqon.openapi.mock import mock_command

    return mock_command(args)


def entry() -> NoReturn:
    """The `reqon` command: `main`, then an exit without the interpreter's teardown.

    Tearing down (a last garbage collection over ~48,000 objects, then every module)
    costs about 50 ms, a sixth of a one-GET run, and does nothing a finished command needs:
    stores, journal, history and `--output` are closed and durable before `main` returns,
    and every file is written with explicit closes. The handler is registered first, so
    it runs last: after the other exit handlers (Ray's shutdown, logging's flush) and
    after non-daemon threads were joined. Tests call `main`, which never exits.
    """
    code: list[int] = []

    def skip_teardown() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more can be said
                pass
        if code:
            os._exit(code[0])

    atexit.register(skip_teardown)
    code.append(main())
    sys.exit(code[0])


if __name__ == "__main__":
    entry()
