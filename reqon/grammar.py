"""Access to `grammar/reqon.lark`, the one place that knows the keywords.

The grammar ships inside the wheel as `reqon/grammar/reqon.lark`; an editable
install reads it from the repository instead. Keyword lists for the checker,
the lexers of the editors and the tests are derived from the grammar's
`reserved_word`, `operator_word` and `contextual_word` rules, never copied.
"""
from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path

_REPO_GRAMMAR = Path(__file__).resolve().parent.parent / "grammar" / "reqon.lark"


@functools.cache
def grammar_text() -> str:
    try:
        return resources.files("reqon").joinpath("grammar/reqon.lark").read_text("utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return _REPO_GRAMMAR.read_text("utf-8")


@functools.cache
def _terminal_words() -> dict[str, str]:
    """Terminal name -> keyword text, for every `NAME: "word"` definition."""
    return dict(re.findall(r'^([A-Z]+):\s*"([A-Za-z_]+)"\s*$', grammar_text(), re.M))


def _rule_words(rule: str) -> frozenset[str]:
    body = re.search(rf"^[!?]?{rule}:(.*?)(?=^\S)", grammar_text(), re.M | re.S)
    if body is None:
        raise LookupError(f"grammar has no rule {rule!r}")
    names = re.findall(r"\b[A-Z]+\b", body.group(1))
    words = _terminal_words()
    return frozenset(words[n] for n in names)


@functools.cache
def reserved_words() -> frozenset[str]:
    """Words that can never name a declaration or variable (§1.5.2, E106)."""
    return _rule_words("reserved_word") | _rule_words("operator_word")


@functools.cache
def contextual_keywords() -> frozenset[str]:
    """Words that are keywords only in some positions (§1.5.3)."""
    return _rule_words("contextual_word")


@functools.cache
def operator_words() -> frozenset[str]:
    return _rule_words("operator_word")


def all_keywords() -> frozenset[str]:
    return reserved_words() | contextual_keywords()


# `x.name(args)` calls the built-in `name` with `x` first (§5.8); in that position a few
# words stand for another built-in. The parser and both highlighters read this table.
METHOD_ALIASES = {"map": "mapEach"}


@functools.cache
def http_methods() -> frozenset[str]:
    """Method words of fetch steps, both spellings (`get`, `GET`)."""
    return _rule_words("method")
