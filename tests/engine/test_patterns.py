"""Match patterns (LANGUAGE.md §4.9.1, §4.9, §5.10): every row of the table and every rule.

Each row is tried four ways: as the step form and as the expression form, through
one real `reqon run` of a generated mission (what reached the store is asserted),
and directly through the compiled matcher. Subject-less matches, scoping of
bindings and the property that a pattern never raises on any JSON value follow.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reqon import ast
from reqon import values as V
from reqon.engine.patterns import PatternCompiler
from reqon.parser import parse
from tests.conftest import run_mission_text

pytestmark = pytest.mark.timeout(120)

ORDER = V.Schema("Order", (V.Field("id", V.TypeRef("string"), False), V.Field("total", V.TypeRef("number"), False)))
ORDER_DECL = "schema Order { id: string, total: number }"
GOOD_ORDER = {"id": "o1", "total": 3}
BAD_ORDER = {"id": 1, "total": 3}
ABSENT = object()  # a key left out of the subject object

# (pattern, subject, accepted, binding name, value it must be bound to)
ROWS: list[tuple[str, Any, bool, str | None, Any]] = [
    # `_`: any value, null included
    ("_", 1, True, None, None),
    ("_", None, True, None, None),
    ("_", {"a": [1]}, True, None, None),
    # literals: strict equality (§5.3); null also an absent value
    ('"open"', "open", True, None, None),
    ('"open"', "closed", False, None, None),
    ('"1"', 1, False, None, None),
    ("401", 401, True, None, None),
    ("401", 401.0, True, None, None),
    ("401", "401", False, None, None),
    ("-5", -5, True, None, None),
    ("-5", 5, False, None, None),
    ("2.5", 2.5, True, None, None),
    ("2s", 2000, True, None, None),
    ("true", True, True, None, None),
    ("true", 1, False, None, None),
    ("false", 0, False, None, None),
    ("null", None, True, None, None),
    ("null", 0, False, None, None),
    # a schema name
    ("Order", GOOD_ORDER, True, None, None),
    ("Order", BAD_ORDER, False, None, None),
    ("Order", [GOOD_ORDER], False, None, None),
    # any other name binds, null included
    ("e", {"x": 1}, True, "e", {"x": 1}),
    ("e", None, True, "e", None),
    ("_rest", [1, 2], True, "_rest", [1, 2]),
    # object patterns: every listed key present and non-null; others ignored
    ("{ error: e, code: 401 }", {"error": "boom", "code": 401, "extra": 1}, True, "e", "boom"),
    ("{ error: e, code: 401 }", {"error": "boom", "code": "401"}, False, None, None),
    ("{ error: e, code: 401 }", {"error": None, "code": 401}, False, None, None),
    ("{ error: e, code: 401 }", {"code": 401}, False, None, None),
    ("{ error: e, code: 401 }", [401], False, None, None),
    ("{ data: _, success: true }", {"data": 0, "success": True}, True, None, None),
    ("{ data: _ }", {"data": None}, False, None, None),
    ("{ gone: null }", {"other": 1}, True, None, None),
    ("{ gone: null }", {"gone": None}, True, None, None),
    ("{ gone: null }", {"gone": 0}, False, None, None),
    ('{ "odd key": 1 }', {"odd key": 1}, True, None, None),
    ("{ id: 1, ...rest }", {"id": 1, "a": 2, "b": 3}, True, "rest", {"a": 2, "b": 3}),
    ("{ id: 1, ..._ }", {"id": 1, "a": 2}, True, None, None),
    ("{ items: [first, ...more] }", {"items": [1, 2, 3]}, True, "more", [2, 3]),
    ("{ order: Order }", {"order": BAD_ORDER}, False, None, None),
    # list patterns: exactly n elements
    ("[]", [], True, None, None),
    ("[]", [1], False, None, None),
    ("[]", {}, False, None, None),
    ("[single]", [7], True, "single", 7),
    ("[single]", [7, 8], False, None, None),
    ("[a, 2]", [1, 2], True, "a", 1),
    ("[a, 2]", [1, 3], False, None, None),
    # list patterns with a rest: at least k elements
    ("[first, ...rest]", [1, 2, 3], True, "rest", [2, 3]),
    ("[first, ...rest]", [1], True, "rest", []),
    ("[first, ...rest]", [], False, None, None),
    ("[..._]", [], True, None, None),
    ("[1, ..._]", [1, 9], True, None, None),
    ("[1, ..._]", [2, 9], False, None, None),
    # [Schema]: every element matches, the empty list too
    ("[Order]", [GOOD_ORDER, GOOD_ORDER], True, None, None),
    ("[Order]", [], True, None, None),
    ("[Order]", [GOOD_ORDER, BAD_ORDER], False, None, None),
    ("[Order]", GOOD_ORDER, False, None, None),
]


def literal(value: Any) -> str:
    """A JSON value as a Reqon expression."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)}: {literal(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return json.dumps(value)


