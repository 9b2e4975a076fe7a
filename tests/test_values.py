"""The value model of §5: truthiness, equality, ordering, arithmetic, conversions, types."""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reqon.errors import ERROR_KINDS, RunError
from reqon.values import (
    IS_TYPE_NAMES,
    SCHEMA_TYPE_NAMES,
    Field,
    InlineObject,
    Schema,
    TypeRef,
    Value,
    arith,
    compare,
    contains,
    equal,
    format_number,
    format_timestamp,
    index,
    is_type,
    matches_type,
    member,
    negate,
    normalize_number,
    parse_timestamp,
    plus,
    spread_list,
    spread_object,
    to_json_value,
    to_number,
    to_string,
    truthy,
    type_of,
)


def runtime_error(message: str = "") -> pytest.RaisesContext[RunError]:
    return pytest.raises(RunError, match=message)


# --------------------------------------------------------------------------- errors


def test_run_error_fields_and_runtime_helper() -> None:
    e = RunError.runtime("boom")
    assert (e.kind, e.message, e.status, e.span, str(e)) == ("runtime", "boom", None, None, "boom")
    e.span = ("file.vague", 3, 4)
    assert e.span == ("file.vague", 3, 4)
    http = RunError("http", "404 Not Found", status=404)
    assert (http.kind, http.status) == ("http", 404)


def test_run_error_rejects_unknown_kind() -> None:
    assert "rate-limit" in ERROR_KINDS and len(ERROR_KINDS) == 13
    with pytest.raises(ValueError):
        RunError("oops", "x")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- §5.2


@pytest.mark.parametrize(
    "value, expected",
    [
        (False, False), (None, False), (0, False), (0.0, False), (-0.0, False), ("", False),
        ([], False), ({}, False),
        (True, True), (1, True), (-1, True), (0.5, True), ("0", True), ("false", True),
        ([None], True), ({"a": None}, True), ([[]], True),
    ],
)
def test_truthy(value: Value, expected: bool) -> None:
    assert truthy(value) is expected


# --------------------------------------------------------------------------- §5.3


@pytest.mark.parametrize(
    "a, b, expected",
    [
        (1, 1.0, True), (1, 2, False), (0, -0.0, True), ("a", "a", True), ("a", "A", False),
        (None, None, True), (None, 0, False), (None, "", False), (None, False, False),
        (True, 1, False), (False, 0, False), (1.0, True, False), (True, True, True),
        (1, "1", False), ("", [], False), ([], {}, False),
        ([1, [2, {"x": 3}]], [1.0, [2, {"x": 3.0}]], True), ([1, 2], [2, 1], False),
        ([1], [1, 1], False), ([True], [1], False),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, True), ({"a": 1}, {"a": 1, "b": None}, False),
        ({"a": None}, {"b": None}, False), ({"a": {"b": [1]}}, {"a": {"b": [1.0]}}, True),
        (2**53 + 1, float(2**53), False),
    ],
)
def test_equal(a: Value, b: Value, expected: bool) -> None:
    assert equal(a, b) is expected
    assert equal(b, a) is expected


@pytest.mark.parametrize(
    "op, a, b, expected",
    [
        ("<", 1, 2, True), ("<", 2, 1, False), ("<=", 2, 2.0, True), (">", 2.5, 2, True),
        (">=", -1, 0, False), ("<", "a", "b", True), ("<", "B", "a", True),
        ("<", "Z", "é", True), (">", "2025-03-10T00:00:00Z", "2025-03-09T23:59:59Z", True),
        ("<", "10", "9", True),  # two strings: code points, not numbers
        ("<", 9, "10", True), (">", "19.99", 5, True), ("<=", " 3 ", 3, True),
        ("<", None, 1, False), (">=", None, None, False), (">", "a", None, False),
        ("<=", None, [1], False),
    ],
)
def test_compare(op: str, a: Value, b: Value, expected: bool) -> None:
    assert compare(op, a, b) is expected


@pytest.mark.parametrize(
    "a, b, message",
    [
        ([1], 1, "cannot compare a list with a number"),
        (1, {}, "cannot compare a number with an object"),
        (True, False, "cannot compare a boolean with a boolean"),
        ("abc", 1, "cannot compare a string with a number"),
        (1, True, "cannot compare a number with a boolean"),
        ("a", ["a"], "cannot compare a string with a list"),
    ],
)
def test_compare_errors(a: Value, b: Value, message: str) -> None:
    with runtime_error(f"^{message}$") as info:
        compare("<", a, b)
    assert info.value.kind == "runtime"


