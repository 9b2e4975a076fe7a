"""From an expression in pattern position to a pattern node (LANGUAGE.md §4.9.1).

The grammar reads a pattern as an expression, which keeps it LALR(1); this is
where the AST is built, so every later stage sees only the pattern nodes of
`reqon.ast`. An expression that is none of the accepted forms becomes an
`InvalidPattern` on the offending sub-expression, reported by the checker as
E315, so one bad arm does not hide the problems of the rest of the file.
"""
from __future__ import annotations

from reqon import ast

ACCEPTED_FORMS = ("a pattern is _, a literal, a name, a SchemaName, { key: pattern, … }, "
                  "[p, …], [p, ...rest] or [SchemaName]; compare other values in a guard: v where v == …")

_DESCRIPTIONS: dict[type, str] = {
    ast.FuncCall: "a function call", ast.Member: "a member access", ast.Index: "an index",
    ast.Binary: "an operator expression", ast.Unary: "a unary operator", ast.Not: "a 'not' expression",
    ast.IsType: "an 'is' test", ast.Ternary: "a conditional expression", ast.AnyOf: "an 'any of' expression",
    ast.MatchExpr: "a match expression", ast.SubjectField: "a field of the implicit subject",
}


def to_pattern(expr: ast.Expr) -> ast.Pattern:
    """The pattern node an expression denotes, or an InvalidPattern pointing at the culprit."""
    match expr:
        case ast.Var(name="_"):
            return ast.WildcardPattern(span=expr.span)
        case ast.Var(name=name):
            if name[0].isupper():
                return ast.SchemaPattern(name=name, span=expr.span)
            return ast.BindingPattern(name=name, span=expr.span)
        case ast.Literal(value=value, kind=kind):
            return ast.LiteralPattern(value=value, kind=kind, span=expr.span)
        case ast.Unary(op="-", operand=ast.Literal(kind="int" | "decimal" | "duration") as operand):
            return ast.LiteralPattern(value=-operand.value, kind=operand.kind,  # type: ignore[operator]
                                      span=expr.span)
        case ast.ObjectLit():
            return _object(expr)
        case ast.ListLit():
            return _list(expr)
    what = _DESCRIPTIONS.get(type(expr), "this expression")
    return ast.InvalidPattern(message=f"{what} cannot be a pattern", span=expr.span)


def _rest(spread: ast.Spread, is_last: bool, seen_rest: bool) -> ast.BindingPattern | ast.WildcardPattern | \
        ast.InvalidPattern:
    if seen_rest:
        return ast.InvalidPattern(message="'...' may appear only once in a pattern", span=spread.span)
    if not is_last:
        return ast.InvalidPattern(message="'...' must come last in a pattern", span=spread.span)
    if not isinstance(spread.value, ast.Var):
        return ast.InvalidPattern(message="'...' in a pattern takes a name or _", span=spread.value.span)
    rest = to_pattern(spread.value)
    if isinstance(rest, ast.SchemaPattern):
        return ast.BindingPattern(name=rest.name, span=rest.span)
    assert isinstance(rest, (ast.BindingPattern, ast.WildcardPattern))
    return rest


def _object(expr: ast.ObjectLit) -> ast.Pattern:
    fields: list[ast.FieldPattern] = []
    rest: ast.BindingPattern | ast.WildcardPattern | None = None
    keys: set[str] = set()
    last = len(expr.entries) - 1
    for i, entry in enumerate(expr.entries):
        if isinstance(entry, ast.Spread):
            found = _rest(entry, i == last, rest is not None)
            if isinstance(found, ast.InvalidPattern):
                return found
            rest = found
            continue
        if entry.key in keys:
            return ast.InvalidPattern(message=f"key '{entry.key}' is given twice in this pattern",
                                      span=entry.key_span)
        keys.add(entry.key)
        fields.append(ast.FieldPattern(key=entry.key, key_span=entry.key_span, pattern=to_pattern(entry.value),
                                       span=entry.span))
    return ast.ObjectPattern(fields=tuple(fields), rest=rest, span=expr.span)


def _list(expr: ast.ListLit) -> ast.Pattern:
    items = expr.items
    if len(items) == 1 and isinstance(items[0], ast.Var) and items[0].name[0].isupper():
        return ast.ListOfPattern(schema=items[0].name, schema_span=items[0].span, span=expr.span)
    patterns: list[ast.Pattern] = []
    rest: ast.BindingPattern | ast.WildcardPattern | None = None
    last = len(items) - 1
    for i, item in enumerate(items):
        if isinstance(item, ast.Spread):
            found = _rest(item, i == last, rest is not None)
            if isinstance(found, ast.InvalidPattern):
                return found
            rest = found
            continue
        patterns.append(to_pattern(item))
    if rest is None:
        return ast.ListPattern(items=tuple(patterns), span=expr.span)
    return ast.ListRestPattern(items=tuple(patterns), rest=rest, span=expr.span)


def invalid_parts(pattern: ast.Pattern) -> list[ast.InvalidPattern]:
    """Every InvalidPattern inside a pattern, outermost first."""
    match pattern:
        case ast.InvalidPattern():
            return [pattern]
        case ast.ObjectPattern(fields=fields):
            return [bad for f in fields for bad in invalid_parts(f.pattern)]
        case ast.ListPattern(items=items) | ast.ListRestPattern(items=items):
            return [bad for item in items for bad in invalid_parts(item)]
    return []


def bindings(pattern: ast.Pattern) -> list[ast.BindingPattern]:
    """The names a pattern binds, in source order (duplicates included, for E315)."""
    match pattern:
        case ast.BindingPattern():
            return [pattern]
        case ast.ObjectPattern(fields=fields, rest=rest):
            found = [b for f in fields for b in bindings(f.pattern)]
            return found + ([rest] if isinstance(rest, ast.BindingPattern) else [])
        case ast.ListPattern(items=items):
            return [b for item in items for b in bindings(item)]
        case ast.ListRestPattern(items=items, rest=rest):
            found = [b for item in items for b in bindings(item)]
            return found + ([rest] if isinstance(rest, ast.BindingPattern) else [])
    return []


def schema_names(pattern: ast.Pattern) -> list[tuple[str, ast.Span]]:
    """Schema names a pattern refers to, for E208 and W502."""
    match pattern:
        case ast.SchemaPattern(name=name):
            return [(name, pattern.span)]
        case ast.ListOfPattern(schema=name, schema_span=span):
            return [(name, span)]
        case ast.ObjectPattern(fields=fields):
            return [s for f in fields for s in schema_names(f.pattern)]
        case ast.ListPattern(items=items) | ast.ListRestPattern(items=items):
            return [s for item in items for s in schema_names(item)]
    return []
