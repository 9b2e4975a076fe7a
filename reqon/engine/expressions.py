"""Evaluation of expressions (LANGUAGE.md §5): scopes, the implicit subject, operators, calls.

Evaluation is synchronous: every store kind answers reads without waiting, and a
synchronous evaluator costs a fraction of an `await` per node, which matters in
tight parallel loops. The value model itself lives in `values.py`, the
functions in `builtins.py`; this module only walks the tree.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reqon import ast
from reqon import values as V
from reqon.builtins import BUILTINS
from reqon.engine.patterns import PatternCompiler
from reqon.errors import RunError
from reqon.stores.base import Store

Value = Any


class _NoSubject:
    """Marks 'outside every subject context'; the checker keeps `.x` and `it` out of it."""

    def __repr__(self) -> str:
        return "<no subject>"


NO_SUBJECT: Any = _NoSubject()
_UNBOUND = object()
UNBOUND = _UNBOUND  # what `Scope.lookup` returns for a name bound nowhere
# Option fields whose value may be a bare word naming a choice (`backoff: constant`,
# `strategy: throttle`, `format: unix`, §3.1.4, §4.1.4, §4.1.5); the checker accepts them.
BARE_WORD_OPTIONS = frozenset({"backoff", "strategy", "format"})


class Scope:
    """One level of the scope chain of §5.4: mission, action, loop iteration or arm body."""

    __slots__ = ("vars", "parent")

    def __init__(self, parent: Scope | None = None, variables: dict[str, Value] | None = None) -> None:
        self.vars: dict[str, Value] = variables if variables is not None else {}
        self.parent = parent

    def lookup(self, name: str) -> Value:
        scope: Scope | None = self
        while scope is not None:
            found = scope.vars.get(name, _UNBOUND)
            if found is not _UNBOUND:
                return found
            scope = scope.parent
        return _UNBOUND

    def bind(self, name: str, value: Value) -> None:
        self.vars[name] = value

    def child(self) -> Scope:
        return Scope(self)


class Expressions:
    """Evaluates expression nodes against a scope, the mission's stores and an optional subject."""

    def __init__(self, stores: Mapping[str, Store], sources: Mapping[str, str],
                 functions: Mapping[str, Callable[..., Value]] | None = None,
                 schemas: Mapping[str, V.Schema] | None = None) -> None:
        self._stores = stores
        self._sources = sources
        self._functions = dict(functions or {})
        self.patterns = PatternCompiler(schemas or {})
        self._dispatch: dict[type, Callable[[Any, Scope, Value], Value]] = {
            ast.Literal: self._literal, ast.Var: self._var, ast.SubjectField: self._subject_field,
            ast.Member: self._member, ast.Index: self._index, ast.FuncCall: self._call,
            ast.Unary: self._unary, ast.Binary: self._binary, ast.Not: self._not,
            ast.IsType: self._is_type, ast.Ternary: self._ternary, ast.AnyOf: self._any_of,
            ast.ObjectLit: self._object, ast.ListLit: self._list, ast.MatchExpr: self._match,
        }

    def eval(self, expr: Any, scope: Scope, subject: Value = NO_SUBJECT) -> Value:
        return self._dispatch[type(expr)](expr, scope, subject)

    def eval_option(self, key: str, expr: Any, scope: Scope) -> Value:
        """One field of a settings object: a bare word in a choice field is the word itself,
        not a variable."""
        if key in BARE_WORD_OPTIONS and isinstance(expr, ast.Var):
            return expr.name
        return self.eval(expr, scope)

    def eval_options(self, expr: Any, scope: Scope) -> Value:
        """A settings object (retry, rateLimit, lastSync settings) with `eval_option` per field."""
        if not isinstance(expr, ast.ObjectLit):
            return self.eval(expr, scope)
        out: dict[str, Value] = {}
        for entry in expr.entries:
            if isinstance(entry, ast.Spread):
                out.update(V.spread_object(self.eval(entry.value, scope)))
            else:
                out[entry.key] = self.eval_option(entry.key, entry.value, scope)
        return out

    def text(self, node: ast.Node) -> str:
        """The source text of a node, for messages such as `assumption failed: …`."""
        source = self._sources.get(node.span.file)
        if source is None or node.span.end <= node.span.start:
            return type(node).__name__
        return source[node.span.start:node.span.end]

    # ------------------------------------------------------------ names
    def _literal(self, e: ast.Literal, scope: Scope, subject: Value) -> Value:
        return e.value

    def _var(self, e: ast.Var, scope: Scope, subject: Value) -> Value:
        found = scope.lookup(e.name)
        if found is not _UNBOUND:
            return found
        if e.name == "it" and subject is not NO_SUBJECT:
            return subject
        store = self._stores.get(e.name)
        if store is not None:
            return store.list()
        raise RunError.runtime(f"unknown name '{e.name}'")

    def _subject_field(self, e: ast.SubjectField, scope: Scope, subject: Value) -> Value:
        if subject is NO_SUBJECT:
            raise RunError.runtime(f"'.{e.name}' used outside a subject context")
        return V.member(subject, e.name)

    def store_named(self, e: Any, scope: Scope) -> Store | None:
        """The store a bare name denotes, unless a variable shadows it."""
        if isinstance(e, ast.Var) and e.name in self._stores and scope.lookup(e.name) is _UNBOUND:
            return self._stores[e.name]
        return None

    def _member(self, e: ast.Member, scope: Scope, subject: Value) -> Value:
        return V.member(self.eval(e.obj, scope, subject), e.name)

    def _index(self, e: ast.Index, scope: Scope, subject: Value) -> Value:
        store = self.store_named(e.obj, scope)
        key = self.eval(e.index, scope, subject)
        if store is not None:
            return self._store_lookup(store, key)
        return V.index(self.eval(e.obj, scope, subject), key)

    @staticmethod
    def _store_lookup(store: Store, key: Value) -> Value:
        if key is None:
            return None
        if isinstance(key, bool) or not isinstance(key, (str, int, float)):
            raise RunError.runtime(f"store {store.name} is indexed by a key (string or number), "
                                   f"got {V.type_of(key)}")
        return store.get(key if isinstance(key, str) else V.to_string(key))

    # ------------------------------------------------------------ calls
    def _call(self, e: ast.FuncCall, scope: Scope, subject: Value) -> Value:
        name = e.func.name
        builtin = BUILTINS.get(name)
        if builtin is None:
            raise RunError.runtime(f"unknown function '{name}'")
        fn = self._functions.get(name, builtin.fn)
        if builtin.elementwise and len(e.args) == 2:
            items = self.eval(e.args[0], scope, subject)
            body = e.args[1]
            return fn(items, lambda element: self.eval(body, scope, element))
        return fn(*[self.eval(a, scope, subject) for a in e.args])

    # ------------------------------------------------------------ operators
    def _unary(self, e: ast.Unary, scope: Scope, subject: Value) -> Value:
        value = self.eval(e.operand, scope, subject)
        apply = V.negate if e.op == "-" else V.plus
        try:
            return apply(value)
        except RunError:
            return apply(value, self.text(e.operand))  # raises again, naming the operand

    def _not(self, e: ast.Not, scope: Scope, subject: Value) -> Value:
        return not V.truthy(self.eval(e.operand, scope, subject))

    def _binary(self, e: ast.Binary, scope: Scope, subject: Value) -> Value:
        op = e.op
        left = self.eval(e.left, scope, subject)
        if op == "and":
            return self.eval(e.right, scope, subject) if V.truthy(left) else left
        if op == "or":
            return left if V.truthy(left) else self.eval(e.right, scope, subject)
        if op == "??":
            return left if left is not None else self.eval(e.right, scope, subject)
        right = self.eval(e.right, scope, subject)
        if op == "==":
            return V.equal(left, right)
        if op == "!=":
            return not V.equal(left, right)
        if op in ("<", "<=", ">", ">="):
            return V.compare(op, left, right)
        if op == "contains":
            return V.contains(left, right)
        if op == "+" and type(left) is int and type(right) is int:
            return left + right
        try:
            return V.arith(op, left, right)
        except RunError:
            return V.arith(op, left, right, self.text(e.left), self.text(e.right))  # names the operands

    def _is_type(self, e: ast.IsType, scope: Scope, subject: Value) -> Value:
        result = V.is_type(self.eval(e.operand, scope, subject), e.type_name.name)
        return not result if e.negated else result

    def _ternary(self, e: ast.Ternary, scope: Scope, subject: Value) -> Value:
        branch = e.then if V.truthy(self.eval(e.condition, scope, subject)) else e.otherwise
        return self.eval(branch, scope, subject)

    def _any_of(self, e: ast.AnyOf, scope: Scope, subject: Value) -> Value:
        items = self.eval(e.collection, scope, subject)
        if items is None:
            return None
        if not isinstance(items, list):
            raise RunError.runtime(f"any of: expected a list, got {V.type_of(items)}")
        for item in items:
            if V.truthy(self.eval(e.condition, scope, item)):
                return item
        return None

    # ------------------------------------------------------------ literals
    def _object(self, e: ast.ObjectLit, scope: Scope, subject: Value) -> Value:
        return self.build_object(e.entries, scope, subject)

    def build_object(self, entries: tuple[Any, ...], scope: Scope, subject: Value) -> dict[str, Value]:
        """Object literals and the field blocks of `map` and transforms share this."""
        out: dict[str, Value] = {}
        for entry in entries:
            if isinstance(entry, ast.Spread):
                out.update(V.spread_object(self.eval(entry.value, scope, subject)))
            else:
                out[entry.key] = self.eval(entry.value, scope, subject)
        return out

    def _list(self, e: ast.ListLit, scope: Scope, subject: Value) -> Value:
        out: list[Value] = []
        for item in e.items:
            if isinstance(item, ast.Spread):
                out.extend(V.spread_list(self.eval(item.value, scope, subject)))
            else:
                out.append(self.eval(item, scope, subject))
        return out

    def _match(self, e: ast.MatchExpr, scope: Scope, subject: Value) -> Value:
        """§5.10: the first applying arm's result, or null. Guards see the match subject as
        implicit subject; results keep the enclosing one. Bindings live in the arm's scope."""
        if e.subject is None:
            for arm in e.arms:
                if arm.condition is None or V.truthy(self.eval(arm.condition, scope, subject)):
                    return self.eval(arm.result, scope, subject)
            return None
        value = self.eval(e.subject, scope, subject)
        for arm in e.arms:
            arm_scope = self.arm_scope(arm.pattern, arm.guard, value, scope)
            if arm_scope is not None:
                return self.eval(arm.result, arm_scope, subject)
        return None

    def arm_scope(self, pattern: Any, guard: Any, value: Value, scope: Scope) -> Scope | None:
        """The scope of an arm whose pattern and guard accept `value` (holding the pattern's
        bindings), or None when the arm does not apply."""
        bindings: dict[str, Value] = {}
        if not self.patterns.matcher(pattern)(value, bindings):
            return None
        arm_scope = Scope(scope, bindings)
        if guard is not None and not V.truthy(self.eval(guard, arm_scope, value)):
            return None
        return arm_scope