# --------------------------------------------------------------------------- §5.7.2


@pytest.mark.parametrize(
    "op, a, b, expected",
    [
        ("+", 1, 2, 3), ("+", 1, 2.5, 3.5), ("+", 0.1, 0.2, 0.30000000000000004),
        ("+", "n", 1.5, "n1.5"), ("+", "n1.5", None, "n1.5"), ("+", None, "x", "x"),
        ("+", "a", True, "atrue"), ("+", [1, 2], "!", "[1,2]!"), ("+", "o", {"a": 1}, 'o{"a":1}'),
        ("+", "1", 1, "11"), ("+", "", 5.0, "5"),
        ("-", 5, 7, -2), ("-", "10", 4, 6), ("-", 2.5, 0.5, 2.0),
        ("*", 3, 4, 12), ("*", "19.99", 2, 39.98), ("*", 2, 0.5, 1.0), ("*", " 3 ", "2", 6),
        ("/", 8, 2, 4), ("/", 7, 2, 3.5), ("/", -9, 3, -3), ("/", 1, 3, 1 / 3), ("/", 8.0, 2, 4.0),
        ("/", 10**30, 10**10, 10**20), ("/", "9", "3", 3),
        ("%", 7, 3, 1), ("%", -7, 3, 2), ("%", 7, -3, -2), ("%", -7, -3, -1),
        ("%", 7.5, 2, 1.5), ("%", -7.5, 2, 0.5), ("%", "10", 4, 2),
    ],
)
def test_arith(op: str, a: Value, b: Value, expected: Value) -> None:
    result = arith(op, a, b)
    assert result == expected
    assert type(result) is type(expected)


def test_integer_arithmetic_stays_exact() -> None:
    big = 2**64
    assert arith("+", big, 1) == 18446744073709551617
    assert arith("*", big, big) == 2**128
    assert arith("/", 10, 4) == 2.5 and arith("*", arith("/", 10, 4), 2) == 5.0
    assert normalize_number(arith("*", arith("/", 10, 4), 2)) == 5


@pytest.mark.parametrize(
    "op, a, b, left, right, message",
    [
        ("*", None, 2, ".price", None, r"^cannot apply '\*' to null \(left operand \.price\)$"),
        ("*", 2, None, None, ".qty", r"^cannot apply '\*' to null \(right operand \.qty\)$"),
        ("-", None, 1, None, None, r"^cannot apply '-' to null$"),
        ("+", None, 1, "x", None, r"^cannot apply '\+' to null \(left operand x\)$"),
        ("+", True, 1, None, None, "^cannot apply '\\+' to a boolean$"),
        ("+", 1, [2], None, None, "^cannot apply '\\+' to a list$"),
        ("/", {}, 1, None, None, "^cannot apply '/' to an object$"),
        ("-", "abc", 1, None, None, '^cannot apply \'-\' to the non-numeric string "abc"$'),
        ("*", 2, "1,5", None, None, "non-numeric string \"1,5\""),
        ("/", 1, 0, None, "n", r"^division by zero \(right operand n\)$"),
        ("/", 1.5, 0.0, None, None, "^division by zero$"),
        ("%", 1, 0, None, None, "^modulo by zero$"),
        ("/", 1, "0", None, None, "^division by zero$"),
        ("*", 1e308, 10, None, None, "too large"),
        ("+", 10**400, 0.5, None, None, "too large"),
    ],
)
def test_arith_errors(
    op: str, a: Value, b: Value, left: str | None, right: str | None, message: str
) -> None:
    with runtime_error(message) as info:
        arith(op, a, b, left, right)
    assert info.value.kind == "runtime"


def test_arith_rejects_unknown_operator() -> None:
    with pytest.raises(ValueError):
        arith("^", 1, 2)