def row_id(row: tuple[str, Any, bool, str | None, Any]) -> str:
    return f"{row[0]} ~ {json.dumps(row[1])}"


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory, demo_server: Any) -> dict[str, Any]:
    """One run of a mission with every row as a match step and as a match expression."""
    steps = []
    for i, (pattern, subject, _, name, _) in enumerate(ROWS):
        bound = name if name is not None else "null"
        steps.append(f"    let v{i} = {literal(subject)}")
        steps.append(f'    match v{i} {{ {pattern} -> store {{ id: "s{i}", ok: true, b: {bound} }} -> out, '
                     f'_ -> store {{ id: "s{i}", ok: false }} -> out }}')
        steps.append(f'    store {{ id: "e{i}", ok: match v{i} {{ {pattern} => true, _ => false }}, '
                     f'b: match v{i} {{ {pattern} => {bound}, _ => "unbound" }} }} -> out')
    text = (f'mission Rows {{\n  store out: memory("out")\n  {ORDER_DECL}\n  action All {{\n'
            + "\n".join(steps) + "\n  }\n  run All\n}\n")
    result = run_mission_text(text, tmp_path_factory.mktemp("rows"), url=demo_server.url)
    assert result.code == 0, result.stderr
    return {r["id"]: r for r in result.stores["out"]}


@pytest.mark.parametrize("i", range(len(ROWS)), ids=[row_id(r) for r in ROWS])
def test_each_row_in_the_step_form(stored: dict[str, Any], i: int) -> None:
    _, _, accepted, name, value = ROWS[i]
    record = stored[f"s{i}"]
    assert record["ok"] is accepted
    if accepted and name is not None:
        assert V.equal(record["b"], value)


@pytest.mark.parametrize("i", range(len(ROWS)), ids=[row_id(r) for r in ROWS])
def test_each_row_in_the_expression_form(stored: dict[str, Any], i: int) -> None:
    _, _, accepted, name, value = ROWS[i]
    record = stored[f"e{i}"]
    assert record["ok"] is accepted
    if accepted and name is not None:
        assert V.equal(record["b"], value)
    if not accepted:
        assert record["b"] == "unbound"


def pattern_of(text: str) -> ast.Pattern:
    """The pattern node the AST builder makes of `text`."""
    program = parse(f"action A {{ match x {{ {text} -> skip }} }}")
    action = program.declarations[0]
    assert isinstance(action, ast.Action)
    step = action.steps[0]
    assert isinstance(step, ast.MatchStep) and step.arms[0].pattern is not None
    return step.arms[0].pattern


COMPILER = PatternCompiler({"Order": ORDER})


@pytest.mark.parametrize("i", range(len(ROWS)), ids=[row_id(r) for r in ROWS])
def test_each_row_through_the_compiled_matcher(i: int) -> None:
    pattern, subject, accepted, name, value = ROWS[i]
    bindings: dict[str, Any] = {}
    assert COMPILER.matcher(pattern_of(pattern))(subject, bindings) is accepted
    if accepted and name is not None:
        assert V.equal(bindings[name], value)


