"""What one REPL input is: an expression, steps, declarations, a mission or a command.

The grammar's start rule accepts only top-level declarations, and the REPL must
not change it. So an input that is not a declaration is placed inside a
synthetic mission (and action) on lines of its own, parsed with the project's
parser, and every span of the result is moved back by the lines and characters
of that prefix. Diagnostics and the AST then point into the text the user
typed, and the parser's error recovery and plain-word messages are reused
as they are.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from reqon import ast
from reqon.diagnostics import Diagnostic, error
from reqon.grammar import http_methods
from reqon.parser import parse_text
from reqon.syntax_errors import scan_brackets


class Kind(Enum):
    EXPRESSION = "expression"
    STEPS = "steps"
    MEMBERS = "members"  # source, store, schema, transform, action, run, … of the session mission
    PROGRAM = "program"  # one or more `mission { … }` blocks
    COMMAND = "command"
    EMPTY = "empty"


@dataclass(frozen=True)
class Wrapper:
    """Synthetic text around an input; the prefix ends with a newline so columns stay put."""

    prefix: str
    suffix: str

    @property
    def lines(self) -> int:
        return self.prefix.count("\n")

    def wrap(self, text: str) -> str:
        return f"{self.prefix}{text}{self.suffix}"


EXPRESSION_WRAPPER = Wrapper("mission __Repl {\naction __Input {\nlet __value =\n", "\n}\n}\n")
STEPS_WRAPPER = Wrapper("mission __Repl {\naction __Input {\n", "\n}\n}\n")
MEMBERS_WRAPPER = Wrapper("mission __Repl {\n", "\n}\n")
PROGRAM_WRAPPER = Wrapper("", "")

_STEP_WORDS = http_methods() | frozenset({
    "call", "for", "map", "apply", "validate", "let", "wait", "skip", "continue", "abort", "retry", "queue", "jump"})
_MEMBER_WORDS = frozenset({
    "source", "schema", "transform", "action", "run", "schedule", "maxConcurrency", "parallelMode"})
_LEADING = re.compile(r"(?:\s+|//[^\n]*|/\*.*?\*/)*", re.DOTALL)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STORE_DECL = re.compile(r"store\s+[A-Za-z_][A-Za-z0-9_]*\s*:")
_AT_END = re.compile(r"^unexpected '[^']*'")
_WRAPPER_CLOSE = re.compile(r"expected '\}' to close (?:action __Input|mission __Repl) opened at \d+:\d+")
_OPENED_AT = re.compile(r"opened at (\d+):(\d+)")


@dataclass
class Parsed:
    """One parsed input: its kind, the nodes it holds, or the diagnostics that stopped it."""

    kind: Kind
    text: str
    file: str
    expression: Any = None
    steps: tuple[Any, ...] = ()
    mission: ast.Mission | None = None  # MEMBERS: the members, as one mission; PROGRAM: unused
    missions: tuple[ast.Mission, ...] = ()
    program: ast.Program | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    ends_early: bool = False  # the parser wanted more text: the input may continue on the next line

    @property
    def ok(self) -> bool:
        return not self.diagnostics

    @property
    def tree(self) -> Any:
        """What `:ast` shows for this input."""
        if self.kind is Kind.EXPRESSION:
            return self.expression
        if self.kind is Kind.STEPS:
            return self.steps
        if self.kind is Kind.MEMBERS:
            return self.mission
        return self.program


def first_word(text: str) -> str | None:
    """The first word after blanks and comments, which decides how the input is parsed."""
    start = _LEADING.match(text)
    rest = text[start.end() if start else 0:]
    word = _WORD.match(rest)
    return word.group(0) if word else None


def candidate_kinds(text: str) -> tuple[Kind, ...]:
    """The kinds to try, in order; `match` starts both an expression and a step."""
    stripped = text.strip()
    if not stripped:
        return (Kind.EMPTY,)
    if stripped.startswith(":"):
        return (Kind.COMMAND,)
    word = first_word(text)
    if word == "mission":
        return (Kind.PROGRAM,)
    if word in _MEMBER_WORDS:
        return (Kind.MEMBERS,)
    if word == "store":
        body = text[_LEADING.match(text).end():]  # type: ignore[union-attr]
        return (Kind.MEMBERS,) if _STORE_DECL.match(body) else (Kind.STEPS,)
    if word in _STEP_WORDS:
        return (Kind.STEPS,)
    if word == "match":
        return (Kind.EXPRESSION, Kind.STEPS)
    return (Kind.EXPRESSION,)


def is_open(text: str) -> bool:
    """True while a bracket, a string or a block comment is still open."""
    scan = scan_brackets(text)
    return bool(scan.open) or scan.unclosed is not None


def parse_input(text: str, file: str) -> Parsed:
    """Parse one input; the first candidate kind that parses wins, else the furthest error."""
    attempts = [_parse_as(kind, text, file) for kind in candidate_kinds(text)]
    for parsed in attempts:
        if parsed.ok:
            return parsed
    return max(attempts, key=lambda p: _furthest(p.diagnostics))


def _furthest(diagnostics: list[Diagnostic]) -> int:
    return max((d.span.start for d in diagnostics), default=-1)


def _parse_as(kind: Kind, text: str, file: str) -> Parsed:
    if kind in (Kind.EMPTY, Kind.COMMAND):
        return Parsed(kind, text, file)
    wrapper = {Kind.EXPRESSION: EXPRESSION_WRAPPER, Kind.STEPS: STEPS_WRAPPER,
               Kind.MEMBERS: MEMBERS_WRAPPER, Kind.PROGRAM: PROGRAM_WRAPPER}[kind]
    program, diagnostics = parse_text(wrapper.wrap(text), file)
    shift = _Shift(wrapper, text, file)
    if program is None:
        moved = list(dict.fromkeys(shift.diagnostic(d) for d in diagnostics))
        first = min(diagnostics, key=lambda d: d.span.start)  # recovery may find more at the end
        return Parsed(kind, text, file, diagnostics=moved, ends_early=shift.at_end(first))
    program = shift.node(program)
    if kind is Kind.PROGRAM:
        missions = tuple(d for d in program.declarations if isinstance(d, ast.Mission))
        return Parsed(kind, text, file, program=program, missions=missions)
    mission = program.declarations[0]
    if kind is Kind.MEMBERS:
        return Parsed(kind, text, file, mission=mission, program=program)
    steps = mission.actions[0].steps
    if kind is Kind.STEPS:
        return Parsed(kind, text, file, steps=steps, program=program)
    return _expression(text, file, steps, program)


def _expression(text: str, file: str, steps: tuple[Any, ...], program: ast.Program) -> Parsed:
    """The wrapper's `let` holds the expression; anything after it is more than one expression."""
    if len(steps) > 1:
        extra = steps[1].span
        return Parsed(Kind.EXPRESSION, text, file, diagnostics=[
            error("E101", extra, "unexpected text after the expression",
                  "enter one expression at a time, or steps such as 'let x = …'")])
    return Parsed(Kind.EXPRESSION, text, file, expression=steps[0].value, program=program)