@pytest.mark.parametrize(
    "value, expected",
    [(3, -3), (-2.5, 2.5), ("4", -4), (" 1.5 ", -1.5), (0, 0)],
)
def test_negate(value: Value, expected: Value) -> None:
    result = negate(value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("value, expected", [(3, 3), ("4.5", 4.5), (-1, -1)])
def test_plus(value: Value, expected: Value) -> None:
    assert plus(value) == expected


@pytest.mark.parametrize("value", [None, True, "x", [1], {}])
def test_unary_errors(value: Value) -> None:
    with runtime_error("cannot apply '-'"):
        negate(value, ".x")
    with runtime_error("cannot apply '\\+'"):
        plus(value)


def test_unary_error_names_operand() -> None:
    with runtime_error(r"^cannot apply '-' to null \(unary operand \.price\)$"):
        negate(None, ".price")


# --------------------------------------------------------------------------- §5.12


@pytest.mark.parametrize(
    "value, expected",
    [
        (0.1 + 0.2, "0.30000000000000004"), (1e21, "1e+21"), (1e-7, "1e-7"),
        (123456789012345680000.0, "123456789012345680000"), (5.0, "5"), (-0.0, "0"),
        (0.0, "0"), (1.5, "1.5"), (-1.5, "-1.5"), (1e-6, "0.000001"), (1.5e-6, "0.0000015"),
        (1.234e-7, "1.234e-7"), (1e20, "100000000000000000000"), (1.5e21, "1.5e+21"),
        (-1e21, "-1e+21"), (1.7976931348623157e308, "1.7976931348623157e+308"),
        (5e-324, "5e-324"), (123.456, "123.456"), (100.0, "100"), (0.001, "0.001"),
        (2.0**53, "9007199254740992"), (2.0**70, "1.1805916207174113e+21"),
        (12345.678e10, "123456780000000"), (39.98, "39.98"),
        (math.inf, "Infinity"), (-math.inf, "-Infinity"), (math.nan, "NaN"),
        (0, "0"), (-42, "-42"), (10**25, "10000000000000000000000000"),
    ],
)
def test_format_number_is_javascript(value: float, expected: str) -> None:
    assert format_number(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("text", "text"), (None, ""), (True, "true"), (False, "false"), (7, "7"), (7.0, "7"),
        ([], "[]"), ({}, "{}"), ([1, 2.0, None, True, "x"], '[1,2,null,true,"x"]'),
        ({"a": [0.5, 1e21], "b": {"c": "é\n\"q\""}}, '{"a":[0.5,1e+21],"b":{"c":"é\\n\\"q\\""}}'),
        ({"z": 1, "a": 2}, '{"z":1,"a":2}'),
    ],
)
def test_to_string(value: Value, expected: str) -> None:
    assert to_string(value) == expected


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_format_number_agrees_with_node() -> None:
    samples = [
        0.1, 1 / 3, 2 / 3, 1e-5, 1.23e-6, 9.999e20, 1e21 - 65536, 123e18, 4.35, 0.000001,
        1e100, 2.5e-8, 7.0e-7, 1.0000000000000002, 98765.4321, 2**60 + 0.0, 5e-7, 4.9e-7,
        999999999999999900000.0, 1.2e21, -3.75e-10, 1e16, 123456789.123456789,
    ]
    script = "const xs = JSON.parse(require('fs').readFileSync(0, 'utf8'));" \
        "console.log(JSON.stringify(xs.map(String)));"
    out = subprocess.run(
        ["node", "-e", script], input=json.dumps(samples), capture_output=True, text=True,
        check=True, timeout=30,
    )
    assert [format_number(x) for x in samples] == json.loads(out.stdout)


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, None), (True, 1), (False, 0), (5, 5), (2.5, 2.5), ("42", 42), (" -7 ", -7),
        ("+3", 3), ("3.25", 3.25), ("1e3", 1000.0), ("-1.5E-2", -0.015), ("007", 7),
        ("\t12\n", 12), ("123456789012345678901234567890", 123456789012345678901234567890),
    ],
)
def test_to_number(value: Value, expected: Value) -> None:
    result = to_number(value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    "value, message",
    [
        ("abc", '"abc" is not a number'), ("", '"" is not a number'), ("1.", "not a number"),
        (".5", "not a number"), ("1,5", "not a number"), ("0x10", "not a number"),
        ("1e999", "not a number"), ("Infinity", "not a number"), ("NaN", "not a number"),
        ("1 2", "not a number"), ([1], "cannot convert a list"), ({}, "cannot convert an object"),
    ],
)
def test_to_number_errors(value: Value, message: str) -> None:
    with runtime_error(message):
        to_number(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_to_number_reads_back_to_string(x: float) -> None:
    # Digits without fraction read back as an exact integer, which may differ from the
    # double beyond 2**53 (like JavaScript's 19721420041778310); as a double it is x.
    result = to_number(to_string(x))
    assert result is not None and float(result) == x


@given(st.integers())
def test_integers_round_trip_exactly(n: int) -> None:
    result = to_number(to_string(n))
    assert result == n and isinstance(result, int)


# --------------------------------------------------------------------------- §5.1


@pytest.mark.parametrize(
    "value, expected",
    [
        (5.0, 5), (-0.0, 0), (2.0**53, 2**53), (-(2.0**53), -(2**53)), (2.0**53 * 2, 2.0**54),
        (1.5, 1.5), (7, 7), (True, True), ("5.0", "5.0"), (None, None),
    ],
)
def test_normalize_number(value: Value, expected: Value) -> None:
    result = normalize_number(value)
    assert result == expected and type(result) is type(expected)


def test_to_json_value_recurses_without_mutating() -> None:
    original: Value = {"a": [1.0, {"b": 2.5, "c": 3.0}], "d": True, "e": 1e300}
    result = to_json_value(original)
    assert json.dumps(result) == '{"a": [1, {"b": 2.5, "c": 3}], "d": true, "e": 1e+300}'
    assert original == {"a": [1.0, {"b": 2.5, "c": 3.0}], "d": True, "e": 1e300}
    assert type(original["a"][0]) is float  # type: ignore[index]


# --------------------------------------------------------------------------- §5.7.4


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("hello", "ell", True), ("hello", "", True), ("hello", "xyz", False), ("1234", 23, False),
        ([1, 2, 3], 2.0, True), ([1, 2], "2", False), ([True], 1, False), ([[1, 2]], [1, 2], True),
        ([{"a": 1}], {"a": 1.0}, True), ([], None, False), ([None], None, True),
        ({"a": None}, "a", True), ({"a": 1}, "b", False), ({"1": 1}, 1, False),
        (None, "x", False), (None, None, False),
    ],
)
def test_contains(a: Value, b: Value, expected: bool) -> None:
    assert contains(a, b) is expected