def test_each_row_has_its_own_pattern_node_type() -> None:
    kinds = {type(pattern_of(p)).__name__ for p in ("_", "1", "-1", "Order", "e", "{ a: 1 }", "[a]",
                                                    "[a, ...r]", "[Order]")}
    assert kinds == {"WildcardPattern", "LiteralPattern", "SchemaPattern", "BindingPattern", "ObjectPattern",
                     "ListPattern", "ListRestPattern", "ListOfPattern"}


def test_a_pattern_is_compiled_once() -> None:
    node = pattern_of("{ a: 1, b: [x, ...y] }")
    assert COMPILER.matcher(node) is COMPILER.matcher(node)


# --------------------------------------------------------------------------- rules


def run_ok(text: str, tmp_path: Path, server: Any) -> dict[str, list[dict[str, Any]]]:
    result = run_mission_text(text, tmp_path, url=server.url)
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stores


def test_arms_are_tried_in_order_and_guards_see_bindings_and_the_subject(tmp_path: Path, demo_server: Any) -> None:
    text = """mission Guards {
  store out: memory("out")
  action A {
    for n in [1, 5, 50] {
      match ({ value: n, label: "n" }) {
        { value: v } where v > 10 and .label == "n" -> store { id: "" + n, arm: "big", v: v } -> out,
        { value: v } where v > 2 -> store { id: "" + n, arm: "mid", v: v } -> out,
        { value: v } -> store { id: "" + n, arm: "small", v: v } -> out,
        _ -> abort "unreachable"
      }
    }
    store { id: "expr", size: match 50 { v where v > 10 => "big:" + v, _ => "small" } } -> out
  }
  run A
}
"""
    out = {r["id"]: r for r in run_ok(text, tmp_path, demo_server)["out"]}
    assert [out[k]["arm"] for k in ("1", "5", "50")] == ["small", "mid", "big"]
    assert out["50"]["v"] == 50
    assert out["expr"]["size"] == "big:50"


def test_bindings_end_with_the_arm_and_do_not_leak_between_parallel_iterations(tmp_path: Path,
                                                                               demo_server: Any) -> None:
    text = """mission Isolation {
  store out: memory("out")
  action A {
    let item = "outer"
    for n in [1, 2, 3, 4, 5, 6, 7, 8] parallel {
      match ({ item: n * 10 }) {
        { item: item } -> {
          let doubled = item * 2
          store { id: "" + n, item: item, doubled: doubled } -> out
        },
        _ -> abort "no"
      }
    }
    store { id: "after", item: item } -> out
  }
  run A
}
"""
    out = {r["id"]: r for r in run_ok(text, tmp_path, demo_server)["out"]}
    for n in range(1, 9):
        assert out[str(n)] == {"id": str(n), "item": n * 10, "doubled": n * 20}
    assert out["after"]["item"] == "outer"


def test_bindings_belong_to_their_own_parallel_branch(tmp_path: Path, demo_server: Any) -> None:
    text = """mission Branches {
  store out: memory("out")
  action Left { match ({ side: "left", n: 1 }) { { side: s, n: n } -> store { id: s, n: n } -> out, _ -> skip } }
  action Right { match ({ side: "right", n: 2 }) { { side: s, n: n } -> store { id: s, n: n } -> out, _ -> skip } }
  run [Left, Right]
}
"""
    out = {r["id"]: r for r in run_ok(text, tmp_path, demo_server)["out"]}
    assert out == {"left": {"id": "left", "n": 1}, "right": {"id": "right", "n": 2}}


