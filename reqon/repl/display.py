"""How the REPL shows things: values as JSON, diagnostics with carets, store tables.

Results go to stdout and everything else (diagnostics, run progress and
summaries, notices) to stderr, as in every other command (§8.4). On a terminal
values are indented and coloured; otherwise each result is one compact JSON
line, so the REPL can be scripted.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from typing import IO, Any

from reqon.diagnostics import Diagnostic, render_text, use_colour
from reqon import values as V

MAX_CELL = 60
# `less` pages only what does not fit the screen and keeps rich's colours (as git and pgcli do).
LESS_DEFAULTS = "-FRX"


def indented_json(value: Any, indent: str = "  ", level: int = 0, width: int = 72) -> str:
    """Indented JSON with numbers written as the language writes them (`V.to_json_text`).

    A list or object whose one-line form fits in `width` stays on one line, so
    `[1, 2, 3]` does not take five.
    """
    short = inline_json(value)
    if len(short) + len(indent) * level <= width:
        return short
    pad, inner = indent * level, indent * (level + 1)
    if isinstance(value, list) and value:
        items = (inner + indented_json(v, indent, level + 1, width) for v in value)
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    if isinstance(value, dict) and value:
        fields = (f"{inner}{json.dumps(k, ensure_ascii=False)}: {indented_json(v, indent, level + 1, width)}"
                  for k, v in value.items())
        return "{\n" + ",\n".join(fields) + "\n" + pad + "}"
    return V.to_json_text(value)


def inline_json(value: Any) -> str:
    """One-line JSON with a space after `,` and `:`, for reading rather than parsing."""
    if isinstance(value, list):
        return "[" + ", ".join(inline_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {inline_json(v)}"
                               for k, v in value.items()) + "}"
    return V.to_json_text(value)


def cell(value: Any) -> str:
    """One table cell: strings as they are, everything else as compact JSON, clipped."""
    text = value if isinstance(value, str) else V.to_json_text(value)
    text = text.replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


def columns_of(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every field name, in the order first seen."""
    seen: dict[str, None] = {}
    for record in records:
        seen.update(dict.fromkeys(record))
    return list(seen)


class Printer:
    """Writes results to `out` and everything else to `err`; `pretty` follows whether `out` is a terminal."""

    def __init__(self, out: IO[str], err: IO[str], *, pretty: bool | None = None) -> None:
        self.out = out
        self.err = err
        self.pretty = _isatty(out) if pretty is None else pretty
        self.colour_out = self.pretty and use_colour(out)
        self.colour_err = use_colour(err)

    # ------------------------------------------------------------ results (stdout)
    def value(self, value: Any) -> None:
        if not self.pretty:
            self._line(V.to_json_text(value))
            return
        text = indented_json(value)
        if not self.colour_out:
            self._line(text)
            return
        from rich.highlighter import JSONHighlighter
        from rich.text import Text
        self._console().print(JSONHighlighter()(Text(text)), soft_wrap=True)

    def text(self, text: str) -> None:
        self._line(text)

    def json_line(self, data: Any) -> None:
        """A command's result when stdout is not a terminal: one compact JSON line."""
        self._line(V.to_json_text(data))

    def table(self, title: str, records: list[dict[str, Any]]) -> None:
        """A store as a table; paged through `less` when it is taller than the terminal."""
        from rich.table import Table
        columns = columns_of(records)
        table = Table(title=title, title_justify="left", header_style="bold", show_lines=False)
        for name in columns:
            table.add_column(name, overflow="fold")
        for record in records:
            table.add_row(*(cell(record[name]) if name in record else "" for name in columns))
        console = self._console()
        rows = shutil.get_terminal_size((80, 24)).lines
        if len(records) + 6 <= rows:
            console.print(table)
            return
        os.environ.setdefault("LESS", LESS_DEFAULTS)
        with console.pager(styles=self.colour_out):
            console.print(table)

    # ------------------------------------------------------------ everything else (stderr)
    def diagnostics(self, diagnostics: Iterable[Diagnostic], files: Mapping[str, str]) -> None:
        for d in diagnostics:
            self.err.write(render_text(d, files, self.colour_err) + "\n")
        self.err.flush()

    def notice(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()

    def error(self, text: str) -> None:
        label = "\x1b[1;31merror:\x1b[0m" if self.colour_err else "error:"
        self.notice(f"{label} {text}")

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def _console(self) -> Any:
        from rich.console import Console
        return Console(file=self.out, force_terminal=self.colour_out, no_color=not self.colour_out,
                       highlight=False, soft_wrap=False)


def _isatty(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
