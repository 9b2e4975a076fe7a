"""The grammar file itself: conflict-free LALR(1), shipped in the wheel, the one keyword list."""
from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import lark
import pytest

from reqon import grammar

ROOT = Path(__file__).resolve().parents[1]

RESERVED_1_5_2 = """mission source store schema transform action run then if let for in where map apply
validate assume match call wait get post put patch delete GET POST PUT PATCH DELETE
and or not is contains any of each true false null"""
CONTEXTUAL_10_5 = """maxConcurrency parallelMode schedule from every cron at concurrency parallel to as skip
continue abort retry queue jump else warn"""
SCHED_MEMBERS_10_2 = "timezone skipIfRunning retryOnFailure runImmediately jitter timeout"  # contextual (§10.2)


def test_grammar_builds_in_strict_mode_without_conflicts() -> None:
    """Lark's strict mode rejects shift/reduce conflicts and terminal collisions."""
    names_everywhere = type("P", (), {"always_accept": ("NAME",), "process": lambda self, s: s})()
    lark.Lark(grammar.grammar_text(), parser="lalr", lexer="contextual", strict=True, postlex=names_everywhere)


def test_keyword_lists_are_derived_from_the_grammar_and_match_the_reference() -> None:
    assert grammar.reserved_words() == frozenset(RESERVED_1_5_2.split())
    assert grammar.contextual_keywords() == frozenset(CONTEXTUAL_10_5.split() + SCHED_MEMBERS_10_2.split())
    assert grammar.operator_words() == {"and", "or", "is", "contains"}
    assert grammar.http_methods() == {"get", "post", "put", "patch", "delete", "GET", "POST", "PUT", "PATCH", "DELETE"}


def test_every_keyword_terminal_is_listed_in_exactly_one_keyword_rule() -> None:
    text = grammar.grammar_text()
    terminals = set(re.findall(r'^([A-Z]+):\s*"[A-Za-z_]+"\s*$', text, re.M))
    listed = {name for rule in ("reserved_word", "operator_word", "contextual_word")
              for name in re.findall(r"\b[A-Z]+\b", re.search(rf"^{rule}:(.*?)(?=^\S)", text, re.M | re.S).group(1))}
    assert terminals == listed


def test_no_other_module_hand_copies_the_keyword_list() -> None:
    """A literal list of several reserved words anywhere in the package means a copy that can drift."""
    sample = re.compile(r"\"mission\",\s*\"source\",\s*\"store\"|'mission', 'source', 'store'")
    offenders = [p for p in (ROOT / "reqon").rglob("*.py") if sample.search(p.read_text())]
    assert offenders == []


@pytest.mark.timeout(300)
def test_the_wheel_ships_the_grammar_and_the_examples(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot build a wheel here (no package index?): {done.stderr.strip()[-300:]}")
    wheel = next(tmp_path.glob("reqon-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "reqon/grammar/reqon.lark" in names
    assert "reqon/examples/bookstore-catalogue.vague" in names
    packaged = zipfile.ZipFile(wheel).read("reqon/grammar/reqon.lark").decode()
    assert packaged == (ROOT / "grammar" / "reqon.lark").read_text()
