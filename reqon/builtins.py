"""The built-in functions of §5.11.

`BUILTINS` maps each name to a `Builtin`: its arity (what the checker's E211 needs) and a
plain Python function. The evaluator evaluates the arguments and calls `fn(*args)`, with
two conventions:

* for an `elementwise` function (★ in §5.11) the argument at index 1, when present, is a
  Python callable `each(element) -> value` that evaluates the argument expression with the
  element as implicit subject;
* store names passed where a list is expected have already been turned into lists.

`webhookUrl` is registered for its arity only (`evaluator_provided`): its `fn` reports the
disabled webhook server, and the evaluator substitutes its own when the server runs.

Functions treat `null` as "nothing": list functions see an empty list, text functions
return `null` (or `false` for the predicates). Every other wrong argument type fails with
kind `runtime`, naming the function.
"""

from __future__ import annotations

import math
import os
import re
import time
import uuid as _uuid
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # jmespath is imported by the first `jmes()` query, not by every start-up
    import jmespath.exceptions
    import jmespath.parser

from reqon.errors import RunError
from reqon.values import (
    MAX_SAFE_INTEGER,
    Number,
    Value,
    arith,
    as_number,
    format_number,
    format_timestamp,
    is_number,
    parse_timestamp,
    to_number,
    to_string,
    truthy,
    type_of,
)

Each = Callable[[Value], Value]


@dataclass(frozen=True, slots=True)
class Builtin:
    """A built-in function: arity for the checker, `fn` for the evaluator."""

    name: str
    signature: str
    min_args: int
    max_args: int | None
    fn: Callable[..., Value]
    elementwise: bool = False
    evaluator_provided: bool = False


BUILTINS: dict[str, Builtin] = {}


def _builtin(
    name: str,
    signature: str,
    min_args: int,
    max_args: int | None,
    *,
    elementwise: bool = False,
    evaluator_provided: bool = False,
) -> Callable[[Callable[..., Value]], Callable[..., Value]]:
    def register(fn: Callable[..., Value]) -> Callable[..., Value]:
        BUILTINS[name] = Builtin(
            name, signature, min_args, max_args, fn, elementwise, evaluator_provided
        )
        return fn

    return register


def _fail(fn_name: str, message: str) -> RunError:
    return RunError.runtime(f"{fn_name}: {message}")


# --------------------------------------------------------------------------- argument types


def _list_arg(fn_name: str, v: Value) -> list[Value]:
    if v is None:
        return []
    if isinstance(v, list):
        return v
    raise _fail(fn_name, f"expected a list, got {type_of(v)}")


def _object_arg(fn_name: str, v: Value) -> dict[str, Value]:
    if isinstance(v, dict):
        return v
    raise _fail(fn_name, f"expected an object, got {type_of(v)}")


def _string_arg(fn_name: str, v: Value, what: str = "a string") -> str:
    if isinstance(v, str):
        return v
    raise _fail(fn_name, f"expected {what}, got {type_of(v)}")


def _number_arg(fn_name: str, v: Value) -> Number:
    """A number, or a numeric string as arithmetic accepts it (§5.7.2)."""
    n = as_number(v)
    if n is not None:
        return n
    if isinstance(v, str):
        raise _fail(fn_name, f"expected a number, got the string {v!r}")
    raise _fail(fn_name, f"expected a number, got {type_of(v)}")


def _integer_arg(fn_name: str, v: Value, what: str) -> int:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    shown = format_number(v) if is_number(v) else type_of(v)  # type: ignore[arg-type]
    raise _fail(fn_name, f"{what} must be an integer, got {shown}")


def _strict_number_arg(fn_name: str, v: Value, what: str) -> Number:
    if is_number(v):
        return v  # type: ignore[return-value]
    raise _fail(fn_name, f"{what} must be a number, got {type_of(v)}")


# --------------------------------------------------------------------------- ordering


def _check_orderable(fn_name: str, items: Sequence[Value]) -> None:
    """§5.11: sorting and min/max need all numbers or all strings (nulls removed)."""
    kinds: set[str] = set()
    for v in items:
        if not (is_number(v) or isinstance(v, str)):
            raise _fail(fn_name, f"expected numbers or strings, got {type_of(v)}")
        kinds.add(type_of(v))
    if len(kinds) > 1:
        raise _fail(fn_name, "cannot order numbers and strings together")


