"""Steps and expressions (LANGUAGE.md §4, §5, §6.4, §6.5) through small missions.

Each test runs a mission with `reqon run` (in-process) against the session's demo
server and checks what ended up in the stores (`--output`), in the files of the data
directory, in stderr and in what the server saw.
"""
from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from reqon.demo.server import ThreadedServer
from tests.conftest import RunResult, run_mission_text

pytestmark = pytest.mark.timeout(60)

SOURCE = 'source Api { auth: none, base: env("DEMO_URL") }'


def mission(body: str, name: str = "Steps") -> str:
    return f"mission {name} {{\n  {SOURCE}\n{body}\n}}\n"


def run(body: str, tmp_path: Path, server: ThreadedServer, *args: str, name: str = "Steps") -> RunResult:
    server.stats.reset()
    result = run_mission_text(mission(body, name), tmp_path, *args, url=server.url)
    assert "Traceback" not in result.stderr, result.stderr
    assert "internal error" not in result.stderr, result.stderr
    return result


def ok(body: str, tmp_path: Path, server: ThreadedServer, *args: str, name: str = "Steps") -> RunResult:
    result = run(body, tmp_path, server, *args, name=name)
    assert result.code == 0, result.stderr
    return result


def failed(body: str, tmp_path: Path, server: ThreadedServer, kind: str, message: str) -> RunResult:
    """The run fails with `kind: …message…` in the error report."""
    result = run(body, tmp_path, server)
    assert result.code == 1, result.stderr
    assert re.search(rf"\S+\.vague:\d+:\d+: {re.escape(kind)}: .*{re.escape(message)}", result.stderr), \
        result.stderr
    return result


def file_store(result: RunResult, target: str) -> dict[str, Any]:
    """A `file` store as written to disk: key -> record."""
    return json.loads((result.data_dir / f"{target}.json").read_text("utf-8"))


def position(text: str, needle: str) -> str:
    offset = text.index(needle)
    line = text.count("\n", 0, offset) + 1
    return f"{line}:{offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"


@pytest.fixture
def server(demo_server: ThreadedServer) -> ThreadedServer:
    return demo_server


# --------------------------------------------------------------------------- let, map, apply, expressions


