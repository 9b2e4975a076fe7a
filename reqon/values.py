"""The value model of §5 as pure functions over plain Python JSON values.

A Reqon value is `None`, `bool`, `int`, `float`, `str`, `list` or `dict` (insertion
ordered). Nothing here mutates a value: every function builds new containers, so the
evaluator can share values freely between scopes, branches and stores.

Python's own operators are close to, but not, the language's: `True == 1`, `[] < [1]`,
`-7 % 3` and `str(1e21)` all differ from §5. Every operator the evaluator needs therefore
goes through a function here, and every rule of §5 lives in exactly one place.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeAlias

from reqon.errors import RunError

Value: TypeAlias = "None | bool | int | float | str | list[Value] | dict[str, Value]"
Number: TypeAlias = "int | float"

MAX_SAFE_INTEGER = 2**53

# --------------------------------------------------------------------------- types


def is_number(v: Value) -> bool:
    """Whether `v` is a number; needed because `bool` is a subclass of `int`."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def type_of(v: Value) -> str:
    """The `typeOf()` name of a value (§5.11)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    return "object"


def a_type(v: Value) -> str:
    """The type of `v` with its article, for messages ("a list", "an object", "null")."""
    name = type_of(v)
    if name == "null":
        return "null"
    return f"an {name}" if name == "object" else f"a {name}"


# --------------------------------------------------------------------------- §5.2, §5.3


def truthy(v: Value) -> bool:
    """§5.2: `false`, `null`, `0`, `""`, `[]` and `{}` are falsy (unlike JavaScript)."""
    if v is None or v is False:
        return False
    if isinstance(v, (int, float, str, list, dict)):
        return bool(v)
    return True


def equal(a: Value, b: Value) -> bool:
    """§5.3 structural equality: numbers by value, never a boolean with a number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) and is_number(b):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return a is None and b is None


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def compare(op: str, a: Value, b: Value) -> bool:
    """§5.3 ordering: numbers, strings by code point, number against numeric string.

    A `null` on either side makes the comparison false rather than an error, so that
    `where .score > 3` quietly skips records without a score.
    """
    test = _COMPARISONS[op]
    if a is None or b is None:
        return False
    if isinstance(a, str) and isinstance(b, str):
        return test(a, b)
    x, y = as_number(a), as_number(b)
    if x is None or y is None:
        raise RunError.runtime(f"cannot compare {a_type(a)} with {a_type(b)}")
    return test(x, y)


def as_number(v: Value) -> Number | None:
    """A number, or the number a numeric string spells (§5.7.2, §5.12); None otherwise."""
    if is_number(v):
        return v  # type: ignore[return-value]
    if isinstance(v, str):
        return parse_number(v)
    return None


# --------------------------------------------------------------------------- §5.12 numbers

_NUMBER_RE = re.compile(r"\s*([+-]?[0-9]+)(\.[0-9]+)?([eE][+-]?[0-9]+)?\s*")


def parse_number(text: str) -> Number | None:
    """The number a string spells by §5.12, or None when it spells none.

    Integers stay exact (`int`); a fraction or exponent makes a double. A string whose
    double overflows (`"1e999"`) spells no number, because infinities are not values.
    """
    m = _NUMBER_RE.fullmatch(text)
    if m is None:
        return None
    whole, fraction, exponent = m.groups()
    if fraction is None and exponent is None:
        return int(whole)
    result = float(m.group(0))
    return result if math.isfinite(result) else None


def to_number(v: Value) -> Number | None:
    """`toNumber()` (§5.12): the only conversion that accepts booleans."""
    if v is None:
        return None
    if isinstance(v, bool):
        return 1 if v else 0
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        n = parse_number(v)
        if n is not None:
            return n
        raise RunError.runtime(f"toNumber: {_quote(v)} is not a number")
    raise RunError.runtime(f"toNumber: cannot convert {a_type(v)} to a number")


def _quote(s: str, limit: int = 40) -> str:
    shown = s if len(s) <= limit else s[: limit - 1] + "…"
    return json.dumps(shown, ensure_ascii=False)