@pytest.mark.parametrize("a", [1, 2.5, True])
def test_contains_errors(a: Value) -> None:
    with runtime_error("cannot use 'contains' on a"):
        contains(a, 1)


# --------------------------------------------------------------------------- §5.7.5


IS_CASES: list[tuple[Value, str, bool]] = [
    ("x", "string", True), (1, "string", False),
    (5, "int", True), (5.0, "int", True), (5.5, "int", False), (True, "int", False),
    ("5", "integer", False), (-3, "integer", True),
    (5.5, "number", True), (5, "decimal", True), (True, "number", False), (1, "float", True),
    ("1", "double", False),
    (True, "boolean", True), (False, "bool", True), (0, "bool", False),
    ("2025-03-09", "date", True), ("2025-03-09T08:15:00Z", "date", True),
    ("2025-03-09T08:15:00.123456+05:30", "datetime", True),
    ("2025-03-09T08:15:00", "datetime", True),
    ("2025-03-09T08:15Z", "datetime", True), ("2025-02-30", "date", False),
    ("2025-3-9", "date", False), ("yesterday", "date", False), (20250309, "date", False),
    ("2025-03-09T24:00:00Z", "date", False), ("2025-03-09T08:15:00+25:00", "date", False),
    ("2025-03-09 08:15:00", "date", False),
    ([], "array", True), ([1], "list", True), ({}, "array", False),
    ({}, "object", True), ([], "object", False),
    (None, "any", True), ([1], "any", True),
    (None, "null", True), (0, "null", False), ("", "null", False),
]


@pytest.mark.parametrize("value, name, expected", IS_CASES)
def test_is_type(value: Value, name: str, expected: bool) -> None:
    assert is_type(value, name) is expected


def test_type_name_sets() -> None:
    assert IS_TYPE_NAMES - SCHEMA_TYPE_NAMES == {"list"}
    assert {"string", "int", "integer", "number", "decimal", "float", "double", "boolean",
            "bool", "date", "datetime", "array", "object", "any", "null"} == SCHEMA_TYPE_NAMES


def test_is_type_unknown_name() -> None:
    with runtime_error("unknown type name 'Book'"):
        is_type({}, "Book")


