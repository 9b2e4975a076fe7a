"""Static option values: the integer, duration, word, boolean and object checks of §3 and §4.

Option blocks are ordinary key lists in the AST; which keys exist and what their
literal values must look like is decided here (E301, E302, E303, E304, E305,
E306, E318, W512). Values that are evaluated at run time are left to the
expression pass; these helpers only judge what is static.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from reqon import ast
from reqon.checker.context import Context, suggest

DURATION_EXAMPLE = "write a duration such as 500ms, 30s or 5m"


def describe(expr: ast.Expr) -> str:
    """A short rendering of a static value for messages."""
    if isinstance(expr, ast.Literal):
        if expr.kind == "string":
            return f'"{expr.value}"'
        if expr.kind == "bool":
            return "true" if expr.value else "false"
        if expr.kind == "null":
            return "null"
        if expr.kind == "duration":
            return f"{expr.value}ms"
        return str(expr.value)
    if isinstance(expr, ast.Unary) and expr.op == "-" and isinstance(expr.operand, ast.Literal):
        return "-" + describe(expr.operand)
    if isinstance(expr, ast.Var):
        return expr.name
    if isinstance(expr, ast.ListLit):
        return "a list"
    if isinstance(expr, ast.ObjectLit):
        return "an object"
    return "an expression"


def keyed_entries(ctx: Context, entries: Iterable[ast.Entry], allowed: Collection[str],
                  what: str) -> dict[str, ast.Entry]:
    """E301 for unknown keys, E302 for repeated ones; the first entry of each known key."""
    found: dict[str, ast.Entry] = {}
    for entry in entries:
        if entry.key not in allowed:
            ctx.error("E301", entry.key_span, f"unknown {what} '{entry.key}'",
                      *(suggest(entry.key, allowed) or (f"allowed: {', '.join(allowed)}",)))
        elif entry.key in found:
            ctx.error("E302", entry.key_span, f"'{entry.key}' is given twice",
                      notes=(("first given here", found[entry.key].key_span),))
        else:
            found[entry.key] = entry
    return found


def settings_object(ctx: Context, expr: ast.Expr, allowed: Collection[str], what: str,
                    key: str) -> dict[str, ast.Entry] | None:
    """A static `{ … }` value (retry objects, rateLimit, …): E318 unless an object literal."""
    if not isinstance(expr, ast.ObjectLit):
        ctx.error("E318", expr.span, f"'{key}' must be an object literal {{ … }}, got {describe(expr)}")
        return None
    entries: list[ast.Entry] = []
    for item in expr.entries:
        if isinstance(item, ast.Spread):
            ctx.error("E318", item.span, f"spread is not allowed in '{key}': its fields are static")
        else:
            entries.append(item)
    return keyed_entries(ctx, entries, allowed, what)


def no_settings(ctx: Context, entry: ast.Entry) -> None:
    """E303: a settings object is allowed only after an auth kind or `lastSync`."""
    if entry.settings is not None:
        ctx.error("E303", entry.settings.span,
                  f"a settings object is not allowed after the value of '{entry.key}'",
                  "only an auth kind or lastSync can be followed by { … }")


def _int_literal(expr: ast.Expr) -> int | None:
    if isinstance(expr, ast.Literal) and expr.kind == "int":
        return int(expr.value)  # type: ignore[call-overload]
    if (isinstance(expr, ast.Unary) and expr.op == "-" and isinstance(expr.operand, ast.Literal)
            and expr.operand.kind == "int"):
        return -int(expr.operand.value)  # type: ignore[call-overload]
    return None


def integer(ctx: Context, expr: ast.Expr, key: str, minimum: int = 1) -> int | None:
    """E304: an integer literal of at least `minimum`."""
    value = _int_literal(expr)
    if value is None:
        ctx.error("E304", expr.span, f"'{key}' must be an integer literal, got {describe(expr)}")
        return None
    if value < minimum:
        ctx.error("E304", expr.span, f"'{key}' must be at least {minimum}, got {value}")
        return None
    return value


def duration(ctx: Context, expr: ast.Expr, key: str, positive: bool) -> None:
    """E306 for a bad duration, W512 for a plain number that was probably meant as seconds."""
    negative = isinstance(expr, ast.Unary) and expr.op == "-"
    literal = expr.operand if isinstance(expr, ast.Unary) and expr.op == "-" else expr
    if not (isinstance(literal, ast.Literal) and literal.kind in ("int", "duration")):
        ctx.error("E306", expr.span, f"'{key}' must be a duration, got {describe(expr)}", DURATION_EXAMPLE)
        return
    value = int(literal.value)  # type: ignore[call-overload]
    if negative and value != 0:
        ctx.error("E306", expr.span, f"'{key}' cannot be negative")
    elif positive and value == 0:
        ctx.error("E306", expr.span, f"'{key}' must be a positive duration, got 0")
    elif literal.kind == "int" and 0 < value < 1000:
        ctx.warn("W512", expr.span, f"'{key}: {value}' is {value} milliseconds",
                 f"if you meant seconds, write {value}s")


def word(ctx: Context, expr: ast.Expr, key: str, words: Sequence[str], *,
         bare: bool = True) -> str | None:
    """E305: one of `words`, as a string literal or (when `bare`) a bare word."""
    if isinstance(expr, ast.Literal) and expr.kind == "string":
        text = str(expr.value)
    elif bare and isinstance(expr, ast.Var):
        text = expr.name
    elif isinstance(expr, ast.Var) and expr.name in words:
        ctx.error("E305", expr.span, f"'{key}' is written as a string", f'write "{expr.name}"')
        return None
    else:
        ctx.error("E305", expr.span, f"'{key}' must be one of {_listing(words)}, got {describe(expr)}")
        return None
    if text not in words:
        ctx.error("E305", expr.span, f"unknown {key} '{text}'",
                  *(suggest(text, words) or (f"expected one of {_listing(words)}",)))
        return None
    return text


def boolean(ctx: Context, expr: ast.Expr, key: str) -> None:
    """E318 unless the literal `true` or `false`."""
    if not (isinstance(expr, ast.Literal) and expr.kind == "bool"):
        ctx.error("E318", expr.span, f"'{key}' must be true or false, got {describe(expr)}")


def string(ctx: Context, expr: ast.Expr, key: str) -> str | None:
    """E318 unless a string literal."""
    if isinstance(expr, ast.Literal) and expr.kind == "string":
        return str(expr.value)
    ctx.error("E318", expr.span, f"'{key}' must be a string literal, got {describe(expr)}")
    return None


def not_a_list_or_scalar(ctx: Context, expr: ast.Expr, key: str) -> None:
    """E318 for a literal that can never yield an object (`headers: [ … ]`, `params: 5`)."""
    if isinstance(expr, (ast.ListLit, ast.Literal)) and not (
            isinstance(expr, ast.Literal) and expr.kind == "null"):
        ctx.error("E318", expr.span, f"'{key}' must be an object, got {describe(expr)}")


def _listing(words: Sequence[str]) -> str:
    return ", ".join(words)


RETRY_FIELDS = ("maxAttempts", "backoff", "initialDelay", "maxDelay", "delay")
BACKOFFS = ("exponential", "linear", "constant")


def retry_fields(ctx: Context, fields: dict[str, ast.Entry], *, directive: bool) -> ast.Expr | None:
    """The fields of a retry object (§4.1.5); returns `delay`, which only the directive allows."""
    for name, entry in fields.items():
        no_settings(ctx, entry)
        if name == "maxAttempts":
            integer(ctx, entry.value, name)
        elif name == "backoff":
            word(ctx, entry.value, name, BACKOFFS)
        elif name in ("initialDelay", "maxDelay"):
            duration(ctx, entry.value, name, positive=False)
    delay = fields.get("delay")
    if delay is None:
        return None
    if not directive:
        ctx.error("E303", delay.key_span, "'delay' is allowed only in the retry directive",
                  "use initialDelay and backoff here")
        return None
    value = delay.value
    if isinstance(value, ast.Literal) and value.kind == "int" and 0 < int(value.value) < 1000:  # type: ignore[call-overload]
        duration(ctx, value, "delay", positive=False)
    return value


def retry_option(ctx: Context, entry: ast.Entry) -> None:
    """The `retry:` option of a fetch, call or wait: a retry object without `delay`."""
    no_settings(ctx, entry)
    fields = settings_object(ctx, entry.value, RETRY_FIELDS, "retry field", "retry")
    if fields is not None:
        retry_fields(ctx, fields, directive=False)
