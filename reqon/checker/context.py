"""State shared by every pass of the checker: the symbol table, usage and the diagnostics.

One `Context` is built per mission. The declaration pass fills the symbol table
once; the action pass records, per action, an `ActionSummary` (stores read and
written, `errors` reads, jumps) so that the whole-mission analyses of the flow
pass (jump cycles, W501, W506, W520) never walk an action body again.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from reqon import ast
from reqon.diagnostics import Diagnostic, error, warning
from reqon.grammar import reserved_words

if TYPE_CHECKING:
    from reqon.openapi.document import Document

Notes = tuple[tuple[str, ast.Span | None], ...]


def head(span: ast.Span, length: int) -> ast.Span:
    """The first `length` characters of `span`: a keyword at the start of a construct."""
    return ast.Span(span.file, span.line, span.column, span.line, span.column + length,
                    span.start, span.start + length)


def suggest(name: str, candidates: Iterable[str]) -> tuple[str, ...]:
    """A "did you mean" hint, or nothing; only called once a problem has been found."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return (f"did you mean '{close[0]}'?",) if close else ()


@dataclass(slots=True)
class ActionSummary:
    """What one action does that matters beyond its own body."""

    store_reads: dict[str, ast.Span] = field(default_factory=dict)   # first read per store
    store_writes: dict[str, ast.Span] = field(default_factory=dict)  # first write per store
    errors_reads: list[ast.Span] = field(default_factory=list)
    jumps: list[ast.Ident] = field(default_factory=list)             # targets, as written


class Context:
    """Symbol table, usage marks and the diagnostic list of one mission."""

    def __init__(self, mission: ast.Mission, base_dir: Path | None) -> None:
        self.mission = mission
        self.base_dir = base_dir
        self.diagnostics: list[Diagnostic] = []
        self.reserved = reserved_words()
        self.sources: dict[str, ast.Source] = {}
        self.stores: dict[str, ast.StoreDecl] = {}
        self.schemas: dict[str, ast.Schema] = {}
        self.transforms: dict[str, ast.Transform] = {}
        self.actions: dict[str, ast.Action] = {}
        self.default_source = mission.sources[0] if mission.sources else None
        self.used_sources: set[str] = set()
        self.used_stores: set[str] = set()
        self.used_schemas: set[str] = set()
        self.used_transforms: set[str] = set()
        self.jump_targets: set[str] = set()
        self.summaries: dict[str, ActionSummary] = {}
        self.documents: dict[str, Document] = {}  # source -> its local OpenAPI document, once loaded
        self.read_too_early: set[ast.Span] = set()  # bindings already reported by E217: no W519

    def error(self, code: str, span: ast.Span, message: str, *hints: str, notes: Notes = ()) -> None:
        self.diagnostics.append(error(code, span, message, *hints, notes=notes))

    def warn(self, code: str, span: ast.Span, message: str, *hints: str, notes: Notes = ()) -> None:
        self.diagnostics.append(warning(code, span, message, *hints, notes=notes))

    def check_name(self, ident: ast.Ident, what: str) -> None:
        """E106: reserved words and `_` cannot name anything."""
        article = "an" if what[0] in "aeiou" else "a"
        if ident.name == "_":
            self.error("E106", ident.span, f"'_' cannot be the name of {article} {what}",
                       "'_' is the wildcard of patterns")
        elif ident.name in self.reserved:
            self.error("E106", ident.span,
                       f"'{ident.name}' is a reserved word and cannot be the name of {article} {what}")