class _Shift:
    """Moves spans from the wrapped text back into the text the user typed."""

    def __init__(self, wrapper: Wrapper, text: str, file: str) -> None:
        self.file = file
        self.lines = wrapper.lines
        self.offset = len(wrapper.prefix)
        self.text = text
        self.end = len(wrapper.prefix) + len(text)

    def span(self, span: ast.Span) -> ast.Span:
        if not self.lines and not self.offset:
            return span
        return span._replace(line=span.line - self.lines, end_line=span.end_line - self.lines,
                             start=span.start - self.offset, end=span.end - self.offset)

    def at_end(self, d: Diagnostic) -> bool:
        """The parser hit the end of the user's text (or the wrapper after it) wanting more."""
        return d.span.start >= self.end or d.message.startswith("unexpected end of file")

    def diagnostic(self, d: Diagnostic) -> Diagnostic:
        message = _WRAPPER_CLOSE.sub("expected the end of the input", d.message)
        message = _OPENED_AT.sub(lambda m: f"opened at {int(m.group(1)) - self.lines}:{m.group(2)}", message)
        if not self.at_end(d):
            return dataclasses.replace(d, span=self.span(d.span), message=message)
        message = message.replace("unexpected end of file", "unexpected end of input")
        return dataclasses.replace(d, span=self._end_span(), message=_AT_END.sub("unexpected end of input", message))

    def _end_span(self) -> ast.Span:
        body = self.text.rstrip()
        line = body.count("\n") + 1
        column = len(body) - (body.rfind("\n") + 1) + 1
        return ast.Span(self.file, line, column, line, column + 1, len(body), len(body) + 1)

    def node(self, value: Any) -> Any:
        if isinstance(value, ast.Node):
            changes = {f.name: self.node(getattr(value, f.name)) for f in dataclasses.fields(value)}
            return type(value)(**changes)
        if isinstance(value, ast.Span):  # a named tuple: before the plain tuples
            return self.span(value)
        if isinstance(value, tuple):
            return tuple(self.node(v) for v in value)
        return value