def _sorted_nulls_last(fn_name: str, items: list[Value], keys: list[Value]) -> list[Value]:
    present = [(k, v) for k, v in zip(keys, items) if k is not None]
    absent = [v for k, v in zip(keys, items) if k is None]
    _check_orderable(fn_name, [k for k, _ in present])
    present.sort(key=lambda pair: pair[0])  # type: ignore[arg-type, return-value]
    return [v for _, v in present] + absent


def _extreme(fn_name: str, args: tuple[Value, ...], pick: Callable[..., Value]) -> Value:
    """`min(list)` reads the list's elements; `min(a, b, …)` (or one scalar) its arguments."""
    if len(args) == 1 and (args[0] is None or isinstance(args[0], list)):
        items = _list_arg(fn_name, args[0])
    else:
        items = list(args)
    present = [v for v in items if v is not None]
    if not present:
        return None
    _check_orderable(fn_name, present)
    return pick(present)


# --------------------------------------------------------------------------- TS built-ins


@_builtin("length", "length(x)", 1, 1)
def _length(x: Value) -> Value:
    if x is None:
        return 0
    if isinstance(x, (list, str, dict)):
        return len(x)
    raise _fail("length", f"expected a list, string or object, got {type_of(x)}")


@_builtin("count", "count(list) / count(list, cond)", 1, 2, elementwise=True)
def _count(xs: Value, cond: Each | None = None) -> Value:
    items = _list_arg("count", xs)
    if cond is None:
        return len(items)
    return sum(1 for v in items if truthy(cond(v)))


def _summable(fn_name: str, items: list[Value]) -> list[Number]:
    return [_number_arg(fn_name, v) for v in items if v is not None]


def _total(fn_name: str, numbers: list[Number]) -> Number:
    """Left-to-right addition, as JavaScript sums (not Python's compensated float sum)."""
    total: Value = 0
    try:
        for n in numbers:
            total = arith("+", total, n)
    except RunError as e:
        raise _fail(fn_name, e.message) from None
    return total  # type: ignore[return-value]


@_builtin("sum", "sum(list)", 1, 1)
def _sum(xs: Value) -> Value:
    return _total("sum", _summable("sum", _list_arg("sum", xs)))


@_builtin("first", "first(list)", 1, 1)
def _first(xs: Value) -> Value:
    items = _list_arg("first", xs)
    return items[0] if items else None


@_builtin("last", "last(list)", 1, 1)
def _last(xs: Value) -> Value:
    items = _list_arg("last", xs)
    return items[-1] if items else None


_ROUND_DIGITS_LIMIT = 340  # beyond any digit of a double's shortest representation


@_builtin("round", "round(n) / round(n, digits)", 1, 2)
def _round(n: Value, digits: Value = None) -> Value:
    """Half away from zero on the number as written (so `round(2.675, 2)` is 2.68)."""
    x = _number_arg("round", n)
    places = 0 if digits is None else _integer_arg("round", digits, "digits")
    if abs(places) > _ROUND_DIGITS_LIMIT:
        limit = _ROUND_DIGITS_LIMIT
        raise _fail("round", f"digits must be between -{limit} and {limit}")
    if places < 1 and _is_large_double(x):
        return x
    exact = Decimal(x) if isinstance(x, int) else Decimal(repr(x))
    with localcontext() as ctx:
        ctx.prec = max(exact.adjusted(), 0) + abs(places) + 10
        rounded = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return float(rounded) if places >= 1 else int(rounded)


def _is_large_double(x: Number) -> bool:
    """Doubles this large are integral already; keeping them doubles keeps `1e+300`."""
    return isinstance(x, float) and abs(x) >= MAX_SAFE_INTEGER


@_builtin("floor", "floor(n)", 1, 1)
def _floor(n: Value) -> Value:
    x = _number_arg("floor", n)
    return x if _is_large_double(x) else math.floor(x)


@_builtin("ceil", "ceil(n)", 1, 1)
def _ceil(n: Value) -> Value:
    x = _number_arg("ceil", n)
    return x if _is_large_double(x) else math.ceil(x)