# --------------------------------------------------------------------------- §5.7.2


def _describe_operand(v: Value) -> str:
    if isinstance(v, str):
        return f"the non-numeric string {_quote(v)}"
    return a_type(v)


def _numeric_operand(op: str, v: Value, side: str | None, text: str | None) -> Number:
    """An arithmetic operand as a number: numbers, or numeric strings (TS compatibility)."""
    n = as_number(v)
    if n is not None:
        return n
    where = f" ({side} operand {text})" if side and text else ""
    raise RunError.runtime(f"cannot apply '{op}' to {_describe_operand(v)}{where}")


def arith(
    op: str,
    a: Value,
    b: Value,
    left_text: str | None = None,
    right_text: str | None = None,
) -> Value:
    """Binary `+ - * / %` (§5.7.2).

    `left_text`/`right_text` are the operands' source text, quoted in error messages so
    that "cannot apply '*' to null (left operand .price)" points at the missing field.
    """
    if op not in ("+", "-", "*", "/", "%"):
        raise ValueError(f"not an arithmetic operator: {op!r}")
    if op == "+" and (isinstance(a, str) or isinstance(b, str)):
        return to_string(a) + to_string(b)
    x = _numeric_operand(op, a, "left", left_text)
    y = _numeric_operand(op, b, "right", right_text)
    if op in ("/", "%") and y == 0:
        what = "division" if op == "/" else "modulo"
        where = f" (right operand {right_text})" if right_text else ""
        raise RunError.runtime(f"{what} by zero{where}")
    try:
        result = _apply(op, x, y)
    except OverflowError:
        result = math.inf
    if isinstance(result, float) and not math.isfinite(result):
        raise RunError.runtime(f"the result of '{op}' is too large for a number")
    return result


def _apply(op: str, x: Number, y: Number) -> Number:
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op == "%":
        return x % y
    if isinstance(x, int) and isinstance(y, int):
        quotient, remainder = divmod(x, y)
        if remainder == 0:
            return quotient
    return x / y


def negate(v: Value, text: str | None = None) -> Number:
    """Unary `-`; requires a number or numeric string (§5.7.2)."""
    return -_numeric_operand("-", v, "unary", text)


def plus(v: Value, text: str | None = None) -> Number:
    """Unary `+`: converts a numeric string, rejects everything but numbers."""
    return _numeric_operand("+", v, "unary", text)


# --------------------------------------------------------------------------- §5.12 strings


def to_string(v: Value) -> str:
    """`toString()` and every implicit conversion to text (§5.12)."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return format_number(v)
    return to_json_text(v)


def to_json_text(v: Value) -> str:
    """Compact JSON, with numbers written exactly as `toString` writes them."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return format_number(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ",".join(to_json_text(e) for e in v) + "]"
    fields = (json.dumps(k, ensure_ascii=False) + ":" + to_json_text(x) for k, x in v.items())
    return "{" + ",".join(fields) + "}"


def format_number(n: Number) -> str:
    """A number as JavaScript's `Number.prototype.toString` writes it.

    Python's `repr` already finds the shortest digits that read back as the same double;
    only the placement of the decimal point and the switch to exponent notation differ
    (JS: plain notation for decimal exponents from -6 to 20).
    """
    if isinstance(n, int):
        return str(n)
    if math.isnan(n):
        return "NaN"
    if math.isinf(n):
        return "Infinity" if n > 0 else "-Infinity"
    if n == 0:
        return "0"
    sign = "-" if n < 0 else ""
    digits, point = _shortest_digits(abs(n))
    k = len(digits)
    if k <= point <= 21:
        return sign + digits + "0" * (point - k)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * -point + digits
    exponent = point - 1
    mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"


def _shortest_digits(x: float) -> tuple[str, int]:
    """Digits `d1…dk` (no trailing zeros) and `point` with x = 0.d1…dk × 10^point."""
    _, digit_tuple, exponent = Decimal(repr(x)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)
    trailing_zeros = len(digit_tuple) - len(digits)
    return digits, exponent + trailing_zeros + len(digits)