def test_match_without_a_subject_runs_the_first_true_condition(tmp_path: Path, demo_server: Any) -> None:
    text = """mission Conditions {
  store dataA: memory("dataA")
  store mergeLog: memory("mergeLog")
  store tiers: memory("tiers")
  action Fill { store [{ id: "1" }, { id: "2" }] -> dataA }
  action Merge {
    match {
      length(dataA) > 5 -> store { id: "wrong" } -> mergeLog,
      length(dataA) > 0 -> store { id: "merged", a: length(dataA) } -> mergeLog,
      _ -> abort "No data available"
    }
    map [{ id: "a", total: 5000 }, { id: "b", total: 500 }, { id: "c", total: 5 }] -> Tier {
      id: .id,
      tier: match { .total > 1000 => "vip", .total > 100 => "regular", _ => "new" }
    }
    store response -> tiers
  }
  run Fill then Merge
}
"""
    stores = run_ok(text, tmp_path, demo_server)
    assert stores["mergeLog"] == [{"id": "merged", "a": 2}]
    assert {r["id"]: r["tier"] for r in stores["tiers"]} == {"a": "vip", "b": "regular", "c": "new"}


def test_match_without_a_subject_and_no_true_arm_fails_with_no_match(tmp_path: Path, demo_server: Any) -> None:
    text = 'mission M {\n  action A { match { 1 > 2 -> skip } }\n  run A\n}\n'
    result = run_mission_text(text, tmp_path, url=demo_server.url)
    assert result.code == 1
    assert "no-match" in result.stderr and "Traceback" not in result.stderr


def test_a_guard_that_fails_fails_the_step(tmp_path: Path, demo_server: Any) -> None:
    text = 'mission M {\n  action A { match ({ a: "x" }) { { a: a } where a * 2 > 1 -> skip, _ -> skip } }\n  run A\n}\n'
    result = run_mission_text(text, tmp_path, url=demo_server.url)
    assert result.code == 1
    assert "runtime" in result.stderr and "cannot apply '*'" in result.stderr


def test_the_smaller_forms_run(tmp_path: Path, demo_server: Any) -> None:
    """§4.6 validate without a target, §5.6 if-then-else, §5.8 method calls, §4.10.3 abort expressions."""
    text = """mission Forms {
  store out: memory("out")
  action A {
    let users = [{ id: 1, price: 5, nickname: "" , firstName: "Ann" }, { id: 2, price: 20, nickname: "Bo" }]
    validate { assume length(users) > 0 }
    store {
      id: "forms",
      names: users.map(if .nickname then .nickname else .firstName),
      expensive: users.filter(.price > 10).map(.id),
      upper: "abc".uppercase()
    } -> out
  }
  action Fails {
    let task = { id: 42 }
    abort "Failed to replace task: " + task.id
  }
  run A then Fails
}
"""
    result = run_mission_text(text, tmp_path, url=demo_server.url)
    assert result.code == 1, result.stderr
    assert "Failed to replace task: 42" in result.stderr
    assert result.stores["out"] == [{"id": "forms", "names": ["Ann", "Bo"], "expensive": [2], "upper": "ABC"}]


def test_validate_without_a_target_reports_the_condition(tmp_path: Path, demo_server: Any) -> None:
    text = 'mission M {\n  action A {\n    let users = []\n    validate { assume length(users) > 0 }\n  }\n  run A\n}\n'
    result = run_mission_text(text, tmp_path, url=demo_server.url)
    assert result.code == 1
    assert "assumption failed: length(users) > 0" in result.stderr
    assert "(value:" not in result.stderr


# --------------------------------------------------------------------------- properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)
PATTERNS = [p for p, *_ in ROWS] + ["{ a: { b: [x, ...y] }, c: null }", "[[a], { b: Order }, ...r]"]
COMPILED = [COMPILER.matcher(pattern_of(p)) for p in PATTERNS]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(json_values)
def test_a_pattern_never_raises_on_any_json_value(value: Any) -> None:
    for matcher in COMPILED:
        assert matcher(value, {}) in (True, False)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(json_values)
def test_wildcard_and_a_lone_binding_accept_everything(value: Any) -> None:
    bindings: dict[str, Any] = {}
    assert COMPILER.matcher(pattern_of("_"))(value, bindings) is True
    assert bindings == {}
    assert COMPILER.matcher(pattern_of("anything"))(value, bindings) is True
    assert bindings == {"anything": value}
