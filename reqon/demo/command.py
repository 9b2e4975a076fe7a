"""`reqon demo`: the bundled API on an ephemeral port, and an example mission run against it.

This is the README's first command: it needs no network and nothing running.
The examples read the API's address from `DEMO_URL`, which is set here.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from reqon.demo.examples import examples_dir

DEFAULT_EXAMPLE = "bookstore-catalogue"


def demo_command(args: argparse.Namespace) -> int:
    from reqon.demo.server import ServerConfig, serve_in_thread

    name = args.mission or DEFAULT_EXAMPLE
    mission = examples_dir() / (name if name.endswith(".vague") else f"{name}.vague")
    if not args.serve and not mission.is_file():
        available = ", ".join(sorted(p.stem for p in examples_dir().glob("*.vague")))
        print(f"reqon: usage error: no example named {name!r}; examples: {available}", file=sys.stderr)
        return 2
    with serve_in_thread(ServerConfig(latency_ms=args.latency_ms)) as server:
        print(f"demo API listening on {server.url} ({args.latency_ms:g} ms latency per request)", file=sys.stderr)
        if args.serve:
            return _serve_forever()
        os.environ["DEMO_URL"] = server.url
        print(f"running {mission.name}\n", file=sys.stderr)
        code = _run_example(mission)
        print(f"\nstores of persistent kinds are in .reqon-data/demo; "
              f"the server answered {server.stats.total} requests", file=sys.stderr)
        return code


def _run_example(mission: Path) -> int:
    """Scheduled examples run each mission once (`--once`); webhook examples get a webhook server on a free port."""
    from reqon.daemon.command import needs_webhooks, schedule_path
    from reqon.engine.runner import RunOptions, WebhookSettings, run_path
    from reqon.loader import load_path

    missions = load_path(str(mission)).missions
    webhook = WebhookSettings(port=0) if any(needs_webhooks(m) for m in missions) else None
    options = RunOptions(data_dir=Path(".reqon-data/demo"), webhook=webhook)
    if any(m.schedules for m in missions):
        return schedule_path(str(mission), options, once=True)
    return run_path(str(mission), options)


def _serve_forever() -> int:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