# --------------------------------------------------------------------------- §5.1 output


def normalize_number(v: Value) -> Value:
    """An integral double within ±2^53 becomes an integer, as it is written out (§5.1)."""
    if isinstance(v, float) and v.is_integer() and abs(v) <= MAX_SAFE_INTEGER:
        return int(v)
    return v


def to_json_value(v: Value) -> Value:
    """`normalize_number` applied throughout a value, before it leaves the program."""
    if isinstance(v, list):
        return [to_json_value(e) for e in v]
    if isinstance(v, dict):
        return {k: to_json_value(x) for k, x in v.items()}
    return normalize_number(v)


# --------------------------------------------------------------------------- §5.7.4, §5.7.5


def contains(a: Value, b: Value) -> bool:
    """`a contains b` (§5.7.4)."""
    if a is None:
        return False
    if isinstance(a, str):
        return isinstance(b, str) and b in a
    if isinstance(a, list):
        return any(equal(e, b) for e in a)
    if isinstance(a, dict):
        return isinstance(b, str) and b in a
    raise RunError.runtime(f"cannot use 'contains' on {a_type(a)}")


_ISO_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:?\d{2})?)?",
    re.ASCII,
)
_EPOCH = _dt.datetime(1970, 1, 1)
_MS_PER_MINUTE = 60_000


def parse_timestamp(text: str) -> int | None:
    """An ISO-8601 date or date-time string as epoch milliseconds, or None.

    A date alone is midnight UTC and a date-time without offset is UTC (§5.11
    `parseDate`). Fractions finer than a millisecond are truncated. Working in integer
    milliseconds keeps `dateAdd`/`dateDiff` exact.
    """
    m = _ISO_RE.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = m.groups()
    try:
        moment = _dt.datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError:
        return None
    ms = (moment - _EPOCH) // _dt.timedelta(milliseconds=1)
    ms += int((fraction or "0")[:3].ljust(3, "0"))
    if offset and offset != "Z":
        hours, minutes = int(offset[1:3]), int(offset[-2:])
        if hours > 23 or minutes > 59:
            return None
        sign = 1 if offset[0] == "+" else -1
        ms -= sign * (hours * 60 + minutes) * _MS_PER_MINUTE
    return ms


def format_timestamp(ms: int) -> str:
    """Epoch milliseconds as the canonical `YYYY-MM-DDTHH:MM:SS.sssZ`."""
    try:
        moment = _EPOCH + _dt.timedelta(milliseconds=ms)
    except OverflowError:
        raise RunError.runtime("timestamp out of range (years 1 to 9999)") from None
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}."
        f"{moment.microsecond // 1000:03d}Z"
    )


def _is_int(v: Value) -> bool:
    if isinstance(v, float):
        return v.is_integer()
    return isinstance(v, int) and not isinstance(v, bool)


def _is_date(v: Value) -> bool:
    return isinstance(v, str) and parse_timestamp(v) is not None


_TYPE_TESTS: dict[str, Callable[[Value], bool]] = {
    "string": lambda v: isinstance(v, str),
    "int": _is_int,
    "integer": _is_int,
    "number": is_number,
    "decimal": is_number,
    "float": is_number,
    "double": is_number,
    "boolean": lambda v: isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "date": _is_date,
    "datetime": _is_date,
    "array": lambda v: isinstance(v, list),
    "list": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "any": lambda v: True,
    "null": lambda v: v is None,
}

SCHEMA_TYPE_NAMES: frozenset[str] = frozenset(_TYPE_TESTS) - {"list"}
"""Built-in type names valid in a schema field (§3.3); other names must be schemas."""

IS_TYPE_NAMES: frozenset[str] = frozenset(_TYPE_TESTS)
"""Type names valid after `is` / `is not` (§5.7.5): the §3.3 names plus `list`."""


def is_type(v: Value, type_name: str) -> bool:
    """`v is type_name` (§5.7.5); unknown names are the checker's E313."""
    test = _TYPE_TESTS.get(type_name)
    if test is None:
        raise RunError.runtime(f"unknown type name '{type_name}'")
    return test(v)


