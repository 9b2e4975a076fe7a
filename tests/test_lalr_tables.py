"""The cached LALR tables: same AST as freshly built tables, rebuilt when stale, corrupt or unwritable."""
from __future__ import annotations

import marshal
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reqon import lalr_tables
from reqon.ast_json import to_json
from reqon.grammar import grammar_text
from reqon.lalr_driver import FastParser
from reqon.parser import _Builder, get_parser

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "examples").glob("*.vague"))


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user cache directory for this test alone."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "reqon"


def fresh_tables() -> dict[str, Any]:
    return lalr_tables.from_lark(get_parser()._build_lark())


def ast_of(tables: dict[str, Any], text: str) -> Any:
    builder = _Builder()
    builder.file = "f.vague"
    program = FastParser(tables, builder).parse(text)
    assert program is not None and not builder.diagnostics
    return to_json(program)


def test_tables_come_back_from_the_cache_equal_and_build_the_same_asts(cache: Path) -> None:
    built_calls: list[int] = []

    def build() -> Any:
        built_calls.append(1)
        return get_parser()._build_lark()

    first = lalr_tables.load(grammar_text(), build)
    assert built_calls == [1] and lalr_tables.cache_file(grammar_text()).exists()
    cached = lalr_tables.load(grammar_text(), build)
    assert built_calls == [1]  # the second load read the file
    fresh = fresh_tables()
    assert cached == first == fresh
    assert SAMPLES
    for path in SAMPLES:
        text = path.read_text()
        assert ast_of(cached, text) == ast_of(fresh, text)


@pytest.mark.parametrize("content", [
    b"",  # truncated to nothing
    b"\x00garbage that is not marshal data",
    marshal.dumps({"key": "another grammar", "tables": {}}),  # stale: written for another grammar
    marshal.dumps([1, 2, 3]),  # valid marshal, wrong shape
], ids=["empty", "garbage", "stale", "wrong-shape"])
def test_a_stale_or_corrupt_cache_file_is_rebuilt(cache: Path, content: bytes) -> None:
    path = lalr_tables.cache_file(grammar_text())
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    tables = lalr_tables.load(grammar_text(), get_parser()._build_lark)
    assert tables == fresh_tables()
    assert marshal.loads(path.read_bytes())["key"] == lalr_tables.cache_key(grammar_text())
    text = SAMPLES[0].read_text()
    assert ast_of(tables, text) == ast_of(fresh_tables(), text)


def test_a_truncated_valid_file_is_rebuilt(cache: Path) -> None:
    lalr_tables.load(grammar_text(), get_parser()._build_lark)
    path = lalr_tables.cache_file(grammar_text())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert lalr_tables.load(grammar_text(), get_parser()._build_lark) == fresh_tables()
    assert path.read_bytes() == data


def test_an_unwritable_cache_directory_keeps_the_tables_in_memory(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert lalr_tables.load(grammar_text(), get_parser()._build_lark) == fresh_tables()
    assert blocker.read_text() == "a file where the cache directory would go"


def test_the_key_covers_the_grammar_text_and_only_month_old_tables_of_other_grammars_go(cache: Path) -> None:
    grammar = grammar_text()
    changed = grammar + "\n// a comment changes the text\n"
    third = grammar + "\n// another version\n"
    assert lalr_tables.cache_key(changed) != lalr_tables.cache_key(grammar)
    assert lalr_tables.cache_file(changed) != lalr_tables.cache_file(grammar)
    lalr_tables.load(grammar, get_parser()._build_lark)
    lalr_tables.load(changed, get_parser()._build_lark)
    names = {lalr_tables.cache_file(g).name for g in (grammar, changed)}
    assert {p.name for p in cache.glob("lalr-*.marshal")} == names  # two installed versions both keep theirs
    month_old = time.time() - 31 * 86400
    os.utime(lalr_tables.cache_file(grammar), (month_old, month_old))
    lalr_tables.load(third, get_parser()._build_lark)
    assert {p.name for p in cache.glob("lalr-*.marshal")} == {lalr_tables.cache_file(g).name
                                                                for g in (changed, third)}


def test_a_process_parses_valid_input_from_the_cache_without_importing_lark(cache: Path) -> None:
    code = ("import sys\nfrom reqon.parser import parse_text\n"
            "program, found = parse_text(sys.argv[1], 'f.vague')\n"
            "print(program is not None, not found, 'lark' in sys.modules)")
    env = {**os.environ, "XDG_CACHE_HOME": str(cache.parent)}
    text = 'mission M { source S { auth: none, base: "http://h" } action A { get "/x" } run A }'

    def run(source: str) -> str:
        done = subprocess.run([sys.executable, "-c", code, source], env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert run(text) == ["True", "True", "True"]  # no cache yet: Lark builds the tables
    assert list(cache.glob("lalr-*.marshal"))
    assert run(text) == ["True", "True", "False"]  # from the cache: Lark is not imported
    assert run(text.replace("run A", "run")) == ["False", "False", "True"]  # a syntax error: Lark explains it
