"""The built-in functions of §5.11, called as the evaluator calls them."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reqon.builtins import BUILTINS, check_jmes, check_regex
from reqon.errors import RunError
from reqon.values import Value, member, parse_timestamp, truthy


def call(name: str, *args: Any) -> Value:
    """Call a built-in as the evaluator does, checking the declared arity first."""
    builtin = BUILTINS[name]
    assert builtin.min_args <= len(args)
    assert builtin.max_args is None or len(args) <= builtin.max_args
    return builtin.fn(*args)


def field(name: str) -> Callable[[Value], Value]:
    """The per-element callable for `.name`, as the evaluator would build it."""
    return lambda element: member(element, name)


def exactly(result: Value, expected: Value) -> bool:
    """Equality that also tells `1` from `1.0` and `True` from `1`, recursively."""
    if isinstance(expected, list):
        return isinstance(result, list) and len(result) == len(expected) and all(
            exactly(r, e) for r, e in zip(result, expected)
        )
    if isinstance(expected, dict):
        return isinstance(result, dict) and list(result) == list(expected) and all(
            exactly(result[k], expected[k]) for k in expected
        )
    return type(result) is type(expected) and result == expected


# --------------------------------------------------------------------------- registry

SPEC_FUNCTIONS = {
    "length": (1, 1), "count": (1, 2), "sum": (1, 1), "first": (1, 1), "last": (1, 1),
    "round": (1, 2), "floor": (1, 1), "ceil": (1, 1), "now": (0, 0), "env": (1, 2),
    "concat": (1, None), "lowercase": (1, 1), "uppercase": (1, 1), "trim": (1, 1),
    "split": (2, 2), "join": (2, 2), "replace": (3, 3), "substring": (2, 3),
    "startsWith": (2, 2), "endsWith": (2, 2), "matches": (2, 2), "toString": (1, 1),
    "toNumber": (1, 1), "min": (1, None), "max": (1, None), "avg": (1, 1), "unique": (1, 1),
    "flatten": (1, 1), "sort": (1, 1), "sortBy": (2, 2), "reverse": (1, 1), "filter": (2, 2),
    "find": (2, 2), "some": (2, 2), "every": (2, 2), "mapEach": (2, 2), "keys": (1, 1),
    "values": (1, 1), "merge": (1, None), "pick": (2, 2), "omit": (2, 2), "has": (2, 2),
    "abs": (1, 1), "parseDate": (1, 1), "dateAdd": (2, 2), "dateDiff": (2, 2),
    "toUnix": (1, 1), "fromUnix": (1, 1), "uuid": (0, 0), "typeOf": (1, 1),
    "webhookUrl": (1, 1), "jmes": (2, 2),
}


def test_registry_has_exactly_the_spec_functions_and_arities() -> None:
    assert {n: (b.min_args, b.max_args) for n, b in BUILTINS.items()} == SPEC_FUNCTIONS
    assert all(name == b.name and b.signature.startswith(name) for name, b in BUILTINS.items())


def test_elementwise_flags() -> None:
    flagged = {name for name, b in BUILTINS.items() if b.elementwise}
    assert flagged == {"count", "sortBy", "filter", "find", "some", "every", "mapEach"}


def test_webhook_url_is_left_to_the_evaluator() -> None:
    assert [n for n, b in BUILTINS.items() if b.evaluator_provided] == ["webhookUrl"]
    with pytest.raises(RunError, match="^webhookUrl: the webhook server is not enabled$"):
        call("webhookUrl", "/hook")


# --------------------------------------------------------------------------- results

CASES: list[tuple[str, tuple[Any, ...], Value]] = [
    # TS functions
    ("length", ([1, 2, 3],), 3), ("length", ("héllo",), 5), ("length", ({"a": 1, "b": 2},), 2),
    ("length", (None,), 0), ("length", ("",), 0),
    ("count", ([1, None, 3],), 3), ("count", (None,), 0), ("count", ([],), 0),
    ("sum", ([1, 2, 3],), 6), ("sum", ([1, 2.5],), 3.5), ("sum", ([1, None, "2.5"],), 3.5),
    ("sum", ([],), 0), ("sum", (None,), 0), ("sum", ([0.1, 0.2, 0.3],), 0.6000000000000001),
    ("sum", ([10**20, 1],), 100000000000000000001),
    ("first", ([1, 2],), 1), ("first", ([],), None), ("first", (None,), None),
    ("last", ([1, 2],), 2), ("last", ([],), None), ("last", (None,), None),
    ("round", (2.5,), 3), ("round", (-2.5,), -3), ("round", (2.4,), 2), ("round", (-2.6,), -3),
    ("round", (0.5,), 1), ("round", (-0.5,), -1), ("round", (7,), 7), ("round", ("2.5",), 3),
    ("round", (2.675, 2), 2.68), ("round", (1.005, 2), 1.01), ("round", (-1.005, 2), -1.01),
    ("round", (3.14159, 3), 3.142), ("round", (5, 2), 5.0), ("round", (2.5, 0), 3),
    ("round", (1250, -2), 1300), ("round", (-1250, -2), -1300), ("round", (1249.9, -2.0), 1200),
    ("round", (1e300,), 1e300), ("round", (123.456, 1.0), 123.5),
    ("floor", (2.7,), 2), ("floor", (-2.1,), -3), ("floor", (4,), 4), ("floor", ("3.5",), 3),
    ("floor", (1e20,), 1e20),
    ("ceil", (2.1,), 3), ("ceil", (-2.7,), -2), ("ceil", (4,), 4), ("ceil", (-0.5,), 0),
    # text
    ("concat", ([1], [2, 3], []), [1, 2, 3]), ("concat", ("a", 1, None, True), "a1true"),
    ("concat", ([1], "x"), "[1]x"), ("concat", ("solo",), "solo"), ("concat", (2.0, 0.5), "20.5"),
    ("lowercase", ("ÀbC",), "àbc"), ("lowercase", (None,), None),
    ("uppercase", ("straße",), "STRASSE"), ("uppercase", (None,), None),
    ("trim", ("  a b \n\t",), "a b"), ("trim", (None,), None),
    ("split", ("a,b,,c", ","), ["a", "b", "", "c"]), ("split", ("abc", ""), ["a", "b", "c"]),
    ("split", ("", ","), [""]), ("split", ("a--b", "--"), ["a", "b"]), ("split", (None, ","), None),
    ("join", ([1, None, "x", 2.5, True], "-"), "1--x-2.5-true"), ("join", ([], ","), ""),
    ("join", (None, ","), ""), ("join", ([[1, 2], {"a": 1}], "|"), '[1,2]|{"a":1}'),
    ("replace", ("a.b.c", ".", "/"), "a/b/c"), ("replace", ("aaa", "aa", "b"), "ba"),
    ("replace", ("a+b", "+", "\\1"), "a\\1b"), ("replace", (None, "a", "b"), None),
    ("substring", ("hello", 1), "ello"), ("substring", ("hello", 1, 3), "el"),
    ("substring", ("hello", -3), "llo"), ("substring", ("hello", 0, -1), "hell"),
    ("substring", ("hello", 10), ""), ("substring", ("hello", -10, 2), "he"),
    ("substring", ("hello", 3, 1), ""), ("substring", ("hello", 1, None), "ello"),
    ("substring", ("hello", 1.0, 2.0), "e"), ("substring", (None, 1), None),
    ("startsWith", ("hello", "he"), True), ("startsWith", ("hello", "lo"), False),
    ("startsWith", (None, "x"), False), ("startsWith", ("x", ""), True),
    ("endsWith", ("hello", "lo"), True), ("endsWith", ("hello", "he"), False),
    ("endsWith", (None, "x"), False),
    ("matches", ("order-123", r"\d+"), True), ("matches", ("order-123", r"^\d+$"), False),
    ("matches", ("ABC", "^(abc|ABC)$"), True), ("matches", ("a b", r"\s"), True),
    ("matches", (None, "x"), False), ("matches", ("x@y.io", r"^[\w.]+@\w+\.[a-z]{2,}$"), True),
    ("toString", (0.1 + 0.2,), "0.30000000000000004"), ("toString", (None,), ""),
    ("toString", ([1.0, "a"],), '[1,"a"]'), ("toString", (1e21,), "1e+21"),
    ("toNumber", ("42",), 42), ("toNumber", (" 2.5 ",), 2.5), ("toNumber", (True,), 1),
    ("toNumber", (None,), None),
    # lists
    ("min", ([3, 1, None, 2],), 1), ("min", (3, 9, 2), 2), ("min", ([],), None),
    ("min", ([None],), None), ("min", (None,), None), ("min", (5,), 5), ("min", ("b", "a"), "a"),
    ("min", ([1.0, 1],), 1.0), ("min", (2, None, 1.5), 1.5),
    ("max", ([3, 1, None, 2],), 3), ("max", (3, 9, 2), 9), ("max", (["b", "ab", "B"],), "b"),
    ("max", ([],), None),
    ("avg", ([1, 2, 3, 4],), 2.5), ("avg", ([2, 2],), 2.0), ("avg", ([1, None, "3"],), 2.0),
    ("avg", ([],), None), ("avg", ([None],), None), ("avg", (None,), None),
    ("unique", ([1, 1.0, True, "1", 1, None, None],), [1, True, "1", None]),
    ("unique", ([[1], [1.0], {"a": 1}, {"a": 1.0}, {"b": 1}],), [[1], {"a": 1}, {"b": 1}]),
    ("unique", ([{"a": 1, "b": 2}, {"b": 2, "a": 1}],), [{"a": 1, "b": 2}]),
    ("unique", ([False, 0],), [False, 0]), ("unique", (None,), []),
    ("flatten", ([[1, 2], 3, [], [[4]], None],), [1, 2, 3, [4], None]), ("flatten", (None,), []),
    ("sort", ([3, 1.5, None, 2, None, -1],), [-1, 1.5, 2, 3, None, None]),
    ("sort", (["b", "a", "B", "é"],), ["B", "a", "b", "é"]), ("sort", ([],), []),
    ("sort", ([None, None],), [None, None]), ("sort", ([1, 1.0],), [1, 1.0]),
    ("sort", ([1.0, 1],), [1.0, 1]), ("sort", (None,), []),
    ("reverse", ([1, 2, 3],), [3, 2, 1]), ("reverse", (None,), []),
    # objects
    ("keys", ({"b": 1, "a": 2},), ["b", "a"]), ("keys", (None,), []), ("keys", ({},), []),
    ("values", ({"b": 1, "a": None},), [1, None]), ("values", (None,), []),
    ("merge", ({"a": 1, "b": 1}, None, {"b": 2, "c": 3}), {"a": 1, "b": 2, "c": 3}),
    ("merge", (None,), {}), ("merge", ({"a": 1},), {"a": 1}),
    ("pick", ({"a": 1, "b": 2, "c": 3}, ["c", "a", "x"]), {"a": 1, "c": 3}),
    ("pick", (None, ["a"]), None), ("pick", ({"a": 1}, []), {}),
    ("omit", ({"a": 1, "b": 2, "c": 3}, ["b", "x"]), {"a": 1, "c": 3}),
    ("omit", (None, ["a"]), None), ("omit", ({"a": 1}, None), {"a": 1}),
    ("has", ({"a": None}, "a"), True), ("has", ({"a": 1}, "b"), False), ("has", (None, "a"), False),
    # numbers, time, rest
    ("abs", (-3,), 3), ("abs", (2.5,), 2.5), ("abs", (-0.5,), 0.5), ("abs", ("-4",), 4),
    ("parseDate", ("2025-03-09",), "2025-03-09T00:00:00.000Z"),
    ("parseDate", ("2025-03-09T08:15:00+01:00",), "2025-03-09T07:15:00.000Z"),
    ("parseDate", ("2025-03-09T08:15:00.5",), "2025-03-09T08:15:00.500Z"),
    ("parseDate", ("09/03/2025",), None), ("parseDate", ("2025-13-01",), None),
    ("parseDate", (None,), None), ("parseDate", (1741504500,), None),
    ("dateAdd", ("2025-03-09T00:00:00Z", 86_400_000), "2025-03-10T00:00:00.000Z"),
    ("dateAdd", ("2025-03-01", -86_400_000), "2025-02-28T00:00:00.000Z"),
    ("dateAdd", ("2024-03-01", -86_400_000), "2024-02-29T00:00:00.000Z"),
    ("dateAdd", ("2025-03-09T00:00:00Z", 1.9), "2025-03-09T00:00:00.001Z"),
    ("dateAdd", ("2025-03-09T00:00:00.999Z", 1), "2025-03-09T00:00:01.000Z"),
    ("dateDiff", ("2025-03-10", "2025-03-09"), 86_400_000),
    ("dateDiff", ("2025-03-09T00:00:00Z", "2025-03-09T00:00:01.250Z"), -1250),
    ("dateDiff", ("2025-03-09T01:00:00+01:00", "2025-03-09T00:00:00Z"), 0),
    ("toUnix", ("1970-01-01T00:00:10.999Z",), 10),
    ("toUnix", ("2025-03-09T00:00:00Z",), 1741478400),
    ("toUnix", ("1969-12-31T23:59:59.500Z",), -1),
    ("fromUnix", (1741478400,), "2025-03-09T00:00:00.000Z"),
    ("fromUnix", (1.001,), "1970-01-01T00:00:01.001Z"),
    ("fromUnix", (-1,), "1969-12-31T23:59:59.000Z"),
    ("fromUnix", (0.0005,), "1970-01-01T00:00:00.000Z"),
    ("typeOf", (None,), "null"), ("typeOf", (True,), "boolean"), ("typeOf", (1.5,), "number"),
    ("typeOf", ("",), "string"), ("typeOf", ([],), "list"), ("typeOf", ({},), "object"),
    # jmes
    ("jmes", ({"data": {"items": [{"price": 5, "id": 1}, {"price": 20, "id": 2}]}},
              "data.items[?price > `10`].id"), [2]),
    ("jmes", ({"a": {"b": 1}}, "a.c"), None), ("jmes", ([1, 2, 3], "length(@)"), 3),
    ("jmes", ({"people": [{"n": "b"}, {"n": "a"}]}, "sort_by(people, &n)[].n"), ["a", "b"]),
    ("jmes", (None, "a"), None), ("jmes", ({"a": [1, 2]}, "a[-1]"), 2),
]


@pytest.mark.parametrize("name, args, expected", CASES, ids=lambda v: repr(v)[:30])
def test_builtin(name: str, args: tuple[Any, ...], expected: Value) -> None:
    assert exactly(call(name, *args), expected)


def test_results_never_alias_mutable_inputs() -> None:
    xs = [3, 1, 2]
    call("sort", xs)
    call("reverse", xs)
    assert xs == [3, 1, 2]
    obj = {"a": 1}
    merged = call("merge", obj, {"b": 2})
    assert obj == {"a": 1} and merged is not obj


# --------------------------------------------------------------------------- element-wise

BOOKS: list[Value] = [
    {"title": "B", "pages": 320, "price": 10},
    {"title": "A", "pages": 120, "price": None},
    {"title": "C", "pages": 500, "price": 7.5},
    {"title": "D", "pages": 320},
]


def long_book(book: Value) -> Value:
    pages = member(book, "pages")
    return isinstance(pages, int) and pages > 300


@pytest.mark.parametrize(
    "name, each, expected",
    [
        ("count", long_book, 3),
        ("filter", long_book, [BOOKS[0], BOOKS[2], BOOKS[3]]),
        ("find", long_book, BOOKS[0]),
        ("find", lambda b: member(b, "pages") == 1, None),
        ("some", long_book, True), ("some", lambda b: False, False),
        ("every", long_book, False), ("every", lambda b: member(b, "title"), True),
        ("mapEach", field("title"), ["B", "A", "C", "D"]),
        ("mapEach", field("price"), [10, None, 7.5, None]),
        ("sortBy", field("pages"), [BOOKS[1], BOOKS[0], BOOKS[3], BOOKS[2]]),  # stable
        ("sortBy", field("price"), [BOOKS[2], BOOKS[0], BOOKS[1], BOOKS[3]]),  # nulls last
        ("sortBy", field("title"), [BOOKS[1], BOOKS[0], BOOKS[2], BOOKS[3]]),
    ],
)
def test_elementwise(name: str, each: Callable[[Value], Value], expected: Value) -> None:
    assert call(name, BOOKS, each) == expected


@pytest.mark.parametrize(
    "name, expected",
    [("count", 0), ("filter", []), ("find", None), ("some", False), ("every", True),
     ("mapEach", []), ("sortBy", [])],
)
def test_elementwise_on_empty_and_null(name: str, expected: Value) -> None:
    def never(_: Value) -> Value:
        raise AssertionError("must not be called")

    assert call(name, [], never) == expected
    assert call(name, None, never) == expected


def test_elementwise_uses_truthiness() -> None:
    items: list[Value] = [0, 1, "", "x", [], [0], {}, {"a": 1}, None]
    assert call("filter", items, lambda v: v) == [1, "x", [0], {"a": 1}]
    assert call("count", items, lambda v: v) == 4


def test_find_some_every_stop_early() -> None:
    seen: list[Value] = []

    def record(v: Value) -> Value:
        seen.append(v)
        return v

    call("find", [0, 1, 2], record)
    call("some", [0, 1, 2], record)
    call("every", [1, 0, 2], record)
    assert seen == [0, 1, 0, 1, 1, 0]


# --------------------------------------------------------------------------- errors

ERRORS: list[tuple[str, tuple[Any, ...], str]] = [
    ("length", (5,), "length: expected a list, string or object, got number"),
    ("length", (True,), "length: expected a list, string or object, got boolean"),
    ("count", ("abc",), "count: expected a list, got string"),
    ("count", ({"a": 1}, lambda v: v), "count: expected a list, got object"),
    ("sum", ([1, "x"],), "sum: expected a number, got the string 'x'"),
    ("sum", ([1, True],), "sum: expected a number, got boolean"),
    ("sum", ([[1]],), "sum: expected a number, got list"),
    ("sum", ({"a": 1},), "sum: expected a list, got object"),
    ("sum", ([1e308, 1e308],), "too large"), ("avg", ([1e308, 1e308],), "too large"),
    ("first", ("abc",), "first: expected a list, got string"),
    ("last", (3,), "last: expected a list, got number"),
    ("round", (None,), "round: expected a number, got null"),
    ("round", ("abc",), "round: expected a number, got the string 'abc'"),
    ("round", (2.5, 1.5), "round: digits must be an integer, got 1.5"),
    ("round", (2.5, "2"), "round: digits must be an integer, got string"),
    ("round", (2.5, 1000), "round: digits must be between -340 and 340"),
    ("floor", ([1],), "floor: expected a number, got list"),
    ("ceil", (True,), "ceil: expected a number, got boolean"),
    ("env", (1,), "env: expected a variable name, got number"),
    ("lowercase", (1,), "lowercase: expected a string, got number"),
    ("uppercase", (["a"],), "uppercase: expected a string, got list"),
    ("trim", ({},), "trim: expected a string, got object"),
    ("split", ("a,b", None), "split: expected a string separator, got null"),
    ("split", (12, ","), "split: expected a string, got number"),
    ("join", (["a"], 1), "join: expected a string separator, got number"),
    ("join", ("ab", ","), "join: expected a list, got string"),
    ("replace", ("ab", 1, "x"), "replace: expected a string, got number"),
    ("substring", ("abc", "1"), "substring: start must be an integer, got string"),
    ("substring", ("abc", 0, 1.5), "substring: end must be an integer, got 1.5"),
    ("startsWith", ("abc", None), "startsWith: expected a string, got null"),
    ("endsWith", (5, "5"), "endsWith: expected a string, got number"),
    ("matches", ("abc", "(a"), "matches: invalid regular expression: missing \\)"),
    ("matches", ("abc", None), "matches: expected a pattern string, got null"),
    ("matches", (12, "1"), "matches: expected a string, got number"),
    ("toNumber", ("1a",), "toNumber: \"1a\" is not a number"),
    ("min", ([1, "a"],), "min: cannot order numbers and strings together"),
    ("max", (1, True), "max: expected numbers or strings, got boolean"),
    ("max", ([[1], [2]],), "max: expected numbers or strings, got list"),
    ("min", ({"a": 1}, 2), "min: expected numbers or strings, got object"),
    ("avg", ([1, "x"],), "avg: expected a number, got the string 'x'"),
    ("unique", ("abc",), "unique: expected a list, got string"),
    ("flatten", ({},), "flatten: expected a list, got object"),
    ("sort", ([1, "a"],), "sort: cannot order numbers and strings together"),
    ("sort", ([True, False],), "sort: expected numbers or strings, got boolean"),
    ("sort", ([{"a": 1}],), "sort: expected numbers or strings, got object"),
    ("sortBy", ([{"k": 1}, {"k": "a"}], lambda v: member(v, "k")),
     "sortBy: cannot order numbers and strings together"),
    ("reverse", ("abc",), "reverse: expected a list, got string"),
    ("filter", (5, lambda v: v), "filter: expected a list, got number"),
    ("keys", ([1],), "keys: expected an object, got list"),
    ("values", ("a",), "values: expected an object, got string"),
    ("merge", ({"a": 1}, [1]), "merge: expected an object, got list"),
    ("pick", ({"a": 1}, "a"), "pick: expected a list, got string"),
    ("pick", ({"a": 1}, [1]), "pick: expected field names, got number"),
    ("omit", ([1], ["a"]), "omit: expected an object, got list"),
    ("has", ({"a": 1}, 1), "has: expected a field name, got number"),
    ("has", ([1], "a"), "has: expected an object, got list"),
    ("abs", (None,), "abs: expected a number, got null"),
    ("dateAdd", ("soon", 1), "dateAdd: 'soon' is not an ISO-8601 timestamp"),
    ("dateAdd", (None, 1), "dateAdd: expected a timestamp string, got null"),
    ("dateAdd", ("2025-03-09", "1000"), "dateAdd: ms must be a number, got string"),
    ("dateAdd", ("9999-12-31", 86_400_000), "out of range"),
    ("dateDiff", ("2025-03-09", "2025-02-30"), "dateDiff: '2025-02-30' is not an ISO-8601"),
    ("toUnix", (0,), "toUnix: expected a timestamp string, got number"),
    ("fromUnix", ("0",), "fromUnix: seconds must be a number, got string"),
    ("fromUnix", (None,), "fromUnix: seconds must be a number, got null"),
    ("fromUnix", (1e15,), "fromUnix: timestamp out of range"),
    ("jmes", ({}, "a["), "jmes: invalid JMESPath query: incomplete query at position 2"),
    ("jmes", ({}, 5), "jmes: expected a query string, got number"),
    ("jmes", ({"a": "x"}, "abs(a)"), "jmes: In function abs\\(\\), invalid type"),
    ("jmes", ({}, "nope(@)"), "jmes: invalid JMESPath query: unknown function nope\\(\\)"),
]


@pytest.mark.parametrize("name, args, message", ERRORS, ids=lambda v: repr(v)[:30])
def test_builtin_errors(name: str, args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(RunError, match=message) as info:
        call(name, *args)
    assert info.value.kind == "runtime"
    assert info.value.message.startswith(f"{name}: ")


# --------------------------------------------------------------------------- env, clock, uuid


def test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQON_TEST_TOKEN", "s3cret")
    monkeypatch.delenv("REQON_TEST_MISSING", raising=False)
    assert call("env", "REQON_TEST_TOKEN") == "s3cret"
    assert call("env", "REQON_TEST_TOKEN", "fallback") == "s3cret"
    assert call("env", "REQON_TEST_MISSING") == ""
    assert call("env", "REQON_TEST_MISSING", "fallback") == "fallback"
    assert call("env", "REQON_TEST_MISSING", None) is None
    monkeypatch.setenv("REQON_TEST_EMPTY", "")
    assert call("env", "REQON_TEST_EMPTY", "fallback") == ""


def test_now_is_canonical_utc_and_current() -> None:
    before = time.time()
    stamp = call("now")
    after = time.time()
    assert isinstance(stamp, str)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
    ms = parse_timestamp(stamp)
    assert ms is not None and before * 1000 - 1 <= ms <= after * 1000 + 1


def test_uuid_is_random_version_4() -> None:
    first, second = call("uuid"), call("uuid")
    assert isinstance(first, str) and first != second
    uuid4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    assert re.fullmatch(uuid4, first)


# --------------------------------------------------------------------------- checker helpers


@pytest.mark.parametrize(
    "pattern, problem",
    [
        (r"^\d{3}-[A-Z]+$", None), ("(a|b)*c?", None), ("", None),
        ("(a", "missing \\)"), ("[a-", "unterminated character set"),
        ("a{2,1}", "min repeat greater than max repeat"),
        ("*a", "nothing to repeat"),
    ],
)
def test_check_regex(pattern: str, problem: str | None) -> None:
    message = check_regex(pattern)
    if problem is None:
        assert message is None
    else:
        assert message is not None and message.startswith("invalid regular expression: ")
        assert re.search(problem, message)


@pytest.mark.parametrize(
    "query, problem",
    [
        ("data.items[?price > `10`].id", None), ("a.b[0]", None), ("merge(a, b, c)", None),
        ("sort_by(@, &n)", None), ("not_null(a, b)", None),
        ("", "the query is empty"), ("a[", "incomplete query at position 2"),
        ("`foo", "Unclosed ` delimiter at position 0"),
        ("foo[?a >]", "invalid token at position 8"),
        ("nope(a)", "unknown function nope\\(\\)"), ("a.b | upper(@)", "unknown function upper"),
        ("length(a, b)", "wrong number of arguments for length\\(\\): 2"),
        ("merge()", "wrong number of arguments for merge\\(\\): 0"),
        ("x[?contains(a)]", "wrong number of arguments for contains"),
    ],
)
def test_check_jmes(query: str, problem: str | None) -> None:
    message = check_jmes(query)
    if problem is None:
        assert message is None
    else:
        assert message is not None and message.startswith("invalid JMESPath query: ")
        assert re.search(problem, message)


# --------------------------------------------------------------------------- properties

numbers = st.one_of(st.integers(-10**6, 10**6), st.floats(-1e6, 1e6, allow_nan=False))


@given(st.lists(st.one_of(numbers, st.none())))
def test_sort_orders_numbers_and_puts_nulls_last(xs: list[Value]) -> None:
    result = call("sort", xs)
    assert isinstance(result, list) and len(result) == len(xs)
    present = [v for v in result if v is not None]
    assert result[len(present):] == [None] * (len(result) - len(present))
    assert all(a <= b for a, b in zip(present, present[1:]))  # type: ignore[operator]


@given(st.lists(numbers))
def test_min_max_agree_with_sort(xs: list[Value]) -> None:
    ordered = call("sort", xs)
    assert isinstance(ordered, list)
    assert call("min", xs) == (ordered[0] if ordered else None)
    assert call("max", xs) == (ordered[-1] if ordered else None)


@given(st.lists(st.one_of(st.integers(-3, 3), st.booleans(), st.sampled_from([1.0, "1", None]))))
def test_unique_is_idempotent_and_keeps_first_occurrences(xs: list[Value]) -> None:
    once = call("unique", xs)
    assert call("unique", once) == once
    assert isinstance(once, list) and all(any(v is w for w in xs) for v in once)
    assert truthy(once) == truthy(xs)