# --------------------------------------------------------------------------- §5.8, §5.9


def member(v: Value, name: str) -> Value:
    """`v.name`: null-safe, so anything but an object with that field gives null."""
    if isinstance(v, dict):
        return v.get(name)
    return None


def _integer_index(i: Value) -> int | None:
    if isinstance(i, bool):
        return None
    if isinstance(i, int):
        return i
    if isinstance(i, float) and i.is_integer():
        return int(i)
    return None


def index(v: Value, i: Value) -> Value:
    """`v[i]` for lists, objects, strings and null (§5.8); store lookups are elsewhere.

    Negative positions count from the end for strings as for lists (the spec states it
    for lists only).
    """
    if v is None:
        return None
    if isinstance(v, dict) and isinstance(i, str):
        return v.get(i)
    if isinstance(v, (list, str)):
        pos = _integer_index(i)
        if pos is not None:
            if pos < 0:
                pos += len(v)
            return v[pos] if 0 <= pos < len(v) else None
        if isinstance(i, float):
            raise RunError.runtime(
                f"cannot index {a_type(v)} with the fractional number {format_number(i)}"
            )
    raise RunError.runtime(f"cannot index {a_type(v)} with {a_type(i)}")


def spread_object(v: Value) -> dict[str, Value]:
    """The fields `...v` copies into an object literal (§5.9); null copies nothing."""
    if v is None:
        return {}
    if isinstance(v, dict):
        return v
    raise RunError.runtime(f"cannot spread {a_type(v)} into an object")


def spread_list(v: Value) -> list[Value]:
    """The elements `...v` inserts into a list literal (§5.9); null inserts nothing."""
    if v is None:
        return []
    if isinstance(v, list):
        return v
    raise RunError.runtime(f"cannot spread {a_type(v)} into a list")


# --------------------------------------------------------------------------- §3.3 schemas


@dataclass(frozen=True, slots=True)
class TypeRef:
    """A named type: a built-in name of §3.3 (`string`, `int`, `array`, …) or a schema name.

    `arg` is the element type of `array<T>` and None everywhere else.
    """

    name: str
    arg: TypeRef | InlineObject | None = None


@dataclass(frozen=True, slots=True)
class Field:
    """One `name: type [?]` entry of a schema or inline object."""

    name: str
    type: TypeRef | InlineObject
    optional: bool = False


@dataclass(frozen=True, slots=True)
class InlineObject:
    """An inline object type `{ field: type … }`."""

    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class Schema:
    """A `schema Name { … }` declaration."""

    name: str
    fields: tuple[Field, ...]


def matches_type(
    value: Value, type_expr: TypeRef | InlineObject, schemas: Mapping[str, Schema]
) -> bool:
    """Whether `value` is accepted by a schema type (§3.3 table and matching rules).

    Recursive schemas terminate because values are finite trees.
    """
    if isinstance(type_expr, InlineObject):
        return _matches_fields(value, type_expr.fields, schemas)
    if type_expr.name in ("array", "list") and type_expr.arg is not None:
        element_type = type_expr.arg
        return isinstance(value, list) and all(
            matches_type(e, element_type, schemas) for e in value
        )
    if type_expr.name in _TYPE_TESTS:
        return _TYPE_TESTS[type_expr.name](value)
    schema = schemas.get(type_expr.name)
    if schema is None:
        raise RunError.runtime(f"unknown type name '{type_expr.name}'")
    return _matches_fields(value, schema.fields, schemas)


def _matches_fields(
    value: Value, fields: tuple[Field, ...], schemas: Mapping[str, Schema]
) -> bool:
    """Rules 1-4 of §3.3: a required field's null passes only for `any`/`null` types."""
    if not isinstance(value, dict):
        return False
    for field in fields:
        if field.name not in value:
            if field.optional:
                continue
            return False
        v = value[field.name]
        if v is None and field.optional:
            continue
        if not matches_type(v, field.type, schemas):
            return False
    return True
