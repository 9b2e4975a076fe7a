"""Tab completion: pure context analysis (`suggest`) and the prompt_toolkit `Completer` over it.

As in pgcli, the analysis knows nothing about terminals: it takes the text
before the cursor and the session's `Names` and returns `Suggestion`s, which
the tests assert directly. Keywords come from the grammar and functions from
`BUILTINS`, so both follow the language without a list kept here.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prompt_toolkit.completion import (
    CompleteEvent,
    Completer,
    Completion,
    PathCompleter,
)
from prompt_toolkit.document import Document

from reqon.grammar import METHOD_ALIASES, all_keywords, http_methods
from reqon.repl.commands import COMMANDS, Names
from reqon.builtins import BUILTINS

_WORD_AT_END = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_PATH_BEFORE_DOT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\.$")
_ARROW = re.compile(r"->\s*$")
_AFTER_WORD = re.compile(r"\b(jump|apply|run|then|queue|call)\s+$")
_IN_STAGE_LIST = re.compile(r"\brun\b[^\n]*\[[^\]]*$")
_COMMAND_ARGUMENT = re.compile(r"^\s*(:[a-z]+)\s+(\S*)$")
_SHOW_SOURCE = re.compile(r"^\s*:show\s+source\s+(\S*)$")
_CALL_SOURCE = re.compile(r"\bcall\s+([A-Za-z_][A-Za-z0-9_]*)\.$")
_OPERATION_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# `get ` then a word: the source named before the path (§4.1)
_AFTER_METHOD = re.compile(r"(?<![A-Za-z0-9_.])(?:" + "|".join(sorted(http_methods())) + r")\s+$")


@dataclass(frozen=True)
class Suggestion:
    text: str
    kind: str  # keyword, function, command, variable, source, store, action, transform, schema, field, operation


def suggest(before_cursor: str, names: Names) -> list[Suggestion]:
    """What may complete the word that ends at the cursor, most specific first, no duplicates."""
    stripped = before_cursor.lstrip()
    if stripped.startswith(":"):
        return _command(stripped, names)
    word = _current_word(before_cursor)
    head = before_cursor[:len(before_cursor) - len(word)]
    found = _unique(s for s in _in_context(head, names) if s.text.startswith(word) and s.text != word)
    if not found and word and _PATH_BEFORE_DOT.search(head):  # no field fits: a method-style call (§5.8)
        found = [s for s in _methods() if s.text.startswith(word) and s.text != word]
    return found


def _current_word(text: str) -> str:
    found = _WORD_AT_END.search(text)
    return found.group(0) if found else ""


def _command(text: str, names: Names) -> list[Suggestion]:
    source = _SHOW_SOURCE.match(text)
    if source is not None:
        prefix = source.group(1)
        return [Suggestion(n, "source") for n in names.operations if n.startswith(prefix) and n != prefix]
    argument = _COMMAND_ARGUMENT.match(text)
    if argument is None:
        return [Suggestion(c, "command") for c in COMMANDS if c.startswith(text)]
    command, prefix = argument.groups()
    pool = {":show": [(s, "store") for s in names.stores] + ([("source", "keyword")] if names.operations else []),
            ":run": [(a, "action") for a in names.actions]}
    return [Suggestion(n, kind) for n, kind in pool.get(command, []) if n.startswith(prefix) and n != prefix]


def _in_context(head: str, names: Names) -> Iterable[Suggestion]:
    call = _CALL_SOURCE.search(head)
    if call is not None and call.group(1) in names.operations:
        return _operations(names.operations[call.group(1)])
    if head.endswith("."):
        return _fields(head, names)
    if _ARROW.search(head):
        return _named(names.stores, "store") + _named(names.schemas, "schema")
    after = _AFTER_WORD.search(head)
    if after is not None:
        word = after.group(1)
        if word == "apply":
            return _named(names.transforms, "transform")
        if word == "queue":
            return _named(names.stores, "store")
        if word == "call":
            return _named(names.sources, "source")
        return _named(names.actions, "action")
    if _IN_STAGE_LIST.search(head):
        return _named(names.actions, "action")
    if _AFTER_METHOD.search(head):
        return _named(names.sources, "source") + _anything(names)
    return _anything(names)


def _anything(names: Names) -> list[Suggestion]:
    return (_named(names.variables, "variable") + _named(names.stores, "store")
            + _named(names.sources, "source") + _named(names.actions, "action")
            + _named(names.transforms, "transform") + _named(names.schemas, "schema")
            + _named(sorted(BUILTINS), "function") + _named(sorted(all_keywords()), "keyword"))


def _fields(head: str, names: Names) -> list[Suggestion]:
    """`name.` completes the fields of a variable's value or a store's records; a bare `.` those of any record."""
    path = _PATH_BEFORE_DOT.search(head)
    if path is not None:
        first, *rest = path.group(1).split(".")
        if first in names.variables:
            return _named(_keys(_walk(names.variables[first], rest)), "field")
        if first in names.store_fields and not rest:
            return _named(names.store_fields[first], "field")
    every = [f for fields in names.store_fields.values() for f in fields]
    every += [k for value in names.variables.values() if isinstance(value, list) for k in _keys(value)]
    return _named(every, "field")


def _methods() -> list[Suggestion]:
    """Built-ins as methods, with the aliases of that position (`.map(` is mapEach)."""
    return _named(sorted(set(BUILTINS) | set(METHOD_ALIASES)), "function")


def _walk(value: Any, path: list[str]) -> Any:
    for name in path:
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


def _keys(value: Any) -> list[str]:
    """Field names of an object, or of the objects in a list (the usual `response.items`)."""
    if isinstance(value, dict):
        return list(value)
    if isinstance(value, list):
        seen: dict[str, None] = {}
        for item in value[:50]:
            if isinstance(item, dict):
                seen.update(dict.fromkeys(item))
        return list(seen)
    return []


def _operations(operation_ids: Iterable[str]) -> list[Suggestion]:
    """`call Source.` completes operationIds; one that is not a word is offered quoted (§4.2)."""
    return [Suggestion(op if _OPERATION_WORD.fullmatch(op) else f'"{op}"', "operation") for op in sorted(operation_ids)]


def _named(items: Iterable[str], kind: str) -> list[Suggestion]:
    return [Suggestion(name, kind) for name in items]


def _unique(suggestions: Iterable[Suggestion]) -> list[Suggestion]:
    seen: set[str] = set()
    out = []
    for s in suggestions:
        if s.text not in seen:
            seen.add(s.text)
            out.append(s)
    return out


class ReqonCompleter(Completer):
    """Offers `suggest` results with their kind as meta; `:load` completes file paths."""

    def __init__(self, names: Callable[[], Names]) -> None:
        self._names = names
        self._paths = PathCompleter(expanduser=True)

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        before = document.text_before_cursor
        load = re.match(r"^\s*:load\s+", before)
        if load is not None:
            yield from self._paths.get_completions(Document(before[load.end():]), complete_event)
            return
        word = _COMMAND_ARGUMENT.match(before)
        typed = word.group(2) if word is not None else (before.strip() if before.lstrip().startswith(":")
                                                        else _current_word(before))
        for s in suggest(before, self._names()):
            yield Completion(s.text, start_position=-len(typed), display_meta=s.kind)
