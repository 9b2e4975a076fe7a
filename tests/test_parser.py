"""Text to AST: shapes, contextual keywords, escapes, syntax errors in plain words, both parse paths."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reqon import ast
from reqon.ast_json import from_json, to_json
from reqon.diagnostics import ReqonSyntaxError, render_all
from reqon.parser import get_parser, parse, parse_text

ROOT = Path(__file__).resolve().parents[1]
SPEC_EXAMPLES = ROOT.parent / "shared" / "spec" / "examples"
EXAMPLE_FILES = sorted(SPEC_EXAMPLES.rglob("*.vague")) + sorted((ROOT / "examples").glob("*.vague"))


def action_steps(source: str) -> tuple[ast.Step, ...]:
    program = parse(f"action A {{ {source} }}")
    action = program.declarations[0]
    assert isinstance(action, ast.Action)
    return action.steps


def expr(source: str) -> ast.Expr:
    step = action_steps(f"let x = {source}")[0]
    assert isinstance(step, ast.Let)
    return step.value


# ---------------------------------------------------------------- shapes


def test_mission_members_are_grouped_by_kind() -> None:
    program = parse('mission M { maxConcurrency: 2 source S { auth: none, base: "http://h" } '
                    'store s: sql("t") action A { skip } run A then [A, A] { mode: "race" } if true }')
    mission = program.declarations[0]
    assert isinstance(mission, ast.Mission)
    assert [s.key for s in mission.settings] == ["maxConcurrency"]
    assert mission.sources[0].name.name == "S" and mission.stores[0].kind.name == "sql"
    stage = mission.runs[0].stages[1]
    assert stage.parallel and [a.name for a in stage.actions] == ["A", "A"]
    assert stage.options is not None and stage.options.entries[0].key == "mode"
    assert isinstance(stage.condition, ast.Literal)


def test_precedence_follows_the_reference() -> None:
    e = expr("a or b and not c == 1 + 2 * 3")
    assert isinstance(e, ast.Binary) and e.op == "or"
    right = e.right
    assert isinstance(right, ast.Binary) and right.op == "and"
    assert isinstance(right.right, ast.Not)
    comparison = right.right.operand
    assert isinstance(comparison, ast.Binary) and comparison.op == "=="
    assert isinstance(comparison.right, ast.Binary) and comparison.right.op == "+"


def test_ternary_coalesce_and_any_of() -> None:
    e = expr("a ?? b ? 1 : 2")
    assert isinstance(e, ast.Ternary) and isinstance(e.condition, ast.Binary) and e.condition.op == "??"
    assert isinstance(expr("any of xs where .a > 1"), ast.AnyOf)


def test_durations_are_milliseconds_and_numbers_keep_their_kind() -> None:
    assert [expr(t).value for t in ("250ms", "30s", "5m", "2h", "1d")] == [250, 30_000, 300_000, 7_200_000, 86_400_000]
    assert expr("15").kind == "int" and expr("1.5").kind == "decimal"


@pytest.mark.parametrize("source, value", [
    (r'"a\"b"', 'a"b'), (r"'it\'s'", "it's"), (r'"\n\t\\"', "\n\t\\"), (r'"\u00e9"', "é"),
    (r'"\u{1F600}"', "\U0001F600"), (r'"C:\\reports"', "C:\\reports"), ('"/* not a comment */"', "/* not a comment */"),
])
def test_string_escapes(source: str, value: str) -> None:
    assert expr(source).value == value


def test_contextual_keywords_are_names_where_they_mean_nothing() -> None:
    steps = action_steps("let page = 2 let retry = 3 let from = 1 for key in keys(x) { skip } "
                         "let y = response.store.get let z = { get: 1, mission: 2, or: 3 }.mission")
    assert [s.name.name for s in steps if isinstance(s, ast.Let)] == ["page", "retry", "from", "y", "z"]


def test_abort_followed_by_a_step_keyword_starts_a_new_step() -> None:
    steps = action_steps('get "/x" abort retry')
    assert isinstance(steps[1], ast.Abort) and steps[1].message is None
    assert isinstance(steps[2], ast.Retry)


def test_loose_option_blocks_and_operator_words_as_keys() -> None:
    fetch = action_steps('get "/x" { params: { a: 1 } timeout: 5s, "odd key": 1 }')[0]
    assert isinstance(fetch, ast.Fetch) and fetch.options is not None
    assert [e.key for e in fetch.options.entries] == ["params", "timeout", "odd key"]


def test_spans_point_at_the_source() -> None:
    program = parse('mission M {\n  action Fetch {\n    get "/x"\n  }\n  run Fetch\n}\n', "m.vague")
    fetch = program.declarations[0].actions[0].steps[0]  # type: ignore[union-attr]
    assert (fetch.span.file, fetch.span.line, fetch.span.column, fetch.span.end_column) == ("m.vague", 3, 5, 13)


# ---------------------------------------------------------------- syntax errors


@pytest.mark.parametrize("source, code, where, message", [
    ("mission M {\n  runn A\n}\n", "E101", (2, 3), "unknown word 'runn', did you mean 'run'?"),
    ("mission M {\n  action FetchBooks {\n    get \"/x\"\n", "E101", (3, 13),
     "unexpected end of file: expected '}' to close action FetchBooks opened at 2:21"),
    ('source X { auth: none }\n', "E101", (1, 1), "'source' is not allowed at top level"),
    ('mission M { action A { let x = "abc\n } }', "E102", (1, 32), "unterminated string"),
    (r'mission M { action A { let x = "a\qb" } run A }', "E103", (1, 34), "unknown escape sequence '\\q' in string"),
    ("mission M { /* open\n action A {} }", "E104", (1, 13), "unterminated block comment"),
    ("mission M { action A { let x = a ! b } run A }", "E107", (1, 34), "unexpected character '!'"),
    ("mission M { action A { let x = a < b < c } run A }", "E101", (1, 38), "unexpected '<': expected"),
    ("mission M { action A { let x = 1 + } run A }", "E101", (1, 36), "unexpected '}': expected an expression"),
    ("mission M { action A { store x -> } run A }", "E101", (1, 35), "unexpected '}': expected a name"),
    ("mission M { action A { get \"/x\" { a: 1 and: 2 } } run A }", "E101", (1, 43),
     "unexpected ':': expected an expression"),
    ("mission M { action A { let x = " + "(" * 300 + "1" + ")" * 300 + " } }", "E101", (1, 230),
     "brackets are nested more than 200 levels deep"),
])
def test_syntax_errors_in_plain_words(source: str, code: str, where: tuple[int, int], message: str) -> None:
    program, diagnostics = parse_text(source, "bad.vague")
    assert program is None
    first = diagnostics[0]
    assert (first.code, (first.span.line, first.span.column)) == (code, where)
    assert first.message.startswith(message)


def test_several_errors_are_reported_in_one_pass() -> None:
    source = "mission M {\n  action A { let x = a ! b }\n  action B { let y = ; }\n  action C { let z = 1 + }\n}\n"
    _, diagnostics = parse_text(source, "bad.vague")
    assert [(d.code, d.span.line) for d in diagnostics] == [("E107", 2), ("E107", 3), ("E101", 4)]


def test_rendered_syntax_error_has_a_caret_under_the_token() -> None:
    source = "mission M {\n  runn A\n}\n"
    _, diagnostics = parse_text(source, "bad.vague")
    assert render_all(diagnostics, {"bad.vague": source}) == (
        "bad.vague:2:3: error[E101]: unknown word 'runn', did you mean 'run'?\n"
        "2 |   runn A\n"
        "  |   ^^^^\n\n"
        "1 error\n")


def test_library_parse_raises_with_every_diagnostic() -> None:
    with pytest.raises(ReqonSyntaxError) as caught:
        parse("mission M {\n action A { let x = a ! b }\n action B { let y = ; }\n}")
    assert len(caught.value.diagnostics) == 2


# ---------------------------------------------------------------- both parse paths, JSON round trip


def _both_paths(text: str) -> tuple[object, object]:
    parser = get_parser()
    parser._builder.file = "f.vague"
    parser._builder.diagnostics = []
    fast = parser._fast.parse(text)
    tree, found = parser._errors.parse(text, "f.vague")
    slow = parser._builder.transform(tree) if tree is not None and not found else None
    return fast, slow


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_fast_and_lark_paths_build_the_same_ast_with_the_same_positions(path: Path) -> None:
    fast, slow = _both_paths(path.read_text())
    assert fast is not None and slow is not None
    assert to_json(fast) == to_json(slow)


ISSUE_13_FORMS = {
    "object and list patterns": 'match response { { error: e, code: 401 } -> jump R then retry, '
                                '{ a: null, "b c": -1, ...rest } -> skip, [] -> skip, [x] -> skip, '
                                '[f, ...r] where length(r) < 2 -> skip, [Order] -> skip, [..._] -> skip, _ -> skip }',
    "match without subject": 'match { length(a) > 0 and b -> { store x -> s }, _ -> abort "none" }',
    "match expressions": 'let t = match { .total > 1000 => "vip", _ => "new" }\n'
                         'let u = match x { v where v is string => v, { n: n } => n, _ => null }',
    "source before path": 'get Xero "/invoices/" + id { params: { a: 1 } }\nget nextUrl',
    "smaller forms": 'validate { assume length(users) > 0 }\nabort "Failed: " + task.id\n'
                     'let n = if .nickname then .nickname else .firstName\n'
                     'let m = response.items.filter(.price > 10).map(.id)',
}


@pytest.mark.parametrize("steps", ISSUE_13_FORMS.values(), ids=ISSUE_13_FORMS.keys())
def test_issue_13_forms_build_the_same_ast_on_both_paths_and_round_trip(steps: str) -> None:
    text = f"mission M {{ action A {{\n{steps}\n}} run A }}"
    fast, slow = _both_paths(text)
    assert fast is not None and slow is not None
    assert to_json(fast) == to_json(slow)
    rebuilt = from_json(json.loads(json.dumps(to_json(fast))))
    assert rebuilt == fast


def test_source_before_path_and_method_calls_build_the_documented_nodes() -> None:
    program = parse('action A { get Xero "/x" { a: 1 }\nget nextUrl\nlet m = xs.filter(.p).map(.id) }')
    action = program.declarations[0]
    assert isinstance(action, ast.Action)
    first, second, let = action.steps
    assert isinstance(first, ast.Fetch) and first.source is not None and first.source.name == "Xero"
    assert isinstance(second, ast.Fetch) and second.source is None and isinstance(second.path, ast.Var)
    assert isinstance(let, ast.Let) and isinstance(let.value, ast.FuncCall)
    assert let.value.func.name == "mapEach"
    inner = let.value.args[0]
    assert isinstance(inner, ast.FuncCall) and inner.func.name == "filter"
    assert isinstance(inner.args[0], ast.Var) and inner.args[0].name == "xs"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_json_round_trip(path: Path) -> None:
    program = parse(path.read_text(), str(path))
    data = json.loads(json.dumps(to_json(program)))
    assert data["type"] == "Program" and data["file"] == str(path)
    rebuilt = from_json(data)
    assert rebuilt == program and to_json(rebuilt) == data


_PIECES = ["mission M {", "action A {", "}", "{", "get \"/x/{a.b}\"", "let x = 1", "run A", "then", "[A, B]",
           "for x in xs parallel", "match response {", "_ -> skip", ",", "store x -> s { key: .id }",
           "abort", "retry", ".a", "+", "(", ")", "\"s\"", "30s", "1.5", "// c\n", "/* c */", "where", "not",
           "page", "store", "source S { auth: none }", "map x -> T { a: 1 } as y", "??", "is not null",
           "match {", "=>", "{ e: x, ...r }", "[a, ...b]", "if", "then", "else", "get S \"/x\"", ".filter(.a)",
           "validate {", "assume x", "abort \"a\" +"]


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), max_size=30))
def test_random_token_soup_gives_diagnostics_or_the_same_ast_on_both_paths(pieces: list[str]) -> None:
    text = " ".join(pieces)
    program, diagnostics = parse_text(text, "soup.vague")
    assert (program is None) == bool(diagnostics)
    fast, slow = _both_paths(text)
    if fast is not None:
        assert slow is not None and to_json(fast) == to_json(slow)
    for d in diagnostics:
        assert d.code.startswith("E1") and d.span.line >= 1 and d.span.column >= 1


def test_call_with_a_quoted_operation_id_on_both_paths_and_in_json() -> None:
    text = ('mission M {\n  source GitHub from "github.json" { auth: none }\n'
            '  action A { call GitHub."repos/list-for-org" { params: { org: "x" } }\n    call GitHub.meta }\n'
            '  run A\n}\n')
    fast, slow = _both_paths(text)
    assert fast is not None and to_json(fast) == to_json(slow)
    data = to_json(parse(text, "f.vague"))
    mission = data["declarations"][0]
    assert mission["sources"][0]["document"] == "github.json"  # `reqon parse --json` carries the `from` document
    calls = mission["actions"][0]["steps"]
    assert [c["operation"]["name"] for c in calls] == ["repos/list-for-org", "meta"]
    assert (calls[0]["operation"]["line"], calls[0]["operation"]["column"]) == (3, 26)
