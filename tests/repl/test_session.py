"""The REPL's evaluation logic through the `Session` API, and the prompt layer through a pipe input.

Results are printed as they would be to a pipe (one compact JSON line each), so
the assertions read the exact text a script would see; diagnostics go to the
error stream with their carets.
"""
from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from reqon.repl.display import Printer
from reqon.repl.session import Outcome, Session, run_script
from reqon.repl.terminal import run_terminal

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass
class Transcript:
    outcomes: list[Outcome]
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def run_inputs(inputs: list[str], data_dir: Path, path: str | None = None) -> Transcript:
    """Execute `inputs` in one fresh session, in order."""
    out, err = io.StringIO(), io.StringIO()

    async def go() -> list[Outcome]:
        session = Session(Printer(out, err), data_dir=data_dir)
        try:
            await session.start(path)
            return [await session.execute(text) for text in inputs]
        finally:
            await session.close()

    return Transcript(asyncio.run(go()), out.getvalue(), err.getvalue())


@pytest.fixture
def demo_url(demo_server: object, monkeypatch: pytest.MonkeyPatch) -> str:
    url: str = demo_server.url  # type: ignore[attr-defined]
    monkeypatch.setenv("DEMO_URL", url)
    return url


# ---------------------------------------------------------------- expressions and steps


def test_expressions_print_one_json_line_each(tmp_path: Path) -> None:
    t = run_inputs(["1 + 2", "length([1, 2, 3])", 'filter([{pages: 100}, {pages: 400}], .pages > 300)',
                    '{name: "Dune", tags: ["sf"]}', "match 3 { 3 => \"n\", _ => \"x\" }"], tmp_path)
    assert t.lines == ["3", "3", '[{"pages":400}]', '{"name":"Dune","tags":["sf"]}', '"n"']
    assert t.outcomes == [Outcome.OK] * 5
    assert t.err == ""


def test_let_binds_a_variable_for_later_inputs(tmp_path: Path) -> None:
    t = run_inputs(["let books = [{title: \"A\", pages: 10}, {title: \"B\", pages: 500}]",
                    "let long = filter(books, .pages > 300)", "long[0].title", "length(books)"], tmp_path)
    assert t.lines == ['"B"', "2"]


def test_steps_typed_directly_write_to_a_declared_store(tmp_path: Path) -> None:
    t = run_inputs(['store seen: memory("seen")', 'store [{id: "b", n: 2}, {id: "a", n: 1}] -> seen',
                    ":stores", ":show seen", "count(seen)"], tmp_path)
    assert t.lines == ['{"seen":{"kind":"memory","target":"seen","records":2}}',
                       '[{"id":"a","n":1},{"id":"b","n":2}]', "2"]


def test_loops_typed_directly_run_sequentially_and_in_parallel(tmp_path: Path) -> None:
    t = run_inputs(['store seen: memory("seen")', "let xs = [1, 2, 3]",
                    'for x in xs { store { id: toString(x) } -> seen }',
                    'for x in xs parallel { store { id: toString(x * 10) } -> seen }', "count(seen)"], tmp_path)
    assert t.lines == ["6"]
    assert t.outcomes == [Outcome.OK] * 5 and t.err == ""


def test_multi_line_input_is_one_input(tmp_path: Path) -> None:
    t = run_inputs(["let xs = [\n  1,\n  2\n]", "sum(xs)"], tmp_path)
    assert t.lines == ["3"]


def test_a_fetch_binds_response_for_the_next_input(tmp_path: Path, demo_url: str) -> None:
    t = run_inputs([f'source Shop {{ auth: none, base: "{demo_url}" }}', 'get "/books"',
                    "response.page", "length(response.items)", "http.status"], tmp_path)
    assert t.err == ""
    assert t.lines == ["1", "20", "200"]


def test_declared_action_runs_alone_and_as_the_pipeline(tmp_path: Path, demo_url: str) -> None:
    mission = f"""mission Shop {{
  source Api {{ auth: none, base: "{demo_url}" }}
  store books: memory("books")
  action Fetch {{
    get "/books" {{ params: {{ per_page: 5 }} }}
    store response.items -> books {{ key: .isbn }}
  }}
  run Fetch
}}"""
    t = run_inputs([mission, "count(books)", ":run Fetch", "count(books)", ":run", "count(books)"], tmp_path)
    assert t.lines == ["0", "5", "5"]
    assert t.err.count("mission Shop succeeded") == 2
    assert t.outcomes == [Outcome.OK] * 6


def test_load_an_example_then_run_its_pipeline(tmp_path: Path, demo_url: str) -> None:
    t = run_inputs([":load " + str(EXAMPLES / "pagination.vague"), ":run",
                    "count(by_offset) == count(by_page) and count(by_page) == count(by_cursor)",
                    "count(by_page) > 0", ":stores"], tmp_path)
    assert "loaded PaginationStyles" in t.err
    assert "mission PaginationStyles succeeded" in t.err
    assert t.lines[:2] == ["true", "true"]
    assert '"by_offset":{"kind":"sql"' in t.lines[2]