@_builtin("now", "now()", 0, 0)
def _now() -> Value:
    return format_timestamp(time.time_ns() // 1_000_000)


_NO_DEFAULT: Any = object()


@_builtin("env", "env(name) / env(name, default)", 1, 2)
def _env(name: Value, default: Value = _NO_DEFAULT) -> Value:
    value = os.environ.get(_string_arg("env", name, "a variable name"))
    if value is not None:
        return value
    return "" if default is _NO_DEFAULT else default


# --------------------------------------------------------------------------- text


@_builtin("concat", "concat(a, …)", 1, None)
def _concat(*args: Value) -> Value:
    if all(isinstance(a, list) for a in args):
        return [v for a in args for v in a]  # type: ignore[union-attr]
    return "".join(to_string(a) for a in args)


def _text_or_null(fn_name: str, s: Value) -> str | None:
    return None if s is None else _string_arg(fn_name, s)


@_builtin("lowercase", "lowercase(s)", 1, 1)
def _lowercase(s: Value) -> Value:
    text = _text_or_null("lowercase", s)
    return None if text is None else text.lower()


@_builtin("uppercase", "uppercase(s)", 1, 1)
def _uppercase(s: Value) -> Value:
    text = _text_or_null("uppercase", s)
    return None if text is None else text.upper()


@_builtin("trim", "trim(s)", 1, 1)
def _trim(s: Value) -> Value:
    text = _text_or_null("trim", s)
    return None if text is None else text.strip()


@_builtin("split", "split(s, sep)", 2, 2)
def _split(s: Value, sep: Value) -> Value:
    text = _text_or_null("split", s)
    separator = _string_arg("split", sep, "a string separator")
    if text is None:
        return None
    return list(text) if separator == "" else list(text.split(separator))


@_builtin("join", "join(list, sep)", 2, 2)
def _join(xs: Value, sep: Value) -> Value:
    separator = _string_arg("join", sep, "a string separator")
    return separator.join(to_string(v) for v in _list_arg("join", xs))


@_builtin("replace", "replace(s, find, with)", 3, 3)
def _replace(s: Value, find: Value, replacement: Value) -> Value:
    text = _text_or_null("replace", s)
    old = _string_arg("replace", find)
    new = _string_arg("replace", replacement)
    return None if text is None else text.replace(old, new)


@_builtin("substring", "substring(s, start) / substring(s, start, end)", 2, 3)
def _substring(s: Value, start: Value, end: Value = None) -> Value:
    """Python slice semantics: negative positions from the end, clamped, `null` end = end."""
    text = _text_or_null("substring", s)
    first = _integer_arg("substring", start, "start")
    stop = None if end is None else _integer_arg("substring", end, "end")
    return None if text is None else text[first:stop]


@_builtin("startsWith", "startsWith(s, prefix)", 2, 2)
def _starts_with(s: Value, prefix: Value) -> Value:
    text = _text_or_null("startsWith", s)
    wanted = _string_arg("startsWith", prefix)
    return text is not None and text.startswith(wanted)


@_builtin("endsWith", "endsWith(s, suffix)", 2, 2)
def _ends_with(s: Value, suffix: Value) -> Value:
    text = _text_or_null("endsWith", s)
    wanted = _string_arg("endsWith", suffix)
    return text is not None and text.endswith(wanted)


@lru_cache(maxsize=256)
def _compile_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def check_regex(pattern: str) -> str | None:
    """The E312 message for an invalid literal `matches()` pattern, None when it compiles."""
    try:
        _compile_regex(pattern)
    except re.error as e:
        return f"invalid regular expression: {e}"
    return None


@_builtin("matches", "matches(s, pattern)", 2, 2)
def _matches(s: Value, pattern: Value) -> Value:
    text = _text_or_null("matches", s)
    source = _string_arg("matches", pattern, "a pattern string")
    problem = check_regex(source)
    if problem is not None:
        raise _fail("matches", problem)
    return text is not None and _compile_regex(source).search(text) is not None


@_builtin("toString", "toString(x)", 1, 1)
def _to_string(x: Value) -> Value:
    return to_string(x)


@_builtin("toNumber", "toNumber(x)", 1, 1)
def _to_number(x: Value) -> Value:
    return to_number(x)


# --------------------------------------------------------------------------- lists


@_builtin("min", "min(list) / min(a, b, …)", 1, None)
def _min(*args: Value) -> Value:
    return _extreme("min", args, min)


@_builtin("max", "max(list) / max(a, b, …)", 1, None)
def _max(*args: Value) -> Value:
    return _extreme("max", args, max)


@_builtin("avg", "avg(list)", 1, 1)
def _avg(xs: Value) -> Value:
    numbers = _summable("avg", _list_arg("avg", xs))
    if not numbers:
        return None
    return _total("avg", numbers) / len(numbers)


def _hash_key(v: Value) -> Hashable:
    """A hashable stand-in with §5.3 equality: `1` and `1.0` alike, `true` and `1` not."""
    if isinstance(v, bool):
        return ("boolean", v)
    if isinstance(v, list):
        return ("list", tuple(_hash_key(e) for e in v))
    if isinstance(v, dict):
        return ("object", frozenset((k, _hash_key(x)) for k, x in v.items()))
    return (type_of(v), v)


@_builtin("unique", "unique(list)", 1, 1)
def _unique(xs: Value) -> Value:
    seen: set[Hashable] = set()
    result: list[Value] = []
    for v in _list_arg("unique", xs):
        key = _hash_key(v)
        if key not in seen:
            seen.add(key)
            result.append(v)
    return result


@_builtin("flatten", "flatten(list)", 1, 1)
def _flatten(xs: Value) -> Value:
    result: list[Value] = []
    for v in _list_arg("flatten", xs):
        if isinstance(v, list):
            result.extend(v)
        else:
            result.append(v)
    return result


@_builtin("sort", "sort(list)", 1, 1)
def _sort(xs: Value) -> Value:
    items = _list_arg("sort", xs)
    return _sorted_nulls_last("sort", items, items)


@_builtin("sortBy", "sortBy(list, key)", 2, 2, elementwise=True)
def _sort_by(xs: Value, key: Each) -> Value:
    items = _list_arg("sortBy", xs)
    return _sorted_nulls_last("sortBy", items, [key(v) for v in items])


@_builtin("reverse", "reverse(list)", 1, 1)
def _reverse(xs: Value) -> Value:
    return _list_arg("reverse", xs)[::-1]


@_builtin("filter", "filter(list, cond)", 2, 2, elementwise=True)
def _filter(xs: Value, cond: Each) -> Value:
    return [v for v in _list_arg("filter", xs) if truthy(cond(v))]


@_builtin("find", "find(list, cond)", 2, 2, elementwise=True)
def _find(xs: Value, cond: Each) -> Value:
    return next((v for v in _list_arg("find", xs) if truthy(cond(v))), None)


@_builtin("some", "some(list, cond)", 2, 2, elementwise=True)
def _some(xs: Value, cond: Each) -> Value:
    return any(truthy(cond(v)) for v in _list_arg("some", xs))


@_builtin("every", "every(list, cond)", 2, 2, elementwise=True)
def _every(xs: Value, cond: Each) -> Value:
    return all(truthy(cond(v)) for v in _list_arg("every", xs))


@_builtin("mapEach", "mapEach(list, expr)", 2, 2, elementwise=True)
def _map_each(xs: Value, expr: Each) -> Value:
    return [expr(v) for v in _list_arg("mapEach", xs)]


# --------------------------------------------------------------------------- objects


@_builtin("keys", "keys(obj)", 1, 1)
def _keys(obj: Value) -> Value:
    return [] if obj is None else list(_object_arg("keys", obj))


@_builtin("values", "values(obj)", 1, 1)
def _values(obj: Value) -> Value:
    return [] if obj is None else list(_object_arg("values", obj).values())


@_builtin("merge", "merge(a, b, …)", 1, None)
def _merge(*objs: Value) -> Value:
    result: dict[str, Value] = {}
    for obj in objs:
        if obj is not None:
            result.update(_object_arg("merge", obj))
    return result


def _field_names(fn_name: str, names: Value) -> set[str]:
    return {_string_arg(fn_name, n, "field names") for n in _list_arg(fn_name, names)}


@_builtin("pick", "pick(obj, names)", 2, 2)
def _pick(obj: Value, names: Value) -> Value:
    wanted = _field_names("pick", names)
    if obj is None:
        return None
    return {k: v for k, v in _object_arg("pick", obj).items() if k in wanted}


@_builtin("omit", "omit(obj, names)", 2, 2)
def _omit(obj: Value, names: Value) -> Value:
    unwanted = _field_names("omit", names)
    if obj is None:
        return None
    return {k: v for k, v in _object_arg("omit", obj).items() if k not in unwanted}


@_builtin("has", "has(obj, name)", 2, 2)
def _has(obj: Value, name: Value) -> Value:
    field = _string_arg("has", name, "a field name")
    return obj is not None and field in _object_arg("has", obj)


# --------------------------------------------------------------------------- numbers, time, rest


@_builtin("abs", "abs(n)", 1, 1)
def _abs(n: Value) -> Value:
    return abs(_number_arg("abs", n))


def _timestamp_arg(fn_name: str, v: Value) -> int:
    if isinstance(v, str):
        ms = parse_timestamp(v)
        if ms is not None:
            return ms
        raise _fail(fn_name, f"{v!r} is not an ISO-8601 timestamp")
    raise _fail(fn_name, f"expected a timestamp string, got {type_of(v)}")


def _whole_ms(x: Number, scale: int = 1) -> int:
    """`x * scale` floored, computed on the number as written: `fromUnix(1.001)` is 1001 ms."""
    if isinstance(x, int):
        return x * scale
    return math.floor(Decimal(repr(x)) * scale)


def _timestamp_text(fn_name: str, ms: int) -> str:
    try:
        return format_timestamp(ms)
    except RunError as e:
        raise _fail(fn_name, e.message) from None


@_builtin("parseDate", "parseDate(x)", 1, 1)
def _parse_date(x: Value) -> Value:
    ms = parse_timestamp(x) if isinstance(x, str) else None
    return None if ms is None else format_timestamp(ms)


@_builtin("dateAdd", "dateAdd(ts, ms)", 2, 2)
def _date_add(ts: Value, ms: Value) -> Value:
    start = _timestamp_arg("dateAdd", ts)
    return _timestamp_text("dateAdd", start + _whole_ms(_strict_number_arg("dateAdd", ms, "ms")))


@_builtin("dateDiff", "dateDiff(a, b)", 2, 2)
def _date_diff(a: Value, b: Value) -> Value:
    return _timestamp_arg("dateDiff", a) - _timestamp_arg("dateDiff", b)


@_builtin("toUnix", "toUnix(ts)", 1, 1)
def _to_unix(ts: Value) -> Value:
    return _timestamp_arg("toUnix", ts) // 1000


@_builtin("fromUnix", "fromUnix(seconds)", 1, 1)
def _from_unix(seconds: Value) -> Value:
    x = _strict_number_arg("fromUnix", seconds, "seconds")
    return _timestamp_text("fromUnix", _whole_ms(x, 1000))


@_builtin("uuid", "uuid()", 0, 0)
def _uuid4() -> Value:
    return str(_uuid.uuid4())


@_builtin("typeOf", "typeOf(x)", 1, 1)
def _type_of(x: Value) -> Value:
    return type_of(x)


@_builtin("webhookUrl", "webhookUrl(path)", 1, 1, evaluator_provided=True)
def _webhook_url(path: Value) -> Value:
    raise _fail("webhookUrl", "the webhook server is not enabled")


# --------------------------------------------------------------------------- jmes

@lru_cache(maxsize=256)
def _compile_jmes(query: str) -> jmespath.parser.ParsedResult:
    import jmespath

    return jmespath.compile(query)


def _jmes_syntax_message(e: jmespath.exceptions.JMESPathError) -> str:
    import jmespath.exceptions

    if isinstance(e, jmespath.exceptions.EmptyExpressionError):
        return "the query is empty"
    if isinstance(e, jmespath.exceptions.IncompleteExpressionError):
        return f"incomplete query at position {e.lex_position}"
    if isinstance(e, jmespath.exceptions.LexerError):
        return f"{e.message} at position {e.lexer_position}"
    if isinstance(e, jmespath.exceptions.ParseError):
        return f"{e.msg} at position {e.lex_position}"
    return str(e)


def _jmes_function_problem(node: dict[str, Any]) -> str | None:
    """Unknown functions and wrong arities, which the jmespath library finds only late."""
    import jmespath.functions

    if node.get("type") == "function_expression":
        entry = jmespath.functions.Functions.FUNCTION_TABLE.get(node["value"])  # type: ignore[attr-defined]
        if entry is None:
            return f"unknown function {node['value']}()"
        signature, given = entry["signature"], len(node["children"])
        variadic = bool(signature) and signature[-1].get("variadic", False)
        if given < len(signature) or (given > len(signature) and not variadic):
            return f"wrong number of arguments for {node['value']}(): {given}"
    for child in node.get("children", ()):
        if isinstance(child, dict):
            problem = _jmes_function_problem(child)
            if problem is not None:
                return problem
    return None


def check_jmes(query: str) -> str | None:
    """The E312 message for a literal `jmes()` query that does not compile, else None."""
    import jmespath.exceptions

    try:
        parsed = _compile_jmes(query)
    except jmespath.exceptions.JMESPathError as e:
        return f"invalid JMESPath query: {_jmes_syntax_message(e)}"
    problem = _jmes_function_problem(parsed.parsed)
    return None if problem is None else f"invalid JMESPath query: {problem}"


@_builtin("jmes", "jmes(value, query)", 2, 2)
def _jmes(value: Value, query: Value) -> Value:
    source = _string_arg("jmes", query, "a query string")
    problem = check_jmes(source)
    if problem is not None:
        raise _fail("jmes", problem)
    import jmespath.exceptions

    try:
        result: Value = _compile_jmes(source).search(value)
    except jmespath.exceptions.JMESPathError as e:
        raise _fail("jmes", str(e)) from None
    return result
