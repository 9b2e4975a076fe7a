"""Both highlighters know exactly the grammar's keywords: no list is copied by hand.

The TextMate grammar is generated (`editors/generate.py`) and must be up to date; the
word lists inside it and the Pygments lexer's behaviour on every word are compared with
what `reqon.grammar` and `BUILTINS` say now.
"""
from __future__ import annotations

import importlib.util
import json
import re
from types import ModuleType
from typing import Any

import pytest
from pygments.token import Keyword, Name, Operator, _TokenType

from reqon import grammar
from reqon.highlight import VOCABULARY, ReqonLexer
from reqon.builtins import BUILTINS

from .corpus import EDITORS, TM_GRAMMAR


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reqon_editors_generate", EDITORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_textmate_grammar_is_what_the_generator_makes_now() -> None:
    fresh = load_generator().render()
    assert TM_GRAMMAR.read_text("utf-8") == fresh, "run .venv/bin/python editors/generate.py"


def test_vocabulary_partitions_the_grammar_words() -> None:
    v = VOCABULARY
    reserved_groups = [v.control, v.http_methods, v.constants, v.operator_words]
    assert sum(map(len, reserved_groups)) == len(v.reserved)  # disjoint
    assert v.reserved == grammar.reserved_words()
    assert v.contextual == grammar.contextual_keywords()
    assert set(v.http_methods) == grammar.http_methods()
    assert grammar.operator_words() <= set(v.operator_words)
    assert set(v.builtins) == set(BUILTINS)
    declarations = {*v.type_declarations, v.store_declaration, *v.function_declarations}
    assert declarations <= set(v.control)
    assert not set(v.infix) & {*v.member, *v.directives, *v.after_then}


# --------------------------------------------------------------------- TextMate

def textmate() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(TM_GRAMMAR.read_text("utf-8"))
    return loaded


def words_in(pattern: str) -> set[str]:
    """The words of the first `(?:a|b|c)` group of a pattern."""
    found = re.search(r"\(\?:([A-Za-z_|]+)\)", pattern)
    assert found, pattern
    return set(found.group(1).split("|"))


def textmate_words(rule: str) -> set[str]:
    entry = textmate()["repository"][rule]
    return words_in(entry.get("match") or entry["begin"])


def test_textmate_reserved_words_are_the_grammars() -> None:
    groups = ["control-keywords", "fetch", "constants", "operator-words"]
    found = [textmate_words(g) for g in groups]
    assert set().union(*found) == grammar.reserved_words()
    assert sum(map(len, found)) == len(grammar.reserved_words())
    assert textmate_words("fetch") == grammar.http_methods()


def test_textmate_contextual_keywords_are_the_grammars() -> None:
    then_words = words_in(textmate()["repository"]["then-keywords"]["match"].split("[ \\t]+", 1)[1])
    found = {*textmate_words("member-keywords"), *textmate_words("directive-keywords"),
             *then_words, *textmate_words("infix-keywords")}
    assert found == grammar.contextual_keywords()


def test_textmate_builtins_are_the_runtimes() -> None:
    assert textmate_words("builtins") == set(BUILTINS)


# --------------------------------------------------------------------- Pygments

def classes(text: str) -> list[tuple[_TokenType, str]]:
    return [(t, v) for _, t, v in ReqonLexer().get_tokens_unprocessed(text) if v.strip()]


@pytest.mark.parametrize("word", sorted(grammar.reserved_words()))
def test_pygments_reserved_word(word: str) -> None:
    expected = {**dict.fromkeys(VOCABULARY.constants, Name.Constant),
                **dict.fromkeys(VOCABULARY.operator_words, Operator.Word)}.get(word, Keyword)
    assert classes(word) == [(expected, word)]
    assert classes(f"x.{word}")[-1] == (Name.Attribute, word)
    assert classes(f"{{ {word}: 1 }}")[1] == (Name.Attribute, word)


@pytest.mark.parametrize("word", sorted(grammar.contextual_keywords()))
def test_pygments_contextual_keyword_only_in_position(word: str) -> None:
    positions = []
    if word in VOCABULARY.member:
        positions.append(f"  {word}: 1")
    if word in VOCABULARY.directives:
        positions += [f"  {word}", f"_ -> {word}", f"{{ {word} }}"]
    if word in VOCABULARY.after_then:
        positions.append(f"jump A then {word}")
    if word in VOCABULARY.infix:
        positions += [f"x {word} y", f'x {word} "s"']
    assert positions, f"{word} has no position where it is a keyword"
    for text in positions:
        assert (Keyword.Pseudo, word) in classes(text), text
    assert classes(f"let x = {word}")[-1] == (Name.Variable, word)


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_pygments_builtin_only_when_called(name: str) -> None:
    assert classes(f"{name}(x)")[0] == (Name.Builtin, name)
    assert classes(f"let y = {name}")[-1] == (Name.Variable, name)