def test_repl_path_loads_at_start(tmp_path: Path, demo_url: str) -> None:
    t = run_inputs([":run ByPage", "count(by_page) > 0"], tmp_path, path=str(EXAMPLES / "pagination.vague"))
    assert t.lines == ["true"]


# ---------------------------------------------------------------- declarations


def test_redeclaring_a_store_keeps_its_records_unless_its_target_changes(tmp_path: Path) -> None:
    t = run_inputs(['store s: memory("a")', 'store {id: 1} -> s', 'store s: memory("a")', "count(s)",
                    'store s: memory("b")', "count(s)"], tmp_path)
    assert t.lines == ["1", "0"]


def test_a_declaration_that_fails_its_check_is_not_added(tmp_path: Path) -> None:
    t = run_inputs(['store s: memory("s")', "action A {\n  store response -> nope\n}", ":run A"], tmp_path)
    assert t.outcomes == [Outcome.OK, Outcome.FAILED, Outcome.FAILED]
    assert "<input 2>:2:21: error[E206]: unknown store 'nope'" in t.err
    assert "2 |   store response -> nope" in t.err
    assert "unknown action A" in t.err


def test_a_source_with_a_bad_base_is_a_configuration_error(tmp_path: Path) -> None:
    t = run_inputs(['source S { auth: none, base: "ftp://x" }', "1"], tmp_path)
    assert t.outcomes == [Outcome.FAILED, Outcome.OK]
    assert "configuration error: source S: base must be an absolute http(s) URL" in t.err


# ---------------------------------------------------------------- errors keep the session going


def test_syntax_errors_point_into_the_typed_text(tmp_path: Path) -> None:
    t = run_inputs(["length(1 2)", "let x =\n  (1 +)", "1 + 2 3", "1"], tmp_path)
    assert t.outcomes == [Outcome.FAILED] * 3 + [Outcome.OK]
    assert t.lines == ["1"]
    assert "<input 1>:1:10: error[E101]: unexpected '2'" in t.err
    assert "1 | length(1 2)\n  |          ^" in t.err
    assert "<input 2>:2:7: error[E101]: unexpected ')'" in t.err
    assert "2 |   (1 +)\n  |       ^" in t.err
    assert "<input 3>:1:7: error[E101]: unexpected '3': expected the end of the input" in t.err
    assert "__Input" not in t.err and "__Repl" not in t.err


def test_check_and_run_time_errors_show_carets(tmp_path: Path) -> None:
    t = run_inputs(["nope + 1", "let x = 1", 'x - "a"', "x"], tmp_path)
    assert t.lines == ["1"]
    assert "<input 1>:1:1: error[E210]: unknown name 'nope'" in t.err
    assert "1 | nope + 1\n  | ^^^^" in t.err
    assert "<input 3>:1:1: error[runtime]:" in t.err
    assert "Traceback" not in t.err


def test_commands(tmp_path: Path) -> None:
    t = run_inputs([":help", ":nope", ":show missing", "1 + 1", ":ast", ":reset", "count(1)", ":quit", "2"], tmp_path)
    assert ":load PATH" in t.out
    assert "unknown command :nope" in t.err
    assert "unknown store missing" in t.err
    assert '{"type":"Binary"' in t.out and '"op":"+"' in t.out
    assert "session reset" in t.err
    assert t.outcomes[-2] is Outcome.QUIT


def test_reset_forgets_variables_and_declarations(tmp_path: Path) -> None:
    t = run_inputs(["let x = 1", 'store s: memory("s")', ":reset", "x", ":stores"], tmp_path)
    assert "unknown name 'x'" in t.err
    assert t.lines == ["{}"]


# ---------------------------------------------------------------- when an input is complete


@pytest.mark.parametrize(("text", "complete"), [
    ("1 + 2", True), ("length([1,", False), ('"open', False), ("/* open", False), ("let x =", False),
    ("let x =\n", True), ("action A {\n  get \"/x\"", False), (":help", True), ("", True), ("1 +", False),
])
def test_is_complete(tmp_path: Path, text: str, complete: bool) -> None:
    session = Session(Printer(io.StringIO(), io.StringIO()), data_dir=tmp_path)
    assert session.is_complete(text) is complete


