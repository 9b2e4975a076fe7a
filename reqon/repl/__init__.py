"""`reqon repl`: an interactive session for exploring APIs and shaping missions (LANGUAGE.md §8).

Layout by concern, after pgcli:

* `inputs` — what an input is (expression, steps, declarations, mission, command) and its parse;
* `commands` — the command table and the names completion offers;
* `session` — the `Session` (state, evaluation, commands) and scripted input; it never imports the terminal;
* `display` — values as JSON, diagnostics, store tables;
* `completion` — pure completion logic and the prompt_toolkit `Completer`;
* `keys` — key bindings (Enter submits only a complete input);
* `terminal` — the prompt_toolkit session and the interactive loop.

This module is the entry point: it picks the terminal or the scripted loop.
"""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any


def run_repl(args: Any) -> int:
    """`reqon repl [PATH] [--data-dir DIR]`: interactive on a terminal, scripted otherwise; exit 0 at end of input."""
    path = getattr(args, "path", None)
    if path is not None and not os.path.exists(path):
        print(f"reqon: usage error: no such file or directory: {path}", file=sys.stderr)
        return 2
    data_dir = Path(getattr(args, "data_dir", ".reqon-data"))
    from reqon.engine.database import open_database
    from reqon.errors import ConfigError
    try:  # `--database`: the sql stores of the session live in PostgreSQL
        database = open_database(getattr(args, "database", None))
    except ConfigError as exc:
        print(f"reqon: configuration error: {exc.message}", file=sys.stderr)
        return 3
    if sys.stdin.isatty():
        from reqon.repl.terminal import run_terminal
        return asyncio.run(run_terminal(data_dir, path, database=database))
    from reqon.repl.display import Printer
    from reqon.repl.session import run_script
    return asyncio.run(run_script(sys.stdin, Printer(sys.stdout, sys.stderr), data_dir, path, database=database))
