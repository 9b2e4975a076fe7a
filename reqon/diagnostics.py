"""Diagnostics as values, and the one place that renders them (LANGUAGE.md §8.4).

Every stage that finds a problem in user input (lexer, parser, loader,
checker) produces `Diagnostic` values instead of raising; the CLI, the REPL and
the tests all render them through `render_text` or `to_json`, so the format is
decided here only.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO

from reqon.ast import Span

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: str
    code: str
    span: Span
    message: str
    hints: tuple[str, ...] = ()
    notes: tuple[tuple[str, Span | None], ...] = field(default=())

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR


def error(code: str, span: Span, message: str, *hints: str,
          notes: tuple[tuple[str, Span | None], ...] = ()) -> Diagnostic:
    return Diagnostic(ERROR, code, span, message, tuple(hints), notes)


def warning(code: str, span: Span, message: str, *hints: str,
            notes: tuple[tuple[str, Span | None], ...] = ()) -> Diagnostic:
    return Diagnostic(WARNING, code, span, message, tuple(hints), notes)


class ReqonSyntaxError(Exception):
    """Raised by the library API when a file does not parse; carries every diagnostic."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        first = diagnostics[0]
        super().__init__(f"{first.span.file}:{first.span.line}:{first.span.column}: {first.message}")


def sort_key(d: Diagnostic, file_order: Mapping[str, int]) -> tuple[int, int, int]:
    return (file_order.get(d.span.file, len(file_order)), d.span.line, d.span.column)


def use_colour(stream: IO[str]) -> bool:
    """Colour only on a terminal, with NO_COLOR unset or empty and TERM not dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


_STYLES = {"error": "\x1b[1;31m", "warning": "\x1b[1;33m", "bold": "\x1b[1m",
           "caret": "\x1b[1;32m", "dim": "\x1b[2m", "reset": "\x1b[0m"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def render_text(d: Diagnostic, sources: Mapping[str, str], colour: bool = False) -> str:
    """gcc-style rendering: header line, source line with carets, then help and notes."""
    def paint(style: str, text: str) -> str:
        return f"{_STYLES[style]}{text}{_STYLES['reset']}" if colour else text

    s = d.span
    header = (paint("bold", f"{s.file}:{s.line}:{s.column}:") + " "
              + paint(d.severity, f"{d.severity}[{d.code}]:") + " " + paint("bold", d.message))
    lines = [header]
    lines.extend(_excerpt(s, sources.get(s.file), paint))
    for hint in d.hints:
        lines.append(f"{' ' * _gutter_width(s)} = help: {hint}")
    for note, where in d.notes:
        place = f"{where.file}:{where.line}:{where.column}: " if where else ""
        lines.append(f"{' ' * _gutter_width(s)} = note: {place}{note}")
    return "\n".join(lines)


def _gutter_width(span: Span) -> int:
    return len(str(span.line))


def _excerpt(span: Span, text: str | None, paint) -> list[str]:  # type: ignore[no-untyped-def]
    if text is None:
        return []
    source_lines = text.split("\n")
    if not 1 <= span.line <= len(source_lines):
        return []
    line = source_lines[span.line - 1].rstrip("\r")
    if len(line) > 400:  # a 1 MB line stays readable: show the window around the span
        return _excerpt_window(span, line, paint)
    width = _gutter_width(span)
    start = max(span.column - 1, 0)
    end = span.end_column - 1 if span.end_line == span.line else len(line)
    end = max(min(end, len(line)), start + 1)
    pad = "".join(ch if ch == "\t" else " " for ch in line[:start])
    carets = "^" * (end - start)
    return [f"{span.line} | {line}", f"{' ' * width} | {pad}{paint('caret', carets)}"]


def _excerpt_window(span: Span, line: str, paint) -> list[str]:  # type: ignore[no-untyped-def]
    start = max(span.column - 1, 0)
    lo = max(start - 60, 0)
    shown = line[lo:start + 60]
    width = _gutter_width(span)
    prefix = "…" if lo else ""
    pad = " " * (len(prefix) + start - lo)
    return [f"{span.line} | {prefix}{shown}…", f"{' ' * width} | {pad}{paint('caret', '^')}"]


def summary_line(diagnostics: Iterable[Diagnostic]) -> str:
    diags = list(diagnostics)
    errors = sum(d.is_error for d in diags)
    warnings = len(diags) - errors
    parts = [f"{errors} error{'s' if errors != 1 else ''}"]
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return ", ".join(parts)


def render_all(diagnostics: list[Diagnostic], sources: Mapping[str, str], colour: bool = False) -> str:
    blocks = [render_text(d, sources, colour) for d in diagnostics]
    return "\n\n".join(blocks + [summary_line(diagnostics)]) + "\n"


def to_json(d: Diagnostic) -> dict[str, object]:
    s = d.span
    notes = list(d.hints) + [n for n, _ in d.notes]
    return {"file": s.file, "line": s.line, "column": s.column, "endLine": s.end_line,
            "endColumn": s.end_column, "severity": d.severity, "code": d.code,
            "message": d.message, "notes": notes}
