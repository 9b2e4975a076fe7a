"""Match patterns and subject-less arms (§4.9.1, §4.9, §5.10): E315, E215, E208, W507, W503, W504.

Shared by the step form (`ActionWalker`) and the expression form (`ExprChecker`):
both bind a pattern's names into the arm's own scope, so they are visible in
the guard and the body (or result) and nowhere else.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reqon import ast
from reqon.checker.context import Context, suggest
from reqon.checker.scopes import PREDEFINED, Binding, Scope
from reqon.patterns import ACCEPTED_FORMS, bindings, invalid_parts, schema_names


def bind_pattern(ctx: Context, pattern: ast.Pattern, scope: Scope) -> None:
    """Report what is wrong with a pattern and bind its names in `scope` (an arm scope)."""
    for bad in invalid_parts(pattern):
        ctx.error("E315", bad.span, bad.message, ACCEPTED_FORMS)
    for name, span in schema_names(pattern):
        if name in ctx.schemas:
            ctx.used_schemas.add(name)
        else:
            ctx.error("E208", span, f"unknown schema '{name}'", *suggest(name, ctx.schemas),
                      "a name starting with an upper-case letter is a schema in a pattern")
    first: dict[str, ast.Span] = {}
    for binding in bindings(pattern):
        name = binding.name
        if name in first:
            ctx.error("E315", binding.span, f"'{name}' is bound twice in this pattern",
                      "use another name, or compare in a guard: … where a == b",
                      notes=(("first bound here", first[name]),))
            continue
        first[name] = binding.span
        if name in PREDEFINED:
            ctx.error("E215", binding.span, f"'{name}' is predefined and cannot be bound by a pattern",
                      "choose another name")
            continue
        ctx.check_name(ast.Ident(name=name, span=binding.span), "pattern binding")
        if name in ctx.stores:
            ctx.warn("W507", binding.span, f"pattern binding '{name}' shadows the store '{name}'",
                     notes=(("store declared here", ctx.stores[name].name.span),))
        scope.names[name] = Binding(name, binding.span, "pattern")


def catches_all(arm: ast.Arm | ast.ExprArm, has_subject: bool) -> bool:
    """An arm that applies to every value: `_` or a lone binding (with a subject), `_` or
    `true` (without one), in both cases without a guard."""
    if arm.guard is not None:
        return False
    if has_subject:
        return isinstance(arm.pattern, (ast.WildcardPattern, ast.BindingPattern))
    condition = arm.condition
    return condition is None or (isinstance(condition, ast.Literal) and condition.value is True)


def arm_head(arm: ast.Arm | ast.ExprArm) -> ast.Span:
    """Where diagnostics about a whole arm point: its pattern, condition or `_`."""
    head: Any = arm.pattern if arm.pattern is not None else arm.condition
    if head is not None:
        return head.span  # type: ignore[no-any-return]
    s = arm.span
    return ast.Span(s.file, s.line, s.column, s.line, s.column + 1, s.start, s.start + 1)


def check_arms(ctx: Context, arms: Sequence[ast.Arm | ast.ExprArm], has_subject: bool) -> bool:
    """W503 for arms after a catch-all, E315 for `where` without a subject; True when the
    match has its wildcard arm (no W504)."""
    for i, arm in enumerate(arms[:-1]):
        if catches_all(arm, has_subject):
            what = ("a binding without guard" if isinstance(arm.pattern, ast.BindingPattern)
                    else "the 'true' arm" if arm.condition is not None else "the '_' arm without guard")
            ctx.warn("W503", arm_head(arms[i + 1]), "unreachable match arm",
                     notes=((f"{what} before it matches every value", arm_head(arm)),))
            break
    if not has_subject:
        for arm in arms:
            if arm.guard is not None:
                ctx.error("E315", arm.guard.span, "'where' in a match without a subject",
                          "each arm is already a condition: join them with 'and'")
    return any(_has_wildcard(arm, has_subject) for arm in arms)


def _has_wildcard(arm: ast.Arm | ast.ExprArm, has_subject: bool) -> bool:
    """W504 is about the wildcard arm being there (guarded or not, docs/checks.md), or a
    lone binding, which accepts as much."""
    if isinstance(arm.pattern, ast.WildcardPattern):
        return True
    return catches_all(arm, has_subject) if has_subject else (
        arm.condition is None or (isinstance(arm.condition, ast.Literal) and arm.condition.value is True))