@pytest.mark.parametrize(
    "value, expected",
    [(None, "null"), (False, "boolean"), (0, "number"), (1.5, "number"), ("", "string"),
     ([], "list"), ({}, "object")],
)
def test_type_of(value: Value, expected: str) -> None:
    assert type_of(value) == expected


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("2025-03-09", "2025-03-09T00:00:00.000Z"),
        ("2025-03-09T08:15:00Z", "2025-03-09T08:15:00.000Z"),
        ("2025-03-09T08:15:00.5Z", "2025-03-09T08:15:00.500Z"),
        ("2025-03-09T08:15:00.123999Z", "2025-03-09T08:15:00.123Z"),
        ("2025-03-09T08:15:00+01:30", "2025-03-09T06:45:00.000Z"),
        ("2025-03-09T00:15:00-02:00", "2025-03-09T02:15:00.000Z"),
        ("2025-03-09T08:15:00.000+0000", "2025-03-09T08:15:00.000Z"),
        ("2025-03-09T23:59:59", "2025-03-09T23:59:59.000Z"),
        ("2024-02-29T12:00", "2024-02-29T12:00:00.000Z"),
        ("1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z"),
        ("0001-01-01", "0001-01-01T00:00:00.000Z"),
    ],
)
def test_timestamps_parse_to_canonical_form(text: str, canonical: str) -> None:
    ms = parse_timestamp(text)
    assert ms is not None
    assert format_timestamp(ms) == canonical


def test_timestamp_epoch_values() -> None:
    assert parse_timestamp("1970-01-01T00:00:00Z") == 0
    assert parse_timestamp("1970-01-01T00:00:01.5+00:00") == 1500
    assert parse_timestamp("1969-12-31T23:59:59.999Z") == -1
    with runtime_error("out of range"):
        format_timestamp(300_000 * 365 * 86_400_000)


# --------------------------------------------------------------------------- §5.8


@pytest.mark.parametrize(
    "value, name, expected",
    [
        ({"a": 1}, "a", 1), ({"a": 1}, "b", None), ({"a": None}, "a", None), (None, "a", None),
        ([1], "a", None), ("str", "length", None), (5, "a", None),
        ({"store": {"key": 2}}, "store", {"key": 2}),
    ],
)
def test_member(value: Value, name: str, expected: Value) -> None:
    assert member(value, name) == expected


@pytest.mark.parametrize(
    "value, i, expected",
    [
        ([10, 20, 30], 0, 10), ([10, 20, 30], 2, 30), ([10, 20, 30], 3, None),
        ([10, 20, 30], -1, 30), ([10, 20, 30], -3, 10), ([10, 20, 30], -4, None),
        ([10, 20, 30], 1.0, 20), ([], 0, None),
        ({"a": 1, "list price": 2}, "list price", 2), ({"a": 1}, "b", None),
        ("héllo", 1, "é"), ("abc", -1, "c"), ("abc", 3, None), ("", 0, None),
        (None, 0, None), (None, "x", None), (None, [1], None),
    ],
)
def test_index(value: Value, i: Value, expected: Value) -> None:
    assert index(value, i) == expected


@pytest.mark.parametrize(
    "value, i, message",
    [
        ([1, 2], "a", "cannot index a list with a string"),
        ([1, 2], 1.5, "cannot index a list with the fractional number 1.5"),
        ([1, 2], True, "cannot index a list with a boolean"),
        ([1, 2], None, "cannot index a list with null"),
        ({"a": 1}, 0, "cannot index an object with a number"),
        ("abc", "a", "cannot index a string with a string"),
        ("abc", 0.5, "cannot index a string with the fractional number 0.5"),
        (5, 0, "cannot index a number with a number"),
        (True, "x", "cannot index a boolean with a string"),
    ],
)
def test_index_errors(value: Value, i: Value, message: str) -> None:
    with runtime_error(f"^{message}$"):
        index(value, i)


# --------------------------------------------------------------------------- §5.9


def test_spreads() -> None:
    assert spread_object(None) == {} and spread_object({"a": 1}) == {"a": 1}
    assert spread_list(None) == [] and spread_list([1, 2]) == [1, 2]


@pytest.mark.parametrize("value", [1, "ab", True, []])
def test_spread_object_errors(value: Value) -> None:
    with runtime_error("^cannot spread .* into an object$"):
        spread_object(value)


@pytest.mark.parametrize("value", [1, "ab", False, {}])
def test_spread_list_errors(value: Value) -> None:
    with runtime_error("^cannot spread .* into a list$"):
        spread_list(value)


# --------------------------------------------------------------------------- §3.3

