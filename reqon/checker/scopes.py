"""Block scopes of the checker (§5.4): bindings, their kind and whether they are read."""
from __future__ import annotations

from reqon import ast

ACTION_NAMES = frozenset({"response", "http"})
PREDEFINED = frozenset({"response", "http", "errors", "it"})


class Binding:
    """A variable: `kind` is let, as, loop or pattern; `read` feeds W519 (let and as only)."""

    __slots__ = ("name", "span", "kind", "read")

    def __init__(self, name: str, span: ast.Span, kind: str) -> None:
        self.name = name
        self.span = span
        self.kind = kind
        self.read = False


class Scope:
    """One block scope; `pending` maps names bound by a later `let`/`as` of this block (E217)."""

    __slots__ = ("parent", "names", "pending")

    def __init__(self, parent: Scope | None, pending: dict[str, ast.Span] | None = None) -> None:
        self.parent = parent
        self.names: dict[str, Binding] = {}
        self.pending = pending or {}

    def lookup(self, name: str) -> Binding | None:
        scope: Scope | None = self
        while scope is not None:
            found = scope.names.get(name)
            if found is not None:
                return found
            scope = scope.parent
        return None

    def bound_later(self, name: str) -> ast.Span | None:
        scope: Scope | None = self
        while scope is not None:
            found = scope.pending.get(name)
            if found is not None:
                return found
            scope = scope.parent
        return None

    def visible(self) -> set[str]:
        names: set[str] = set()
        scope: Scope | None = self
        while scope is not None:
            names.update(scope.names)
            scope = scope.parent
        return names