def test_let_and_expressions(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store out: memory("out")
  store lookup: memory("lookup")
  action Fill { store [{ id: "a", n: 1 }, { id: "b", n: 2 }] -> lookup }
  action Compute {
    let xs = [3, 1, 2]
    let obj = { name: "x", nested: { deep: 5 } }
    let xs = [...xs, 4]
    store {
      id: "e",
      half: 7 / 2, whole: 10 / 4 * 2, mod: -7 % 3, concat: "n" + 1.5 + null,
      orValue: "" or "fallback", coalesce: 0 ?? 9, missing: obj.nope.deeper,
      idx: xs[-1], sorted: sort(xs), filtered: filter(xs, it > 2),
      found: (any of lookup where .n == 2).id, keyed: lookup["a"].n, keyedMissing: lookup["zz"],
      cond: length(xs) > 3 ? "long" : "short",
      label: match obj.nested.deep { 1 => "one", _ where it > 4 => "big", _ => "other" },
      isStr: obj.name is string, contains: xs contains 4, jmes: jmes(obj, "nested.deep"),
      count: count(lookup)
    } -> out
  }
  run Fill then Compute
"""
    result = ok(body, tmp_path, server)
    assert result.stores["out"] == [{
        "id": "e", "half": 3.5, "whole": 5, "mod": 2, "concat": "n1.5", "orValue": "fallback", "coalesce": 0,
        "missing": None, "idx": 4, "sorted": [1, 2, 3, 4], "filtered": [3, 4], "found": "b", "keyed": 1,
        "keyedMissing": None, "cond": "long", "label": "big", "isStr": True, "contains": True, "jmes": 5,
        "count": 2,
    }]


def test_let_in_a_loop_body_is_local_to_the_iteration(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store out: memory("out")
  action A {
    let x = "outer"
    for n in [1, 2] {
      let x = "inner-" + n
      store { id: n, x: x } -> out
    }
    store { id: 0, x: x } -> out
  }
  run A
"""
    result = ok(body, tmp_path, server)
    assert result.stores["out"] == [{"id": 0, "x": "outer"}, {"id": 1, "x": "inner-1"}, {"id": 2, "x": "inner-2"}]


def test_map_over_a_list_with_spread_and_as(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store out: memory("out")
  action A {
    get "/books" { params: { per_page: 3 } }
    map response.items -> Entry { ...it, short: substring(.title, 0, 3), pages: .pages ?? 0 } as entries
    map { a: 1 } -> Single { b: .a + 1 }
    store { id: "r", entries: length(entries), single: response, firstIsbn: entries[0].isbn,
            sameTitle: entries[0].title == entries[0].short + substring(entries[0].title, 3) } -> out
  }
  run A
"""
    result = ok(body, tmp_path, server)
    [record] = result.stores["out"]
    assert record["entries"] == 3 and record["single"] == {"b": 2} and record["sameTitle"] is True
    assert len(record["firstIsbn"]) == 13


def test_apply_picks_the_first_applicable_variant(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store out: memory("out")
  schema Old { ref: string }
  schema New { id: string, level: int }
  transform Norm {
    (Old) -> Item { key: "old-" + .ref }
    (New) where .level > 1 -> Item { key: "high-" + .id }
    (_) -> Item { key: "other" }
  }
  action A {
    apply Norm to [{ ref: "1" }, { id: "2", level: 3 }, { id: "3", level: 1 }, { x: 1 }] as items
    apply Norm to { ref: "9" }
    store { id: "r", items: mapEach(items, .key), one: response.key } -> out
  }
  run A
"""
    result = ok(body, tmp_path, server)
    assert result.stores["out"] == [{"id": "r", "items": ["old-1", "high-2", "other", "other"], "one": "old-9"}]


def test_apply_without_an_applicable_variant_fails_with_no_match(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  schema Old { ref: string }
  transform Norm { (Old) -> Item { key: .ref } }
  action A { apply Norm to { nope: 1 } as r }
  run A
"""
    failed(body, tmp_path, server, "no-match", "apply Norm: no variant accepts a value of type object")


# --------------------------------------------------------------------------- validate


def test_validate_fails_with_the_condition_text_and_the_value(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  action A {
    validate ({ n: 5 }) { assume .n > 10 }
  }
  run A
"""
    result = failed(body, tmp_path, server, "validation", "assumption failed: .n > 10")
    assert '{"n": 5}' in result.stderr or '{"n":5}' in result.stderr


def test_validate_else_message_and_warn(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store out: memory("out")
  action A {
    get "/items/3"
    validate response {
      assume .id == 3,
      assume .value == "nope" else warn "value is unusual",
      assume .id < 10 else "id too large"
    }
    store { id: "after", value: response.value } -> out
  }
  run A
"""
    text = mission(body)
    result = ok(body, tmp_path, server)
    assert result.stores["out"] == [{"id": "after", "value": "item-3"}]  # validate left `response` alone
    at = position(text, "assume .value")
    assert re.search(rf"mission\.vague:{at}: warning: value is unusual", result.stderr), result.stderr
    assert "validation warnings: 1" in result.stderr


def test_validate_custom_error_message(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  action A { validate [1, 2] { assume length(it) == 2, assume first(it) == 2 else "must start with 2" } }
  run A
"""
    failed(body, tmp_path, server, "validation", "must start with 2")


# --------------------------------------------------------------------------- store


def test_store_replace_upsert_partial_and_keys(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store s: file("s")
  action A {
    store { id: 7, a: 1, b: 1 } -> s
    store { id: 7.0, a: 2 } -> s
    store { id: "u", a: 1, nested: { x: 1, y: 1 } } -> s
    store { id: "u", b: 2, nested: { x: 2 } } -> s { upsert: true }
    store [{ isbn: "i1", t: 1 }, { isbn: "i2", t: 2 }] -> s { key: .isbn, partial: true }
    store { isbn: "i1", more: true } -> s { key: .isbn, upsert: true, partial: false }
    store { nokey: true } -> s
    store each [{ id: "e1" }, { id: "e2" }] -> s { key: .id + "-k" }
  }
  run A
"""
    result = ok(body, tmp_path, server)
    records = file_store(result, "s")
    fresh = [k for k in records if records[k] == {"nokey": True}]
    assert len(fresh) == 1 and uuid.UUID(fresh[0])
    del records[fresh[0]]
    assert records == {
        "7": {"id": 7, "a": 2},
        "u": {"id": "u", "a": 1, "b": 2, "nested": {"x": 2}},
        "i1": {"isbn": "i1", "t": 1, "_partial": False, "more": True},
        "i2": {"isbn": "i2", "t": 2, "_partial": True},
        "e1-k": {"id": "e1"},
        "e2-k": {"id": "e2"},
    }
    assert list(result.stores) == ["s"]


@pytest.mark.parametrize("value, message", [
    ("[{ id: 1 }, 2]", "store: element 2 is a number, expected an object"),
    ("null", "store: expected an object or a list, got null"),
    ('"text"', "store: expected an object or a list, got string"),
])
def test_store_rejects_non_objects(tmp_path: Path, server: ThreadedServer, value: str, message: str) -> None:
    body = f'  store s: memory("s")\n  action A {{ store {value} -> s }}\n  run A\n'
    result = failed(body, tmp_path, server, "store", message)
    assert result.stores["s"] == []  # nothing of the failing step was written


def test_store_each_needs_a_list(tmp_path: Path, server: ThreadedServer) -> None:
    body = '  store s: memory("s")\n  action A { store each { id: 1 } -> s }\n  run A\n'
    failed(body, tmp_path, server, "store", "expected a list, got object")


def test_store_key_must_be_a_string_or_number(tmp_path: Path, server: ThreadedServer) -> None:
    body = '  store s: memory("s")\n  action A { store { id: 1, k: null } -> s { key: .k } }\n  run A\n'
    failed(body, tmp_path, server, "store", "a key must be a string or a number, got null")


def test_stores_list_in_key_order(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store s: memory("s")
  store out: memory("out")
  action A {
    store [{ id: "9" }, { id: "10" }, { id: "b" }, { id: "A" }] -> s
    store { id: "order", keys: mapEach(s, .id) } -> out
  }
  run A
"""
    result = ok(body, tmp_path, server)
    assert result.stores["out"][0]["keys"] == ["10", "9", "A", "b"]
    assert [r["id"] for r in result.stores["s"]] == ["10", "9", "A", "b"]


# --------------------------------------------------------------------------- match


def test_match_schemas_lists_and_guards(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store out: memory("out")
  schema Book { isbn: string, title: string, pages: int? }
  schema Err { error: string }
  action A {
    for v in [{ isbn: "1", title: "t", pages: 900 }, { isbn: "2", title: "t" }, { error: "x" },
              [{ isbn: "3", title: "t" }], [], [{ isbn: 4 }], 17] {
      match v {
        Book where .pages > 500 -> store { id: length(out), v: "long book" } -> out,
        Book -> store { id: length(out), v: "book" } -> out,
        Err -> { let e = v.error
                 store { id: length(out), v: "error " + e } -> out },
        [Book] -> store { id: length(out), v: "books " + length(v) } -> out,
        _ where it is number -> store { id: length(out), v: "number" } -> out,
        _ -> store { id: length(out), v: "other" } -> out
      }
    }
  }
  run A
"""
    result = ok(body, tmp_path, server)
    assert [r["v"] for r in result.stores["out"]] == [
        "long book", "book", "error x", "books 1", "books 0", "other", "number"]


def test_match_without_a_matching_arm_fails_with_no_match(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  schema Err { error: string }
  action A {
    match ({ ok: true }) { Err -> continue }
  }
  run A
"""
    failed(body, tmp_path, server, "no-match", 'no arm of match matched a value of type object: {"ok":true}')


# --------------------------------------------------------------------------- flow directives


def test_skip_ends_the_iteration_inside_a_loop_and_the_action_outside(tmp_path: Path,
                                                                      server: ThreadedServer) -> None:
    body = """
  store out: memory("out")
  action A {
    for n in [1, 2, 3, 4] {
      match n { _ where it % 2 == 0 -> skip, _ -> continue }
      store { id: n } -> out
    }
    store { id: "before-skip" } -> out
    skip
    store { id: "after-skip" } -> out
  }
  action B { store { id: "next-stage" } -> out }
  run A then B
"""
    result = ok(body, tmp_path, server)
    assert sorted(str(r["id"]) for r in result.stores["out"]) == ["1", "3", "before-skip", "next-stage"]


def test_skip_in_a_parallel_loop_ends_only_its_iteration(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store out: memory("out")
  action A {
    for n in [1, 2, 3, 4, 5, 6] parallel {
      get "/items/{n}"
      match response { _ where .id > 3 -> skip, _ -> continue }
      store response -> out
    }
  }
  run A
"""
    result = ok(body, tmp_path, server)
    assert [r["id"] for r in result.stores["out"]] == [1, 2, 3]
    assert server.stats.count("/items/6") == 1


def test_continue_ends_the_arm_body(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store out: memory("out")
  action A {
    match 1 {
      _ -> {
        store { id: "in-arm" } -> out
        continue
        store { id: "unreachable" } -> out
      }
    }
    store { id: "after-match" } -> out
  }
  run A
"""
    result = ok(body, tmp_path, server)
    assert [r["id"] for r in result.stores["out"]] == ["after-match", "in-arm"]


@pytest.mark.parametrize("directive, message", [
    ('abort "no way"', "no way"),
    ("abort", "aborted"),
    ("abort response.value", "item-5"),
    ('abort ("item " + response.id)', "item 5"),
])
def test_abort_fails_the_mission_with_its_message(tmp_path: Path, server: ThreadedServer, directive: str,
                                                  message: str) -> None:
    body = f"""
  store out: memory("out")
  action A {{
    get "/items/5"
    {directive}
    store {{ id: "never" }} -> out
  }}
  action B {{ store {{ id: "never" }} -> out }}
  run A then B
"""
    text = mission(body)
    result = failed(body, tmp_path, server, "abort", message)
    assert f"mission.vague:{position(text, 'abort')}: abort: {message}" in result.stderr
    assert result.stores["out"] == []


def test_retry_replays_from_the_anchor_until_success(tmp_path: Path, server: ThreadedServer) -> None:
    key = uuid.uuid4().hex
    body = f"""
  store out: memory("out")
  action A {{
    get "/items/1"
    let before = response.value
    get "/flaky" {{ params: {{ key: "{key}", fail: 2, status: 503 }}, allow: [503] }}
    match response {{
      _ where http.status == 503 -> retry {{ maxAttempts: 3, delay: 10 }},
      _ -> continue
    }}
    store {{ id: "done", attempt: response.attempt, before: before, http: http.status }} -> out
  }}
  run A
"""
    result = ok(body, tmp_path, server)
    assert result.stores["out"] == [{"id": "done", "attempt": 3, "before": "item-1", "http": 200}]
    assert server.stats.count("/flaky") == 3
    assert server.stats.count("/items/1") == 1  # steps before the anchor are not replayed


def test_retry_gives_up_with_retry_exhausted(tmp_path: Path, server: ThreadedServer) -> None:
    key = uuid.uuid4().hex
    body = f"""
  action A {{
    get "/flaky" {{ params: {{ key: "{key}", fail: 10, status: 503 }}, allow: [503] }}
    match response {{
      _ where http.status == 503 -> retry {{ maxAttempts: 2, initialDelay: 10ms }},
      _ -> continue
    }}
  }}
  run A
"""
    failed(body, tmp_path, server, "retry-exhausted", "gave up after 2 attempts")
    assert server.stats.count("/flaky") == 2


def test_retry_attempts_are_counted_per_entry_into_the_block(tmp_path: Path, server: ThreadedServer) -> None:
    key = uuid.uuid4().hex
    body = f"""
  store out: memory("out")
  action A {{
    for n in [1, 2, 3] {{
      get "/flaky" {{ params: {{ key: "{key}-" + n, fail: 2, status: 503 }}, allow: [503] }}
      match response {{
        _ where http.status == 503 -> retry {{ maxAttempts: 3, delay: 0 }},
        _ -> continue
      }}
      store {{ id: n, attempt: response.attempt }} -> out
    }}
  }}
  run A
"""
    result = ok(body, tmp_path, server)
    assert result.stores["out"] == [{"id": n, "attempt": 3} for n in (1, 2, 3)]
    assert server.stats.count("/flaky") == 9


def test_queue_dead_letters_the_match_subject_or_the_item(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store out: memory("out")
  store dlq: file("dlq")
  store raw: file("raw")
  action A {
    for n in [1, 2, 3, 4] {
      get "/books/{n}" { allow: [404] }
      match response {
        _ where http.status == 404 and n == 2 -> queue raw,
        _ where http.status == 404 -> queue dlq { item: { n: n, reason: response.error }, key: "n" + .n },
        _ -> continue
      }
      store { id: n } -> out
    }
    match 42 { _ -> queue raw }
    store { id: "unreachable" } -> out
  }
  run A
"""
    result = ok(body, tmp_path, server)
    assert result.stores["out"] == []  # every iteration was queued (and skipped)
    assert file_store(result, "dlq") == {
        "n1": {"n": 1, "reason": "not found"},
        "n3": {"n": 3, "reason": "not found"},
        "n4": {"n": 4, "reason": "not found"},
    }
    raw = file_store(result, "raw")
    assert sorted(raw.values(), key=json.dumps) == sorted([{"error": "not found"}, {"value": 42}], key=json.dumps)
    assert all(uuid.UUID(k) for k in raw)


def test_jump_then_retry_replays_the_request(tmp_path: Path, server: ThreadedServer) -> None:
    key = uuid.uuid4().hex
    body = f"""
  store log: memory("log")
  action Renew {{
    store {{ id: "renewed" + count(log) }} -> log
    skip
    store {{ id: "after-skip-in-jumped-action" }} -> log
  }}
  action A {{
    get "/flaky" {{ params: {{ key: "{key}", fail: 1, status: 419 }}, allow: [419] }}
    match response {{
      _ where http.status == 419 -> jump Renew then retry,
      _ -> jump Renew then continue
    }}
    store {{ id: "done", attempt: response.attempt }} -> log
  }}
  run A
"""
    result = ok(body, tmp_path, server)
    assert [r["id"] for r in result.stores["log"]] == ["done", "renewed0", "renewed1"]
    assert result.keyed("log", "id")["done"]["attempt"] == 2
    assert server.stats.count("/flaky") == 2


def test_jump_failure_fails_the_calling_step(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  action Broken { get "/fail" { params: { status: 502 }, retry: { maxAttempts: 1 } } }
  action A {
    jump Broken
  }
  run A
"""
    failed(body, tmp_path, server, "http", "returned 502")


# --------------------------------------------------------------------------- for


def test_for_where_binds_the_loop_variable_and_the_subject(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store out: memory("out")
  action A {
    let xs = [{ n: 1 }, { n: 5 }, { n: 7 }, { n: 2 }]
    for x in xs where x.n > 2 and .n < 7 { store { id: "var-" + x.n } -> out }
    for x in xs where it.n >= 7 { store { id: "it-" + x.n } -> out }
  }
  run A
"""
    result = ok(body, tmp_path, server)
    assert [r["id"] for r in result.stores["out"]] == ["it-7", "var-5"]


@pytest.mark.parametrize("collection, what", [("null", "null"), ('{ a: 1 }', "an object"), ('"s"', "a string")])
def test_for_over_a_non_list_fails(tmp_path: Path, server: ThreadedServer, collection: str, what: str) -> None:
    body = f'  action A {{\n    let c = {collection}\n    for x in c {{ let y = x }}\n  }}\n  run A\n'
    failed(body, tmp_path, server, "runtime", f"for: collection is {what}, expected a list")


def test_for_over_a_store_iterates_a_snapshot_in_key_order(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store s: memory("s")
  action A {
    store [{ id: "b" }, { id: "a" }] -> s
    for r in s { store { id: r.id + "2" } -> s }
  }
  run A
"""
    result = ok(body, tmp_path, server)
    assert [r["id"] for r in result.stores["s"]] == ["a", "a2", "b", "b2"]


# --------------------------------------------------------------------------- fetch: paths, bodies, http


def test_path_placeholders_are_percent_encoded_as_one_segment(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store out: memory("out")
  action A {
    let book = { isbn: "a/b c?é" }
    get "/books/{book.isbn}" { allow: [404] }
    store { id: "r", status: http.status, url: http.url } -> out
    get "/books/" + "raw"  { allow: [404] }
  }
  run A
"""
    result = ok(body, tmp_path, server)
    targets = [a.target for a in server.stats.arrivals]
    assert targets == ["/books/a%2Fb%20c%3F%C3%A9", "/books/raw"]
    assert result.stores["out"][0]["status"] == 404
    assert result.stores["out"][0]["url"].endswith("/books/a%2Fb%20c%3F%C3%A9")


def test_a_null_placeholder_fails_the_step(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  action A {
    let book = { title: "x" }
    get "/books/{book.isbn}"
  }
  run A
"""
    failed(body, tmp_path, server, "runtime", "path placeholder {book.isbn} is null")
    assert server.stats.total == 0


def test_post_body_params_headers_and_the_http_binding(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store out: memory("out")
  action A {
    post "/echo" { body: { n: 10 / 4 * 2, tags: ["a"] }, params: { q: "x y", skip: null, many: [1, 2] },
                   headers: { "X-Test": "yes" } }
    store { id: "r", json: response.json, query: response.query, header: response.headers["x-test"] ?? response.headers["X-Test"],
            method: http.method, status: http.status, attempts: http.attempts, pages: http.pages,
            hasElapsed: http.elapsedMs >= 0, ctype: http.headers["content-type"] } -> out
  }
  run A
"""
    result = ok(body, tmp_path, server)
    [record] = result.stores["out"]
    assert record["json"] == {"n": 5, "tags": ["a"]}
    assert record["query"]["q"] == "x y" and "skip" not in record["query"]
    assert (record["header"], record["method"], record["status"], record["attempts"], record["pages"]) == \
        ("yes", "POST", 200, 1, 1)
    assert record["hasElapsed"] is True and record["ctype"].startswith("application/json")
    assert "many=1&many=2" in server.stats.arrivals[0].target


def test_a_failed_fetch_names_method_url_status_and_position(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  action A {
    get "/fail" { params: { status: 418 } }
  }
  run A
"""
    text = mission(body)
    result = failed(body, tmp_path, server, "http", "returned 418")
    assert f"mission.vague:{position(text, 'get')}: http: GET {server.url}/fail?status=418" in result.stderr
    assert "error: stage 1 A failed" in result.stderr


# --------------------------------------------------------------------------- pagination


def test_offset_pagination(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store out: memory("out")
  action A {
    get "/books/offset" { params: { limit: 25 }, paginate: offset(offset, 25) }
    store { id: "r", n: length(response), pages: http.pages, unique: length(unique(mapEach(response, .isbn))) } -> out
  }
  run A
"""
    result = ok(body, tmp_path, server)
    assert result.stores["out"] == [{"id": "r", "n": 120, "pages": 5, "unique": 120}]
    offsets = [a.target for a in server.stats.arrivals]
    assert offsets == [f"/books/offset?limit=25&offset={n}" for n in (0, 25, 50, 75, 100)]


def test_page_pagination_with_until_keeps_the_last_page(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store out: memory("out")
  action A {
    get "/books" { params: { per_page: 50 }, paginate: page(page, 50), until: .page >= 2 }
    store { id: "r", n: length(response), pages: http.pages } -> out
  }
  run A
"""
    result = ok(body, tmp_path, server)
    assert result.stores["out"] == [{"id": "r", "n": 100, "pages": 2}]
    assert server.stats.count("/books") == 2


def test_page_pagination_stops_on_a_short_page(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store out: memory("out")
  action A {
    get "/pages" { params: { size: 10, total: 35 }, paginate: page(page, 10), items: "items" }
    store { id: "r", ids: mapEach(response, .id) } -> out
  }
  run A
"""
    result = ok(body, tmp_path, server)
    assert result.stores["out"][0]["ids"] == list(range(35))
    assert server.stats.count("/pages") == 4


def test_cursor_pagination(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store out: memory("out")
  action A {
    get "/books/cursor" { params: { limit: 30 }, paginate: cursor(after, 30, "next") }
    store { id: "r", n: length(response), pages: http.pages } -> out
  }
  run A
"""
    result = ok(body, tmp_path, server)
    assert result.stores["out"] == [{"id": "r", "n": 120, "pages": 4}]
    targets = [a.target for a in server.stats.arrivals]
    assert targets[0] == "/books/cursor?limit=30"
    assert all("after=" in t for t in targets[1:])


def test_items_path_that_is_not_a_list_fails_with_decode(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  action A { get "/books" { paginate: page(page, 20), items: "total" } }
  run A
"""
    failed(body, tmp_path, server, "decode", "items: total is a number, expected a list")


def test_max_pages_stops_an_endless_pagination(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  action A { get "/pages" { params: { size: 10, total: 1000 }, paginate: page(page, 10), maxPages: 3 } }
  run A
"""
    failed(body, tmp_path, server, "runtime", "pagination did not finish within maxPages = 3 pages")
    assert server.stats.count("/pages") == 3


# --------------------------------------------------------------------------- incremental sync


def checkpoints(result: RunResult, mission_name: str = "Steps") -> dict[str, Any]:
    path = result.data_dir / "sync" / f"{mission_name}.json"
    return json.loads(path.read_text("utf-8")) if path.exists() else {}


def test_last_sync_checkpoint_is_written_on_success_and_sent_next_time(tmp_path: Path,
                                                                       server: ThreadedServer) -> None:
    body = """
  store out: memory("out")
  action A {
    get "/items/1700000000" { since: lastSync { param: "updated_after", format: unix, updateFrom: "id" } }
    get "/items/2" { since: lastSync }
    store response -> out
  }
  run A
"""
    first = ok(body, tmp_path, server)
    assert [a.target for a in server.stats.arrivals] == ["/items/1700000000", "/items/2"]  # nothing to send yet
    saved = checkpoints(first)
    assert saved["Api:/items/1700000000"] == {"syncedAt": "2023-11-14T22:13:20.000Z", "recordCount": 1}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", saved["Api:/items/2"]["syncedAt"])
    ok(body, tmp_path, server)
    targets = [a.target for a in server.stats.arrivals]
    assert targets[0] == "/items/1700000000?updated_after=1700000000"
    assert targets[1].startswith("/items/2?since=" + saved["Api:/items/2"]["syncedAt"][:10])


def test_last_sync_checkpoint_is_not_written_when_the_invocation_fails(tmp_path: Path,
                                                                       server: ThreadedServer) -> None:
    body = """
  action A {
    get "/items/1" { since: lastSync("items") }
    get "/fail" { params: { status: 500 }, retry: { maxAttempts: 1 } }
  }
  run A
"""
    result = run(body, tmp_path, server)
    assert result.code == 1
    assert checkpoints(result) == {}
    assert not (result.data_dir / "sync").exists() or checkpoints(result) == {}


def test_last_sync_checkpoint_is_not_written_after_abort(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  action A {
    get "/items/1" { since: lastSync("items") }
    abort "stop"
  }
  run A
"""
    result = run(body, tmp_path, server)
    assert result.code == 1
    assert checkpoints(result) == {}


def test_since_expression_is_sent_without_a_checkpoint(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  action A { get "/items/1" { since: "2024-01-0" + 2 } }
  run A
"""
    result = ok(body, tmp_path, server)
    assert [a.target for a in server.stats.arrivals] == ["/items/1?since=2024-01-02"]
    assert checkpoints(result) == {}


def test_bare_word_choices_in_settings_objects(tmp_path: Path, server: ThreadedServer) -> None:
    """`backoff: constant`, `strategy: throttle` and `format: unix` are words, not variables."""
    key = uuid.uuid4().hex
    body = f"""
  source Limited {{ auth: none, base: env("DEMO_URL"), rateLimit: {{ strategy: throttle, fallbackRpm: 60000 }} }}
  store out: memory("out")
  action A {{
    get "/flaky" {{ source: Limited, params: {{ key: "{key}", fail: 2 }},
                   retry: {{ maxAttempts: 3, backoff: constant, initialDelay: 10ms }} }}
    store {{ id: "fetch", attempts: http.attempts }} -> out
    get "/flaky" {{ source: Api, params: {{ key: "{key}-d", fail: 1 }}, allow: [503] }}
    match response {{
      _ where http.status == 503 -> retry {{ backoff: linear, initialDelay: 10ms }},
      _ -> continue
    }}
    store {{ id: "directive", attempt: response.attempt }} -> out
    get "/items/1" {{ source: Api, since: lastSync("k") {{ format: iso, param: "t" }} }}
  }}
  run A
"""
    result = ok(body, tmp_path, server)
    assert result.keyed("out", "id") == {"fetch": {"id": "fetch", "attempts": 3},
                                          "directive": {"id": "directive", "attempt": 2}}
    assert server.stats.count("/flaky") == 5


# --------------------------------------------------------------------------- the pipeline


def test_stage_conditions_skip_stages_and_the_run_goes_on(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store s: memory("s")
  action A { store { id: "a" } -> s }
  action B { store { id: "b" } -> s }
  action C { store { id: "c", seen: count(s) } -> s }
  run A then B if count(s) > 5 then C if count(s) == 1 and length(errors) == 0
"""
    result = ok(body, tmp_path, server)
    assert result.stores["s"] == [{"id": "a"}, {"id": "c", "seen": 1}]
    assert "stage 2 B: skipped" in result.stderr
    assert "stage 3 C: succeeded" in result.stderr


def test_a_failing_stage_ends_the_mission(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store s: memory("s")
  action A { let x = 1 / 0 }
  action B { store { id: "b" } -> s }
  run A then B
"""
    result = failed(body, tmp_path, server, "runtime", "division by zero")
    assert result.stores["s"] == []


def test_arm_bodies_and_iterations_do_not_leak_bindings(tmp_path: Path, server: ThreadedServer) -> None:
    body = """
  store s: memory("s")
  action A {
    get "/items/1"
    match response {
      _ -> {
        get "/items/2"
        let inner = response.value
        store { id: "arm", seen: response.value } -> s
      }
    }
    for n in [3] {
      store { id: "loop-before", seen: response.value } -> s
      get "/items/{n}"
      store { id: "loop-after", seen: response.value } -> s
    }
    store { id: "after", seen: response.value, status: http.status } -> s
  }
  run A
"""
    result = ok(body, tmp_path, server)
    assert result.keyed("s", "id") == {
        "arm": {"id": "arm", "seen": "item-2"},
        "loop-before": {"id": "loop-before", "seen": "item-1"},
        "loop-after": {"id": "loop-after", "seen": "item-3"},
        "after": {"id": "after", "seen": "item-1", "status": 200},
    }


def test_jump_then_retry_gives_up_after_the_default_three_attempts(tmp_path: Path, server: ThreadedServer) -> None:
    key = uuid.uuid4().hex
    body = f"""
  store log: memory("log")
  action Renew {{ store {{ id: "r" + count(log) }} -> log }}
  action A {{
    get "/flaky" {{ params: {{ key: "{key}", fail: 10, status: 419 }}, allow: [419] }}
    match response {{ _ where http.status == 419 -> jump Renew then retry, _ -> continue }}
  }}
  run A
"""
    result = failed(body, tmp_path, server, "retry-exhausted", "gave up after 3 attempts")
    assert server.stats.count("/flaky") == 3
    assert len(result.stores["log"]) == 3  # the jumped-to action ran before every verdict


def test_abort_inside_a_jumped_action_fails_even_a_best_effort_stage(tmp_path: Path,
                                                                     server: ThreadedServer) -> None:
    body = """
  store s: memory("s")
  action Stop { abort "from the jump" }
  action A { jump Stop }
  action B { store { id: "b" } -> s }
  run [A] { mode: "best-effort" } then B
"""
    result = failed(body, tmp_path, server, "abort", "from the jump")
    assert result.stores["s"] == []