SCHEMAS: dict[str, Schema] = {
    "Book": Schema("Book", (
        Field("isbn", TypeRef("string")),
        Field("pages", TypeRef("int")),
        Field("price", TypeRef("decimal"), optional=True),
        Field("tags", TypeRef("array", TypeRef("string")), optional=True),
        Field("extra", TypeRef("any")),
        Field("removed", TypeRef("null"), optional=True),
    )),
    "Node": Schema("Node", (
        Field("name", TypeRef("string")),
        Field("children", TypeRef("array", TypeRef("Node")), optional=True),
    )),
    "Order": Schema("Order", (
        Field("customer", InlineObject((
            Field("id", TypeRef("integer")),
            Field("email", TypeRef("string"), optional=True),
        ))),
        Field("placed", TypeRef("datetime")),
        Field("lines", TypeRef("array")),
        Field("meta", TypeRef("object"), optional=True),
        Field("flag", TypeRef("bool"), optional=True),
    )),
}

BOOK: dict[str, Value] = {"isbn": "978", "pages": 300, "extra": None}


@pytest.mark.parametrize(
    "value, expected",
    [
        (BOOK, True),
        ({**BOOK, "pages": 300.0, "unmentioned": [1]}, True),  # rule 4: extra fields ignored
        ({**BOOK, "price": 12.5, "tags": ["a", "b"]}, True),
        ({**BOOK, "price": None, "tags": None, "removed": None}, True),  # rule 3
        ({**BOOK, "extra": {"anything": 1}}, True),
        ({"isbn": "978", "pages": 300}, False),  # required `any` field must be present
        ({**BOOK, "pages": 300.5}, False),
        ({**BOOK, "pages": True}, False),
        ({**BOOK, "isbn": None}, False),  # rule 2: required and null
        ({**BOOK, "price": "12.5"}, False),
        ({**BOOK, "tags": ["a", 1]}, False),
        ({**BOOK, "tags": "a"}, False),
        ({**BOOK, "removed": 1}, False),
        ([BOOK], False),  # rule 1
        (None, False),
    ],
)
def test_schema_matching(value: Value, expected: bool) -> None:
    assert matches_type(value, TypeRef("Book"), SCHEMAS) is expected


def test_recursive_schema() -> None:
    tree: Value = {"name": "root", "children": [{"name": "a"}, {"name": "b", "children": []}]}
    assert matches_type(tree, TypeRef("Node"), SCHEMAS)
    broken: Value = {"name": "root", "children": [{"name": "a", "children": [{"name": 1}]}]}
    assert not matches_type(broken, TypeRef("Node"), SCHEMAS)


@pytest.mark.parametrize(
    "value, expected",
    [
        ({"customer": {"id": 1}, "placed": "2025-03-09", "lines": []}, True),
        ({"customer": {"id": 1, "email": None}, "placed": "2025-03-09T08:15:00Z",
          "lines": [1, "x"], "meta": {}, "flag": False}, True),
        ({"customer": {"id": "1"}, "placed": "2025-03-09", "lines": []}, False),
        ({"customer": {}, "placed": "2025-03-09", "lines": []}, False),
        ({"customer": {"id": 1}, "placed": "March 9", "lines": []}, False),
        ({"customer": {"id": 1}, "placed": "2025-03-09", "lines": {}}, False),
        ({"customer": {"id": 1}, "placed": "2025-03-09", "lines": [], "meta": []}, False),
        ({"customer": {"id": 1}, "placed": "2025-03-09", "lines": [], "flag": 0}, False),
    ],
)
def test_inline_objects_and_builtin_field_types(value: Value, expected: bool) -> None:
    assert matches_type(value, TypeRef("Order"), SCHEMAS) is expected


@pytest.mark.parametrize(
    "value, type_expr, expected",
    [
        ([[1, 2], []], TypeRef("array", TypeRef("array", TypeRef("int"))), True),
        ([[1, 2.5]], TypeRef("array", TypeRef("array", TypeRef("int"))), False),
        ([{"a": 1}], TypeRef("array", InlineObject((Field("a", TypeRef("number")),))), True),
        ([None], TypeRef("array", TypeRef("string")), False),
        ([None], TypeRef("array", TypeRef("any")), True),
        (None, TypeRef("any"), True), ("x", TypeRef("string"), True),
        (None, TypeRef("string"), False),
        ({"a": 1}, InlineObject(()), True),
    ],
)
def test_matches_type_direct(
    value: Value, type_expr: TypeRef | InlineObject, expected: bool
) -> None:
    assert matches_type(value, type_expr, SCHEMAS) is expected


def test_matches_type_unknown_schema() -> None:
    with runtime_error("unknown type name 'Missing'"):
        matches_type({}, TypeRef("Missing"), SCHEMAS)
