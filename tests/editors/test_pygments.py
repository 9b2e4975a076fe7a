"""The Pygments lexer: registered under its names, total on any input, and classifying the
shared samples as the TextMate grammar does (see `corpus` for the sample format)."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pygments.lexers import find_lexer_class_by_name, get_lexer_for_filename
from pygments.token import Error, Text, _TokenType

from reqon.highlight import ReqonLexer

from .corpus import Sample, example_files, locate, samples, source


def classes_per_char(text: str) -> list[_TokenType]:
    per_char: list[_TokenType] = []
    for _, token, value in ReqonLexer().get_tokens_unprocessed(text):
        per_char += [token] * len(value)
    return per_char


def unclassified(text: str) -> list[str]:
    """Error tokens, and visible characters left as plain Text (a catch-all rule)."""
    problems = []
    for index, token, value in ReqonLexer().get_tokens_unprocessed(text):
        if token in Error or (token is Text and value.strip()):
            line = text.count("\n", 0, index) + 1
            problems.append(f"line {line}: {value!r} is {token}")
    return problems


@pytest.mark.parametrize("name", ["reqon", "vague"])
def test_found_by_alias_through_the_entry_point(name: str) -> None:
    assert find_lexer_class_by_name(name) is ReqonLexer


@pytest.mark.parametrize("filename", ["mission.vague", "mission.reqon"])
def test_found_by_filename(filename: str) -> None:
    assert isinstance(get_lexer_for_filename(filename), ReqonLexer)


def test_examples_exist() -> None:
    assert example_files(), "no example missions found"


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_example_has_no_error_and_no_unclassified_text(path: Path) -> None:
    text = path.read_text("utf-8")
    assert unclassified(text) == []
    assert "".join(v for _, _, v in ReqonLexer().get_tokens_unprocessed(text)) == text


@pytest.mark.parametrize("sample", samples(), ids=lambda s: s["name"])
def test_sample_classes(sample: Sample) -> None:
    text = source(sample)
    per_char = classes_per_char(text)
    for needle, span, _, token in locate(text, sample["expect"]):
        got = {per_char[i] for i in span}
        assert got == {token}, f"{needle!r} at {span.start}: {got}, expected {token}"
    for needle, span, _, token in locate(text, sample.get("absent", [])):
        assert token not in {per_char[i] for i in span}, f"{needle!r} at {span.start} is {token}"


@pytest.mark.parametrize("text", [
    'get "/a/{id',                 # unterminated fetch path
    "let s = 'open\nlet t = 1",    # unterminated string: the line break ends it
    "/* never closed\nget",        # unterminated block comment
    "let x = a ! b ; c # d @ e",   # characters that start no token (E107)
    'get "/a/\\q{x}"',             # unknown escape (E103)
])
def test_broken_input_has_no_error_token(text: str) -> None:
    tokens = list(ReqonLexer().get_tokens_unprocessed(text))
    assert not [t for _, t, _ in tokens if t in Error]
    assert "".join(v for _, _, v in tokens) == text


_PIECES = [*"abgetGETstorefmx_19.{}[]()\"'\\/*,:-+<>=!?% \t\n", "retry", "as ", "->", "//", "/*"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES)).map("".join))
def test_any_text_lexes_without_error_and_without_loss(text: str) -> None:
    tokens = list(ReqonLexer().get_tokens_unprocessed(text))
    assert not [t for _, t, _ in tokens if t in Error]
    assert "".join(v for _, _, v in tokens) == text