def test_script_mode_reads_continued_inputs(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    script = io.StringIO("let xs = [1,\n 2]\nlet y =\n  10\nsum(xs) + y\n\n1 +\n\n:quit\n99\n")
    code = asyncio.run(run_script(script, Printer(out, err), tmp_path))
    assert code == 0
    assert out.getvalue() == "13\n"
    assert "unexpected end of input" in err.getvalue()


def test_cancelling_a_running_step_keeps_the_session(tmp_path: Path, demo_url: str) -> None:
    out, err = io.StringIO(), io.StringIO()

    async def go() -> str:
        session = Session(Printer(out, err), data_dir=tmp_path)
        await session.start()
        await session.execute(f'source S {{ auth: none, base: "{demo_url}" }}')
        task = asyncio.ensure_future(session.execute('get "/slow?ms=5000"'))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await session.execute("40 + 2")
        await session.close()
        return out.getvalue()

    assert asyncio.run(asyncio.wait_for(go(), 4)) == "42\n"


# ---------------------------------------------------------------- the prompt layer


@pytest.fixture
def history_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "history"
    monkeypatch.setenv("REQON_HISTORY_FILE", str(path))
    return path


@pytest.fixture
def pipe() -> Iterator[object]:
    with create_pipe_input() as pipe_input:
        yield pipe_input


def drive(pipe: object, keys: list[str], data_dir: Path) -> tuple[int, str, str]:
    """Run the interactive loop, typing `keys` one chunk at a time, as a person would."""
    out, err = io.StringIO(), io.StringIO()

    async def go() -> int:
        loop_task = asyncio.ensure_future(run_terminal(data_dir, input=pipe, output=DummyOutput(),  # type: ignore[arg-type]
                                                       out=out, err=err))
        for chunk in keys:
            await asyncio.sleep(0.05)
            pipe.send_text(chunk)  # type: ignore[attr-defined]
        return await asyncio.wait_for(loop_task, 5)

    code = asyncio.run(go())
    return code, out.getvalue(), err.getvalue()


def test_prompt_runs_inputs_and_exits_0_on_ctrl_d(pipe: object, tmp_path: Path, history_file: Path) -> None:
    code, out, _err = drive(pipe, ["1 + 2\r", "\x04"], tmp_path)
    assert code == 0
    assert out == "3\n"


def test_prompt_enter_continues_an_open_input(pipe: object, tmp_path: Path, history_file: Path) -> None:
    _code, out, _ = drive(pipe, ["let x = [1,\r", "2]\r", "x\r", "\x04"], tmp_path)
    assert out == "[1,2]\n"


def test_prompt_ctrl_c_abandons_the_input(pipe: object, tmp_path: Path, history_file: Path) -> None:
    code, out, _ = drive(pipe, ["1 + (2", "\x03", "5\r", "\x04"], tmp_path)
    assert (code, out) == (0, "5\n")


def test_prompt_history_is_kept_and_up_recalls_it(pipe: object, tmp_path: Path, history_file: Path) -> None:
    _code, out, _ = drive(pipe, ["20 + 1\r", "\x1b[A", "\r", "\x04"], tmp_path)
    assert out == "21\n21\n"
    assert "+20 + 1" in history_file.read_text("utf-8")


def test_prompt_tab_completes(pipe: object, tmp_path: Path, history_file: Path) -> None:
    _code, out, _ = drive(pipe, ["let numbers = [3, 4]\r", "len", "\t", "(numb", "\t", ")\r", "\x04"], tmp_path)
    assert out == "2\n"


def test_prompt_errors_do_not_end_the_session(pipe: object, tmp_path: Path, history_file: Path) -> None:
    code, out, err = drive(pipe, ["1 +)\r", "7\r", "\x04"], tmp_path)
    assert (code, out) == (0, "7\n")
    assert "error[E101]" in err and "1 | 1 +)" in err


def test_history_location_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from reqon.repl.terminal import history_path

    monkeypatch.delenv("REQON_HISTORY_FILE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert history_path() == tmp_path / "reqon" / "history"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert history_path() == Path(os.path.expanduser("~")) / ".local" / "share" / "reqon" / "history"


def test_openapi_sources_in_the_session(tmp_path: Path, demo_url: str) -> None:
    """`call` runs in the REPL, `:show source` lists the operations, completion offers them."""
    from reqon.demo.examples import openapi_document
    document = str(openapi_document())
    transcript = run_inputs([
        f'source Shop from "{document}" {{ auth: none, base: env("DEMO_URL") }}',
        "call Shop.listBooks { params: { per_page: 1 } }",
        "let isbn = response.items[0].isbn",
        "call Shop.getPrice",
        "response.currency",
        ":show source Shop",
        ":show source Nope",
    ], tmp_path)
    assert transcript.outcomes[:6] == [Outcome.OK] * 6, transcript.err
    assert transcript.outcomes[6] is Outcome.FAILED
    assert '"EUR"' in transcript.out
    assert '"operationId":"listBooks","method":"GET","path":"/books"' in transcript.out.replace(" ", "")
    assert "unknown source Nope" in transcript.err
