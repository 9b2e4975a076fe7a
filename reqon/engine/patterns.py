"""Match patterns at run time (LANGUAGE.md §4.9.1): each pattern node compiled once into a closure.

A compiled pattern is a function `(value, bindings) -> bool` that never raises,
whatever JSON value it is given, and only writes `bindings` along the way; the
caller keeps them only when the whole pattern (and its guard) accepts. Compiling
once per node keeps a match of many object arms cheap: no dispatch on node
types per value, only dictionary lookups and comparisons.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reqon import ast
from reqon import values as V

Value = Any
Bindings = dict[str, Value]
Matcher = Callable[[Value, Bindings], bool]


def _always(value: Value, bindings: Bindings) -> bool:
    return True


class PatternCompiler:
    """Compiles pattern nodes against the mission's schemas; caches by node identity."""

    def __init__(self, schemas: Mapping[str, V.Schema]) -> None:
        self._schemas = schemas
        self._cache: dict[int, tuple[ast.Pattern, Matcher]] = {}

    def matcher(self, pattern: ast.Pattern) -> Matcher:
        found = self._cache.get(id(pattern))
        if found is not None and found[0] is pattern:
            return found[1]
        compiled = self._compile(pattern)
        self._cache[id(pattern)] = (pattern, compiled)  # the node is kept alive: its id stays unique
        return compiled

    def _compile(self, pattern: ast.Pattern) -> Matcher:
        match pattern:
            case ast.WildcardPattern():
                return _always
            case ast.BindingPattern(name=name):
                return _binding(name)
            case ast.LiteralPattern(value=expected):
                return _literal(expected)
            case ast.SchemaPattern(name=name):
                return self._schema(name)
            case ast.ObjectPattern():
                return self._object(pattern)
            case ast.ListPattern(items=items):
                return _list([self._compile(p) for p in items])
            case ast.ListRestPattern(items=items, rest=rest):
                return _list_rest([self._compile(p) for p in items],
                                  rest.name if isinstance(rest, ast.BindingPattern) else None)
            case ast.ListOfPattern(schema=name):
                return self._list_of(name)
        raise ValueError(f"not a runnable pattern: {type(pattern).__name__}")  # the checker rejects E315

    def _schema(self, name: str) -> Matcher:
        ref, schemas = V.TypeRef(name), self._schemas

        def accepts(value: Value, bindings: Bindings) -> bool:
            return V.matches_type(value, ref, schemas)
        return accepts

    def _list_of(self, name: str) -> Matcher:
        ref, schemas = V.TypeRef(name), self._schemas

        def accepts(value: Value, bindings: Bindings) -> bool:
            return isinstance(value, list) and all(V.matches_type(v, ref, schemas) for v in value)
        return accepts

    def _object(self, pattern: ast.ObjectPattern) -> Matcher:
        """Every listed key present with a non-null value its pattern accepts; a key whose
        pattern is the literal `null` must be absent or null instead."""
        absent = tuple(f.key for f in pattern.fields
                       if isinstance(f.pattern, ast.LiteralPattern) and f.pattern.value is None)
        present = tuple((f.key, self._compile(f.pattern)) for f in pattern.fields if f.key not in absent)
        listed = frozenset(f.key for f in pattern.fields)
        rest = pattern.rest.name if isinstance(pattern.rest, ast.BindingPattern) else None

        def accepts(value: Value, bindings: Bindings) -> bool:
            if not isinstance(value, dict):
                return False
            for key in absent:
                if value.get(key) is not None:
                    return False
            for key, sub in present:
                field = value.get(key)
                if field is None or not sub(field, bindings):
                    return False
            if rest is not None:
                bindings[rest] = {k: v for k, v in value.items() if k not in listed}
            return True
        return accepts


def _binding(name: str) -> Matcher:
    def accepts(value: Value, bindings: Bindings) -> bool:
        bindings[name] = value
        return True
    return accepts


def _literal(expected: Value) -> Matcher:
    """§5.3 equality: `401` never accepts `"401"`, `true` never `1`; `null` also an absent value."""
    if expected is None:
        return lambda value, bindings: value is None
    if isinstance(expected, str):
        return lambda value, bindings: value.__class__ is str and value == expected
    return lambda value, bindings: V.equal(value, expected)


def _list(items: list[Matcher]) -> Matcher:
    size = len(items)

    def accepts(value: Value, bindings: Bindings) -> bool:
        if not isinstance(value, list) or len(value) != size:
            return False
        return all(sub(v, bindings) for sub, v in zip(items, value))
    return accepts


def _list_rest(items: list[Matcher], rest: str | None) -> Matcher:
    size = len(items)

    def accepts(value: Value, bindings: Bindings) -> bool:
        if not isinstance(value, list) or len(value) < size:
            return False
        if not all(sub(v, bindings) for sub, v in zip(items, value)):
            return False
        if rest is not None:
            bindings[rest] = value[size:]
        return True
    return accepts
