"""Names, scopes and implicit subjects inside expressions (§5.4, §5.5, §5.10, §5.11).

`ExprChecker.check(expr, scope, subject)` walks one expression: `subject` says
whether an implicit subject exists there (a `.field` or `it` is E214
otherwise). Names resolve as §5.4 orders them — variable, predefined name,
store — and every store read is recorded in the action summary for the flow
pass. Dispatch is a dict on the node type: the checker visits every node of a
mission once, so the walk has to be cheap.
"""
from __future__ import annotations

from collections.abc import Callable

from reqon import ast
from reqon.checker.context import ActionSummary, Context, suggest
from reqon.checker.patterns import bind_pattern, check_arms
from reqon.checker.scopes import ACTION_NAMES, PREDEFINED, Scope
from reqon.builtins import BUILTINS, check_jmes, check_regex
from reqon.values import IS_TYPE_NAMES

class ExprChecker:
    """Checks expressions of one place: an action, a stage condition or mission-level settings.

    `place` names where the expression is when it is not inside an action
    ("a stage condition"), for the E210 message about `response` and `http`.
    """

    def __init__(self, ctx: Context, summary: ActionSummary, place: str | None = None) -> None:
        self.ctx = ctx
        self.summary = summary
        self.place = place
        self._dispatch: dict[type, Callable[[ast.Expr, Scope, bool], None]] = {
            ast.Literal: self._nothing, ast.Var: self._var, ast.SubjectField: self._subject_field,
            ast.Member: self._member, ast.Index: self._index, ast.FuncCall: self._call,
            ast.Unary: self._unary, ast.Binary: self._binary, ast.Not: self._not,
            ast.IsType: self._is_type, ast.Ternary: self._ternary, ast.AnyOf: self._any_of,
            ast.ObjectLit: self._object, ast.ListLit: self._list, ast.MatchExpr: self._match,
        }

    def check(self, expr: ast.Expr, scope: Scope, subject: bool) -> None:
        self._dispatch[type(expr)](expr, scope, subject)

    # ------------------------------------------------------------ names
    def resolve(self, name: str, span: ast.Span, scope: Scope, subject: bool) -> bool:
        """Resolve a bare name where it is read; False (and nothing reported) when unknown."""
        binding = scope.lookup(name)
        if binding is not None:
            binding.read = True
            return True
        if name in ACTION_NAMES:
            if self.place is not None:
                self.ctx.error("E210", span, f"'{name}' is not available in {self.place}",
                               f"{self.place} sees only stores, errors and built-in functions")
            return True
        if name == "it":
            if not subject:
                self.ctx.error("E214", span, "'it' is used outside every subject context",
                               "'it' exists only where an implicit subject does (§5.5)")
            return True
        if name in self.ctx.stores:
            self.ctx.used_stores.add(name)
            self.summary.store_reads.setdefault(name, span)
            return True
        if name == "errors":
            self.summary.errors_reads.append(span)
            return True
        return False

    def unknown_name(self, name: str, span: ast.Span, scope: Scope, code: str = "E210",
                     message: str | None = None) -> None:
        later = scope.bound_later(name)
        if later is not None:
            self.ctx.read_too_early.add(later)
            self.ctx.error("E217", span, f"variable '{name}' is used before the 'let' that binds it",
                           notes=(("bound here", later),))
            return
        candidates = scope.visible() | set(self.ctx.stores) | {"errors"}
        if self.place is None:
            candidates |= ACTION_NAMES
        self.ctx.error(code, span, message or f"unknown name '{name}'", *suggest(name, candidates))

    def _var(self, expr: ast.Expr, scope: Scope, subject: bool) -> None:
        assert isinstance(expr, ast.Var)
        if not self.resolve(expr.name, expr.span, scope, subject):
            self.unknown_name(expr.name, expr.span, scope)

    def _subject_field(self, expr: ast.Expr, scope: Scope, subject: bool) -> None:
        assert isinstance(expr, ast.SubjectField)
        if not subject:
            self.ctx.error("E214", expr.span, f"'.{expr.name}' is used outside every subject context",
                           f"name the value instead, e.g. response.{expr.name} or a loop variable")

    # ------------------------------------------------------------ compound expressions
    def _nothing(self, expr: ast.Expr, scope: Scope, subject: bool) -> None:
        return None

    def _member(self, expr: ast.Expr, scope: Scope, subject: bool) -> None:
        assert isinstance(expr, ast.Member)
        self.check(expr.obj, scope, subject)

    def _index(self, expr: ast.Expr, scope: Scope, subject: bool) -> None:
        assert isinstance(expr, ast.Index)
        self.check(expr.obj, scope, subject)
        self.check(expr.index, scope, subject)

    def _unary(self, expr: ast.Expr, scope: Scope, subject: bool) -> None:
        assert isinstance(expr, ast.Unary)
        self.check(expr.operand, scope, subject)

    def _not(self, expr: ast.Expr, scope: Scope, subject: bool) -> None:
        assert isinstance(expr, ast.Not)
        self.check(expr.operand, scope, subject)

    def _binary(self, expr: ast.Expr, scope: Scope, subject: bool) -> None:
        assert isinstance(expr, ast.Binary)
        self.check(expr.left, scope, subject)
        self.check(expr.right, scope, subject)

    def _ternary(self, expr: ast.Expr, scope: Scope, subject: bool) -> None:
        assert isinstance(expr, ast.Ternary)
        self.check(expr.condition, scope, subject)
        self.check(expr.then, scope, subject)
        self.check(expr.otherwise, scope, subject)

    def _any_of(self, expr: ast.Expr, scope: Scope, subject: bool) -> None:
        assert isinstance(expr, ast.AnyOf)
        self.check(expr.collection, scope, subject)
        self.check(expr.condition, scope, True)

    def _object(self, expr: ast.Expr, scope: Scope, subject: bool) -> None:
        assert isinstance(expr, ast.ObjectLit)
        for entry in expr.entries:
            self.check(entry.value, scope, subject)

    def _list(self, expr: ast.Expr, scope: Scope, subject: bool) -> None:
        assert isinstance(expr, ast.ListLit)
        for item in expr.items:
            self.check(item.value if isinstance(item, ast.Spread) else item, scope, subject)

    def _is_type(self, expr: ast.Expr, scope: Scope, subject: bool) -> None:
        assert isinstance(expr, ast.IsType)
        self.check(expr.operand, scope, subject)
        name = expr.type_name.name
        if name in IS_TYPE_NAMES:
            return
        if name in self.ctx.schemas:
            self.ctx.error("E313", expr.type_name.span, f"'{name}' is a schema, not a type 'is' can test",
                           "test a value against a schema with match")
        else:
            self.ctx.error("E313", expr.type_name.span, f"unknown type '{name}'",
                           *suggest(name, IS_TYPE_NAMES))

    def _match(self, expr: ast.Expr, scope: Scope, subject: bool) -> None:
        """§5.10: guards see the match subject and the bindings; results only the bindings."""
        assert isinstance(expr, ast.MatchExpr)
        has_subject = expr.subject is not None
        if expr.subject is not None:
            self.check(expr.subject, scope, subject)
        check_arms(self.ctx, expr.arms, has_subject)
        for arm in expr.arms:
            arm_scope = Scope(scope)
            if arm.pattern is not None:
                bind_pattern(self.ctx, arm.pattern, arm_scope)
            if arm.condition is not None:
                self.check(arm.condition, scope, subject)
            if arm.guard is not None:
                self.check(arm.guard, arm_scope, has_subject or subject)
            self.check(arm.result, arm_scope, subject)

    # ------------------------------------------------------------ functions
    def _call(self, expr: ast.Expr, scope: Scope, subject: bool) -> None:
        assert isinstance(expr, ast.FuncCall)
        name = expr.func.name
        builtin = BUILTINS.get(name)
        if builtin is None:
            self._not_a_function(expr.func, scope)
            for arg in expr.args:
                self.check(arg, scope, subject)
            return
        count = len(expr.args)
        if count < builtin.min_args or (builtin.max_args is not None and count > builtin.max_args):
            self.ctx.error("E211", expr.func.span,
                           f"{name}() takes {_arity(builtin.min_args, builtin.max_args)}, got {count}",
                           f"usage: {builtin.signature}")
        for i, arg in enumerate(expr.args):
            self.check(arg, scope, subject or (builtin.elementwise and i == 1))
        if count == 2 and name in ("matches", "jmes"):
            self._literal_pattern(name, expr.args[1])

    def _not_a_function(self, func: ast.Ident, scope: Scope) -> None:
        name = func.name
        if scope.lookup(name) is not None or name in self.ctx.stores or name in PREDEFINED:
            self.ctx.error("E211", func.span, f"'{name}' is not a function",
                           "only built-in functions can be called")
        else:
            self.ctx.error("E211", func.span, f"unknown function '{name}'", *suggest(name, BUILTINS))

    def _literal_pattern(self, name: str, arg: ast.Expr) -> None:
        if not (isinstance(arg, ast.Literal) and arg.kind == "string"):
            return
        problem = (check_regex if name == "matches" else check_jmes)(str(arg.value))
        if problem is not None:
            self.ctx.error("E312", arg.span, problem)


def _arity(low: int, high: int | None) -> str:
    def args(n: int) -> str:
        return f"{n} argument{'s' if n != 1 else ''}"
    if high is None:
        return f"at least {args(low)}"
    if low == high:
        return "no arguments" if low == 0 else args(low)
    return f"{low} to {args(high)}" if high - low > 1 else f"{low} or {args(high)}"
