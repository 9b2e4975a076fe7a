"""The interactive REPL: one prompt_toolkit `PromptSession` on the same event loop as the runtime.

Wiring follows pgcli's `_build_cli`: the editors' Pygments lexer, completion on
Tab, history in the user's data directory with suggestions from it, bracket
matching, and a multi-line buffer whose Enter runs only complete inputs. Each
input runs as a task; Ctrl-C while it runs (a fetch, a `:run`) cancels that task
and the prompt comes back.
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import IO, Any

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.layout.processors import HighlightMatchingBracketProcessor
from prompt_toolkit.lexers import PygmentsLexer
from prompt_toolkit.output import Output, create_output
from prompt_toolkit.styles import Style

from reqon.highlight import ReqonLexer
from reqon.repl.completion import ReqonCompleter
from reqon.repl.display import Printer
from reqon.repl.keys import repl_bindings
from reqon.repl.session import Outcome, Session

PROMPT = "reqon> "
STYLE = Style.from_dict({"prompt": "ansicyan bold", "continuation": "ansibrightblack"})


def history_path() -> Path:
    """`$REQON_HISTORY_FILE`, else `$XDG_DATA_HOME/reqon/history`, else `~/.local/share/reqon/history`."""
    explicit = os.environ.get("REQON_HISTORY_FILE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "reqon" / "history"


def open_history() -> History:
    """History kept across sessions; in memory only when the data directory cannot be written."""
    path = history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    except OSError:
        return InMemoryHistory()
    return FileHistory(str(path))


def build_prompt(session: Session, *, input: Input | None = None, output: Output | None = None) -> PromptSession[str]:
    def continuation(width: int, line_number: int, wrap_count: int) -> FormattedText:
        return FormattedText([("class:continuation", "...".rjust(width - 1) + " ")])

    return PromptSession(
        FormattedText([("class:prompt", PROMPT)]), multiline=True, prompt_continuation=continuation,
        lexer=PygmentsLexer(ReqonLexer), completer=ReqonCompleter(session.names), complete_while_typing=False,
        history=open_history(), auto_suggest=AutoSuggestFromHistory(),
        input_processors=[HighlightMatchingBracketProcessor(chars="[](){}")],
        key_bindings=repl_bindings(session.is_complete), style=STYLE, enable_open_in_editor=True,
        input=input, output=output)


async def run_terminal(data_dir: Path, path: str | None = None, *, input: Input | None = None,
                       output: Output | None = None, out: IO[str] | None = None, err: IO[str] | None = None,
                       database: Any = None) -> int:
    """The interactive loop; exit 0 on Ctrl-D or `:quit`."""
    printer = Printer(out or sys.stdout, err or sys.stderr)
    session = Session(printer, data_dir=data_dir, database=database)
    if output is None and not sys.stdout.isatty() and sys.stderr.isatty():
        output = create_output(stdout=sys.stderr)  # `reqon repl > file`: prompt on the terminal, results to the file
    prompt = build_prompt(session, input=input, output=output)
    try:
        if await cancellable(session.start(path), printer) is Outcome.QUIT:
            return 0
        printer.notice("reqon repl — :help for help, Ctrl-D to leave")
        while True:
            try:
                text = await prompt.prompt_async()
            except KeyboardInterrupt:
                continue
            except EOFError:
                return 0
            if await cancellable(session.execute(text), printer) is Outcome.QUIT:
                return 0
    finally:
        await session.close()


async def cancellable(work: Coroutine[Any, Any, Outcome], printer: Printer) -> Outcome:
    """Run `work` as a task that SIGINT (Ctrl-C outside the prompt) cancels instead of ending the REPL."""
    loop = asyncio.get_running_loop()
    task = loop.create_task(work)
    try:
        loop.add_signal_handler(signal.SIGINT, task.cancel)
        installed = True
    except (NotImplementedError, RuntimeError, ValueError):
        installed = False
    try:
        return await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
        printer.notice("cancelled")
        return Outcome.FAILED
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)
